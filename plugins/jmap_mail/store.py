"""The mail write path: every change to Emails goes through :class:`MailWriter`.

One writer builds one :class:`~jmapcore.storage.WriteBatch` that changes
Emails, the Threads they are in, the counts of every Mailbox they touch, the
full-text index and the blob references together, so the backend applies
them atomically: a message is never counted but missing, or stored but
unsearchable.

Counts are kept exact incrementally ([mail-2-counts]): for every Thread a
change touches, the thread's contribution to each mailbox's four counts is
computed before and after the change (cost: the size of that thread, never of
a mailbox) and the difference applied.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jmapcore.context import CallContext, new_id
from jmapcore.errors import SetError
from jmapcore.storage import Destroy, Put, Record, SearchDocument, Snapshot, Touch, WriteBatch

from .constants import COUNT_PROPERTIES, EMAIL, EMAIL_DELIVERY, MAILBOX, THREAD
from .hooks import size_hooks
from .keywords import is_unread
from .mime import ParsedEmail, base_subject, html_to_text

if TYPE_CHECKING:
    from jmapcore.api import Core

#: How many earlier messages sharing one Message-ID are looked at when threading.
MAX_THREAD_CANDIDATES = 20
#: How much of a message's text the full-text index keeps.
MAX_INDEXED_TEXT = 200_000


def email_index_keys(record: Record) -> list[tuple[Any, ...]]:
    """The ``msgid`` index: every Message-ID the Email names, for threading."""
    ids: list[str] = []
    for name in ("messageId", "inReplyTo", "references"):
        ids.extend(record.get(name) or ())
    return [(message_id,) for message_id in dict.fromkeys(ids)]


def mailbox_index_keys(record: Record) -> list[tuple[Any, ...]]:
    """The ``mbox`` index: (mailbox, receivedAt) for each mailbox of the Email."""
    return [(mailbox_id, record["receivedAt"]) for mailbox_id in record["mailboxIds"]]


def thread_order(record: Record) -> tuple[str, str]:
    """[mail-3-props] Thread.emailIds sort by receivedAt, then id."""
    return (record["receivedAt"], record["id"])


@dataclass(slots=True)
class _Contribution:
    """One thread's share of the counts of each mailbox."""

    emails: dict[str, int]
    unread: dict[str, int]
    any_unread: bool


def _contribution(records: Iterable[Record]) -> _Contribution:
    emails: dict[str, int] = defaultdict(int)
    unread: dict[str, int] = defaultdict(int)
    any_unread = False
    for record in records:
        is_new = is_unread(record["keywords"])
        any_unread = any_unread or is_new
        for mailbox_id in record["mailboxIds"]:
            emails[mailbox_id] += 1
            if is_new:
                unread[mailbox_id] += 1
    return _Contribution(emails, unread, any_unread)


def address_text(addresses: list[dict[str, Any]] | None) -> str:
    return " ".join(f"{a.get('name') or ''} {a.get('email') or ''}".strip() for a in addresses or ())


def body_text(parsed: ParsedEmail, limit: int) -> str:
    """The plain text of the parts a reader sees (markup dropped)."""
    values = parsed.body_values(True, False, False, limit)
    texts = []
    for part in parsed.text_body:
        value = values.get(part.part_id or "")
        if value is not None:
            text = value["value"]
            texts.append(html_to_text(text) if part.type == "text/html" else text)
    return "\n".join(texts)[:limit]


def search_document(email_id: str, record: Record, parsed: ParsedEmail) -> SearchDocument:
    """The Email's text for the full-text index."""
    return SearchDocument(
        EMAIL,
        email_id,
        {
            "subject": record.get("subject") or "",
            "from": address_text(record.get("from")),
            "to": address_text(record.get("to")),
            "cc": address_text(record.get("cc")),
            "bcc": address_text(record.get("bcc")),
            "body": body_text(parsed, MAX_INDEXED_TEXT),
        },
    )


def search_documents(snap: Snapshot) -> Iterator[SearchDocument]:
    """Every Email's search document, re-made from its message (for a rebuild)."""
    from .mime import parse

    ids = list(snap.ids(EMAIL))
    for start in range(0, len(ids), 256):
        for record in snap.get_many(EMAIL, ids[start : start + 256]):
            if record is None:
                continue
            raw = snap.read_blob(record["blobId"])
            if raw is not None:
                yield search_document(record["id"], record, parse(raw))


