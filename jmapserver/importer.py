"""``jmapcore import``: put existing mail into an account, through the core.

Messages go in exactly as a client's would: each is stored as a blob, then
``Email/import`` runs in batches of 100 through :meth:`Core.api`, so the
mail plugin's parsing, threading, counts and search index see nothing
special.  A batch the server refuses as a whole is retried one message at
a time, so one bad message fails alone.

What the summary counts:

* **imported**: every message that became an Email;
* **malformed** (imported all the same, bytes unchanged): a message that
  lacks From, Date or Message-ID (what a reader relies on to show, sort and
  thread it), whose Date cannot be parsed, or in which Python's ``email``
  parser reports a defect anywhere in the MIME tree (missing boundaries, no
  blank line after the header, ...); counted by reason;
* **failed**: a message that could not be read or that the server did not
  create, each listed with its reason.  Nothing is skipped silently.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.utils import parsedate_to_datetime
from typing import Any

from jmapcore.api import Core
from jmapcore.auth import Principal

from .mailsources import Item
from .progress import Progress
from .setimport import ImportFailed, JmapApi, find_account, listed, per_second

MAIL = "urn:ietf:params:jmap:mail"
BATCH = 100
#: How many failures the summary lists one by one.
LISTED_FAILURES = 20


# -- what counts as malformed --------------------------------------------------


def inspect_message(raw: bytes) -> list[str]:
    """The reasons ``raw`` is malformed (empty when it is not); see the module doc."""
    if not raw.strip():
        return ["empty message"]
    parsed = message_from_bytes(raw, policy=policy.compat32)
    reasons = [f"no {name} header" for name in ("From", "Date", "Message-ID") if parsed[name] is None]
    date = parsed["Date"]
    if date is not None:
        try:
            parsedate_to_datetime(str(date))
        except (TypeError, ValueError, IndexError):
            reasons.append("unparseable Date")
    defects = {type(d).__name__.removesuffix("Defect") for part in parsed.walk() for d in part.defects}
    reasons.extend(f"MIME defect: {name}" for name in sorted(defects))
    return reasons


# -- the summary ---------------------------------------------------------------


@dataclass
class Summary:
    source: str
    account: str
    imported: int = 0
    malformed: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    trashed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    created_mailboxes: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def rate(self) -> float:
        return per_second(self.imported, self.elapsed)

    def lines(self) -> list[str]:
        out = [
            f"imported {self.imported:,} of {self.imported + self.failed:,} messages from "
            f"{self.source} into {self.account} in {self.elapsed:.1f} s ({self.rate:,.0f} messages/s)",
            f"  imported:   {self.imported:,}",
            f"  malformed:  {self.malformed:,} (imported as they are)",
        ]
        out.extend(f"    {count:,} × {reason}" for reason, count in self.reasons.most_common())
        if self.trashed:
            out.append(f"  into Trash: {self.trashed:,} (marked deleted in the source)")
        out.append(f"  failed:     {self.failed:,}")
        out.extend(listed(self.failures, LISTED_FAILURES))
        out.extend(f"  created mailbox {name}" for name in self.created_mailboxes)
        return out


# -- mailboxes -------------------------------------------------------------------

#: Maildir++ folder names other servers use for the special mailboxes.
_ALIASES = {
    "sent messages": "sent", "sent items": "sent", "sent mail": "sent",
    "deleted messages": "trash", "deleted items": "trash", "bin": "trash",
    "spam": "junk", "junk e-mail": "junk", "junk email": "junk",
}


class Mailboxes:
    """The account's mailboxes by role and by name path; creates missing ones."""

    def __init__(self, api: Api) -> None:
        self.api = api
        listed = api.call("Mailbox/get", {"properties": ["name", "parentId", "role"]})["list"]
        self.by_role = {m["role"]: m["id"] for m in listed if m.get("role")}
        self.children = {(m["parentId"], m["name"].casefold()): m["id"] for m in listed}
        self.names = {m["id"]: m["name"] for m in listed}
        self.parents = {m["id"]: m["parentId"] for m in listed}
        self.created: list[str] = []

    def path_of(self, mailbox_id: str | None) -> str:
        names = []
        while mailbox_id is not None:
            names.append(self.names[mailbox_id])
            mailbox_id = self.parents[mailbox_id]
        return "/".join(reversed(names))

    def target(self, spec: str) -> str:
        """``--mailbox``: a role (inbox, archive, ...) or a name path ``A/B``."""
        if spec.lower() in self.by_role:
            return self.by_role[spec.lower()]
        names = tuple(part for part in spec.split("/") if part)
        if not names:
            raise ImportFailed(f"--mailbox {spec!r} names no mailbox")
        return self.find(None, names)

    def find(self, parent: str | None, names: tuple[str, ...]) -> str:
        """The mailbox at ``names`` below ``parent``, created if missing."""
        for position, name in enumerate(names):
            alias = _ALIASES.get(name.casefold()) if parent is None and position == 0 else None
            known = self.children.get((parent, name.casefold()))
            if known is None and alias in self.by_role:
                known = self.by_role[alias]
            parent = known if known is not None else self._create(parent, name)
        assert parent is not None
        return parent

    def trash(self) -> str:
        if "trash" not in self.by_role:
            self.by_role["trash"] = self._create(None, "Trash", role="trash")
        return self.by_role["trash"]

    def _create(self, parent: str | None, name: str, role: str | None = None) -> str:
        record: dict[str, Any] = {"name": name, "parentId": parent}
        if role is not None:
            record["role"] = role
        result = self.api.call("Mailbox/set", {"create": {"m": record}})
        if "m" not in (result.get("created") or {}):
            error = (result.get("notCreated") or {}).get("m", {})
            where = self.path_of(parent) + "/" + name if parent else name
            raise ImportFailed(f"cannot create mailbox {where!r}: {error.get('description') or error.get('type')}")
        mailbox_id = result["created"]["m"]["id"]
        self.children[(parent, name.casefold())] = mailbox_id
        self.names[mailbox_id], self.parents[mailbox_id] = name, parent
        self.created.append(self.path_of(mailbox_id))
        return mailbox_id


