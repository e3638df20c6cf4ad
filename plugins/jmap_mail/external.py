"""Messages other programs delivered, re-flagged or removed (a Maildir
backend's files), applied through the same
:class:`~jmap_mail.store.MailWriter` as Email/import, so threading, counts
and search stay right.  The backend calls
:func:`apply_external_changes` (the plugin's ``external_changes``); it
never imports this plugin."""

from __future__ import annotations

from datetime import UTC, datetime

from jmapcore.api import Core
from jmapcore.context import new_id
from jmapcore.storage import (
    Destroy,
    ExternalChanges,
    ExternalMailbox,
    ExternalMessage,
    ExternalUpdate,
    Put,
    Record,
    Snapshot,
    StateConflict,
    WriteBatch,
)

from .constants import COUNT_PROPERTIES, MAILBOX
from .dates import utc_date
from .mailbox import ALL_RIGHTS
from .mime import parse
from .store import MailWriter

#: Attempts when a client's write wins the race for the account.
MAX_ATTEMPTS = 5


def apply_external_changes(core: Core, changes: ExternalChanges) -> None:
    """Add an Email for each delivered message whose mailbox still exists
    and apply the updates; the batch is marked external so the backend does
    not write it back."""
    for attempt in range(MAX_ATTEMPTS):
        with core.backend.snapshot(changes.account_id) as snap:
            batch = WriteBatch(changes.account_id, external={})
            writer = MailWriter(None, snap, batch, core=core)
            new_ids: dict[str, str] = {}
            for mailbox in changes.mailboxes:
                _apply_mailbox(snap, writer, batch, mailbox, new_ids)
            for message in changes.delivered:
                _add_message(snap, writer, batch, message)
            # Additions first, so a move (link, then unlink) keeps the Email.
            for update in sorted(changes.updated, key=lambda u: u.ref is None):
                _apply_update(writer, batch, update)
            writer.finish()
        try:
            core.backend.commit(batch)
            return
        except StateConflict:
            if attempt == MAX_ATTEMPTS - 1:
                raise


def _add_message(snap: Snapshot, writer: MailWriter, batch: WriteBatch, message: ExternalMessage) -> None:
    """A new Email in those of the message's mailboxes that still exist."""
    present = [(m, r) for m, r in zip(message.mailbox_ids, message.refs, strict=True) if snap.get(MAILBOX, m)]
    raw = snap.read_blob(message.blob_id)
    if raw is None or not present:
        return
    record = writer.add_email(
        parse(raw),
        blob_id=message.blob_id,
        mailbox_ids={m: True for m, _ in present},
        keywords=dict.fromkeys(message.keywords, True),
        received_at=utc_date(datetime.fromtimestamp(message.received_at, UTC)),
    )
    assert batch.external is not None
    batch.external[record["id"]] = [r for _, r in present]


def _apply_update(writer: MailWriter, batch: WriteBatch, update: ExternalUpdate) -> None:
    """New keywords, a mailbox joined, or a mailbox left (the Email is
    destroyed when that was its last)."""
    record = writer.email(update.record_id)
    if record is None:
        return
    if update.keywords is not None:
        writer.update_email(update.record_id, keywords=dict.fromkeys(update.keywords, True))
    if update.ref is not None and update.mailbox_id not in record["mailboxIds"]:
        if writer.snap.get(MAILBOX, update.mailbox_id) is None:
            return
        writer.update_email(update.record_id, mailbox_ids={**record["mailboxIds"], update.mailbox_id: True})
        assert batch.external is not None
        batch.external.setdefault(update.record_id, []).append(update.ref)
    if update.removed:
        remaining = {m: True for m in record["mailboxIds"] if m != update.mailbox_id}
        if remaining:
            writer.update_email(update.record_id, mailbox_ids=remaining)
        else:
            writer.destroy_email(update.record_id)


def _apply_mailbox(
    snap: Snapshot, writer: MailWriter, batch: WriteBatch, change: ExternalMailbox, new_ids: dict[str, str]
) -> None:
    """A folder made, renamed or removed by another program.  A removed
    mailbox loses its Emails (their files went with the folder) unless it
    still has children, which keep it."""
    assert batch.external is not None
    parent = change.parent_id or (new_ids.get(change.parent_ref) if change.parent_ref else None)
    if change.removed:
        if change.record_id is None or snap.get(MAILBOX, change.record_id) is None:
            return
        if any(r and r.get("parentId") == change.record_id for r in _mailboxes(snap)):
            return
        writer.empty_mailbox(change.record_id)
        batch.destroys.append(Destroy(MAILBOX, change.record_id))
        return
    if change.record_id is None:
        record_id = new_id("M")
        new_ids[change.ref] = record_id
        record = {
            "id": record_id,
            "name": change.name,
            "parentId": parent,
            "role": None,
            "sortOrder": 0,
            "isSubscribed": False,
            "myRights": dict(ALL_RIGHTS),
            **dict.fromkeys(COUNT_PROPERTIES, 0),
        }
        batch.puts.append(Put(MAILBOX, record, created=True))
    else:
        stored = snap.get(MAILBOX, change.record_id)
        if stored is None:
            return
        batch.puts.append(Put(MAILBOX, {**stored, "name": change.name, "parentId": parent}, created=False))
        record_id = change.record_id
    batch.external[record_id] = [change.ref]


def _mailboxes(snap: Snapshot) -> list[Record | None]:
    return snap.get_many(MAILBOX, list(snap.ids(MAILBOX)))