class MailWriter:
    """Stages changes to Emails in ``batch``; :meth:`finish` adds the
    Thread, Mailbox-count and delivery changes they imply."""

    def __init__(
        self, ctx: CallContext | None, snap: Snapshot, batch: WriteBatch, *, core: Core | None = None
    ) -> None:
        """``core`` (else ``ctx.core``) selects the plugins' size hooks."""
        self.ctx = ctx
        self.snap = snap
        self.batch = batch
        for type_name in (EMAIL, THREAD, MAILBOX):
            batch.expect.setdefault(type_name, snap.type_modseq(type_name))
        self._before: dict[str, Record | None] = {}
        self._after: dict[str, Record | None] = {}
        self._threads: set[str] = set()
        self._new_members: dict[str, list[str]] = defaultdict(list)
        self._batch_threads: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self._delivered = False
        self._hooks = size_hooks(core if core is not None else (ctx.core if ctx is not None else None))
        #: Octets this batch adds to the account's Emails (negative: frees).
        self.size_delta = 0

    # -- reading -------------------------------------------------------------

    def email(self, email_id: str) -> Record | None:
        """The Email as this batch leaves it so far."""
        if email_id in self._after:
            return self._after[email_id]
        return self.snap.get(EMAIL, email_id)

    def _remember_before(self, email_id: str, record: Record | None) -> None:
        if email_id not in self._before:
            self._before[email_id] = record

    # -- threading ([mail-3-algorithm]) -----------------------------------------

    def thread_for(self, message_ids: list[str], subject: str) -> str:
        """Join the thread of a message sharing a Message-ID (in either
        direction) and the base subject; else start a new thread.  A reply
        indexed before its parent is found through the parent's own id."""
        for message_id in message_ids:
            for thread_id, other in self._batch_threads.get(message_id, ()):
                if other == subject:
                    return thread_id
            for count, (_, email_id) in enumerate(self.snap.scan_index(EMAIL, "msgid", (message_id,))):
                if count >= MAX_THREAD_CANDIDATES:
                    break
                record = self.email(email_id)
                if record is not None and base_subject(record.get("subject")) == subject:
                    return record["threadId"]
        return new_id("T")

    # -- writing ---------------------------------------------------------------

    def admit(self, size: int) -> SetError | None:
        """May a new message of ``size`` octets be added (a quota)?  Asked by
        clients' creates and deliveries, before :meth:`add_email`."""
        for hook in self._hooks:
            error = hook.admit(self.snap, self.size_delta, size)
            if error is not None:
                return error
        return None

    def _put_email(self, record: Record, created: bool) -> None:
        self.batch.puts = [p for p in self.batch.puts if not (p.type_name == EMAIL and p.record["id"] == record["id"])]
        self.batch.puts.append(Put(EMAIL, record, created=created))

    def add_email(
        self,
        parsed: ParsedEmail,
        *,
        blob_id: str,
        mailbox_ids: dict[str, bool],
        keywords: dict[str, bool],
        received_at: str,
    ) -> Record:
        """A new Email from a stored message blob."""
        message_ids, subject = parsed.threading_keys()
        thread_id = self.thread_for(message_ids, subject)
        email_id = new_id("E")
        record: Record = {
            "id": email_id,
            "blobId": blob_id,
            "threadId": thread_id,
            "mailboxIds": dict(mailbox_ids),
            "keywords": dict(keywords),
            "size": len(parsed.raw),
            "receivedAt": received_at,
            **parsed.list_properties(),
        }
        for message_id in message_ids:
            self._batch_threads[message_id].append((thread_id, subject))
        self._remember_before(email_id, None)
        self._after[email_id] = record
        self._threads.add(thread_id)
        self._new_members[thread_id].append(email_id)
        self._put_email(record, created=True)
        self.batch.blob_refs[blob_id] = self.batch.blob_refs.get(blob_id, 0) + 1
        self.batch.search.append(search_document(email_id, record, parsed))
        self.size_delta += record["size"]
        self._delivered = True
        return record

    def update_email(
        self, email_id: str, *, mailbox_ids: dict[str, bool] | None = None, keywords: dict[str, bool] | None = None
    ) -> Record | None:
        """Change an Email's mailboxes and/or keywords (the mutable part)."""
        old = self.email(email_id)
        if old is None:
            return None
        new = dict(old)
        if mailbox_ids is not None:
            new["mailboxIds"] = dict(mailbox_ids)
        if keywords is not None:
            new["keywords"] = dict(keywords)
        if new == old:
            return old
        self._remember_before(email_id, self.snap.get(EMAIL, email_id))
        created_here = self._before.get(email_id) is None
        self._after[email_id] = new
        self._threads.add(new["threadId"])
        self._put_email(new, created=created_here)
        return new

    def destroy_email(self, email_id: str) -> bool:
        old = self.email(email_id)
        if old is None:
            return False
        self._remember_before(email_id, self.snap.get(EMAIL, email_id))
        self._after[email_id] = None
        self._threads.add(old["threadId"])
        self.batch.puts = [p for p in self.batch.puts if not (p.type_name == EMAIL and p.record["id"] == email_id)]
        if self._before[email_id] is not None:
            self.batch.destroys.append(Destroy(EMAIL, email_id))
        self.batch.blob_refs[old["blobId"]] = self.batch.blob_refs.get(old["blobId"], 0) - 1
        self.size_delta -= old.get("size", 0)
        return True

    def empty_mailbox(self, mailbox_id: str) -> None:
        """Take every Email out of a mailbox; destroy those left in none."""
        for _, email_id in list(self.snap.scan_index(EMAIL, "mbox", (mailbox_id,))):
            record = self.email(email_id)
            if record is None or mailbox_id not in record["mailboxIds"]:
                continue
            remaining = {m: True for m in record["mailboxIds"] if m != mailbox_id}
            if remaining:
                self.update_email(email_id, mailbox_ids=remaining)
            else:
                self.destroy_email(email_id)

    # -- what the changes imply ------------------------------------------------

    def finish(self) -> None:
        """Add the Thread and Mailbox-count changes, and the delivery signal."""
        deltas: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for thread_id in self._threads:
            stored = self.snap.get(THREAD, thread_id)
            before_ids = list(stored["emailIds"]) if stored else []
            before = [self._before[e] if e in self._before else self.snap.get(EMAIL, e) for e in before_ids]
            after_ids = [e for e in before_ids if self.email(e) is not None] + self._new_members.get(thread_id, [])
            after = [self.email(e) for e in dict.fromkeys(after_ids)]
            self._count(deltas, [r for r in before if r is not None], -1)
            self._count(deltas, [r for r in after if r is not None], +1)
            self._write_thread(thread_id, stored, [r for r in after if r is not None])
        self._apply_counts(deltas)
        if self._delivered:
            self.batch.touches.append(Touch(EMAIL_DELIVERY, "delivery"))
        if self.size_delta:
            for hook in self._hooks:
                hook.stage(self.snap, self.batch, self.size_delta)

    @staticmethod
    def _count(deltas: dict[str, list[int]], records: list[Record], sign: int) -> None:
        share = _contribution(records)
        for mailbox_id, count in share.emails.items():
            delta = deltas[mailbox_id]
            delta[0] += sign * count
            delta[1] += sign * share.unread.get(mailbox_id, 0)
            delta[2] += sign
            delta[3] += sign * share.any_unread

    def _write_thread(self, thread_id: str, stored: Record | None, members: list[Record]) -> None:
        email_ids = [record["id"] for record in sorted(members, key=thread_order)]
        if not email_ids:
            if stored is not None:
                self.batch.destroys.append(Destroy(THREAD, thread_id))
        elif stored is None:
            self.batch.puts.append(Put(THREAD, {"id": thread_id, "emailIds": email_ids}, created=True))
        elif stored["emailIds"] != email_ids:
            self.batch.puts.append(Put(THREAD, {"id": thread_id, "emailIds": email_ids}, created=False))

    def _apply_counts(self, deltas: dict[str, list[int]]) -> None:
        destroyed = {d.id for d in self.batch.destroys if d.type_name == MAILBOX}
        staged = {p.record["id"]: p for p in self.batch.puts if p.type_name == MAILBOX}
        for mailbox_id, delta in deltas.items():
            if not any(delta) or mailbox_id in destroyed:
                continue
            put = staged.get(mailbox_id)
            if put is None:
                stored = self.snap.get(MAILBOX, mailbox_id)
                if stored is None:
                    continue
                put = Put(MAILBOX, dict(stored), created=False, changed=COUNT_PROPERTIES)
                self.batch.puts.append(put)
            for name, change in zip(COUNT_PROPERTIES, delta, strict=True):
                put.record[name] = max(0, put.record.get(name, 0) + change)