# -- talking to the core ---------------------------------------------------------


class Api(JmapApi):
    """JMAP calls in-process with the mail capability."""

    def __init__(self, core: Core, principal: Principal, account_id: str) -> None:
        super().__init__(core, principal, account_id, MAIL)


@dataclass(slots=True)
class _Pending:
    item: Item
    blob_id: str
    mailbox_id: str
    reasons: list[str]


class Importer:
    """Feeds items into one account in batches and keeps the summary."""

    def __init__(self, api: Api, mailboxes: Mailboxes, target: str, summary: Summary, *, check: bool = True) -> None:
        self.api = api
        self.mailboxes = mailboxes
        self.target = target
        self.summary = summary
        self.check = check
        self.pending: list[_Pending] = []
        self.done = 0
        # Below the Inbox, Maildir++ subfolders are IMAP top-level mailboxes;
        # below any other target they stay below it.
        self._folder_base = None if target == mailboxes.by_role.get("inbox") else target

    def add(self, item: Item, mailbox_id: str | None = None) -> None:
        """Queue one message; ``mailbox_id`` overrides where its folder puts it."""
        if item.raw is None:
            self._fail(item, item.error or "unreadable")
            return
        try:
            destination = mailbox_id or self._mailbox_for(item)
            reasons = inspect_message(item.raw) if self.check else []
            blob = self.api.core.backend.put_blob(self.api.account_id, item.raw, self.api.principal.name)
        except ImportFailed as ex:
            self._fail(item, str(ex))
            return
        except Exception as ex:  # noqa: BLE001 - one message's failure is reported, not fatal
            self._fail(item, f"{type(ex).__name__}: {ex}")
            return
        self.pending.append(_Pending(item, blob.blob_id, destination, reasons))
        if len(self.pending) >= BATCH:
            self.flush()

    def _mailbox_for(self, item: Item) -> str:
        if item.trashed:
            return self.mailboxes.trash()
        if not item.folder:
            return self.target
        return self.mailboxes.find(self._folder_base, item.folder)

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        if not batch:
            return
        try:
            outcome = self._import(batch)
        except ImportFailed:
            # Refused as a whole: one message at a time, so only the culprit fails.
            for one in batch:
                try:
                    outcome = self._import([one])
                except ImportFailed as ex:
                    self._fail(one.item, str(ex))
                else:
                    self._record([one], outcome)
            return
        self._record(batch, outcome)

    def _import(self, batch: list[_Pending]) -> dict[str, Any]:
        emails = {}
        for number, one in enumerate(batch):
            entry: dict[str, Any] = {"blobId": one.blob_id, "mailboxIds": {one.mailbox_id: True}, "keywords": one.item.keywords}
            if one.item.received_at is not None:
                entry["receivedAt"] = one.item.received_at
            emails[str(number)] = entry
        return self.api.call("Email/import", {"emails": emails})

    def _record(self, batch: list[_Pending], outcome: dict[str, Any]) -> None:
        created = outcome.get("created") or {}
        refused = outcome.get("notCreated") or {}
        for number, one in enumerate(batch):
            key = str(number)
            if key in created:
                self.summary.imported += 1
                self.summary.trashed += one.item.trashed
                self.done += 1
                if one.reasons:
                    self.summary.malformed += 1
                    self.summary.reasons.update(one.reasons)
            else:
                error = refused.get(key) or {"type": "missing from the response"}
                self._fail(one.item, f"{error.get('type')}: {error.get('description', '')}".rstrip(": "))

    def _fail(self, item: Item, reason: str) -> None:
        self.summary.failures.append((item.label, reason))
        self.done += 1


def ensure_mailboxes(core: Core, api: Api) -> Mailboxes:
    """The account's mailboxes; the default set first if it has none at all
    (an account made before the mail plugin was installed)."""
    if MAIL not in core.registry.plugins:
        raise ImportFailed("the mail plugin (urn:ietf:params:jmap:mail) is not installed")
    boxes = Mailboxes(api)
    if not boxes.names:
        from jmap_mail import create_default_mailboxes

        info = core.account_info(api.account_id)
        assert info is not None
        create_default_mailboxes(core, info)
        boxes = Mailboxes(api)
    return boxes


def import_items(
    core: Core,
    name: str,
    items: Iterable[Item],
    *,
    source: str,
    mailbox: str = "inbox",
    progress: Progress | None = None,
    check: bool = True,
) -> Summary:
    """Import ``items`` into ``name``'s account; the summary says what happened."""
    principal, account_id = find_account(core, name)
    api = Api(core, principal, account_id)
    boxes = ensure_mailboxes(core, api)
    summary = Summary(source=source, account=name)
    importer = Importer(api, boxes, boxes.target(mailbox), summary, check=check)
    started = time.monotonic()
    for item in items:
        importer.add(item)
        if progress is not None:
            progress.update(importer.done + len(importer.pending))
    importer.flush()
    summary.elapsed = time.monotonic() - started
    summary.created_mailboxes = boxes.created
    if progress is not None:
        progress.finish(importer.done)
    return summary
