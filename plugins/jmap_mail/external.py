"""Messages other programs delivered, re-flagged or removed (a Maildir
backend's files), applied through the same
:class:`~jmap_mail.store.MailWriter` as Email/import, so threading, counts
and search stay right.  The backend calls
:func:`apply_external_changes` (the plugin's ``external_changes``); it
never imports this plugin."""

from __future__ import annotations

from datetime import UTC, datetime

from jmapcore.api import Core
from jmapcore.storage import (
    ExternalChanges,
    ExternalMessage,
    ExternalUpdate,
    Snapshot,
    StateConflict,
    WriteBatch,
)

from .constants import MAILBOX
from .dates import utc_date
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
            writer = MailWriter(None, snap, batch)
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
