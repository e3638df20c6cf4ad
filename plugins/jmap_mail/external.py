"""Messages other programs delivered, re-flagged or removed (a Maildir
backend's files), applied through the same
:class:`~jmap_mail.store.MailWriter` as Email/import, so threading, counts
and search stay right.  The backend calls
:func:`apply_external_changes` (the plugin's ``external_changes``); it
never imports this plugin."""

from __future__ import annotations

from datetime import UTC, datetime

from jmapcore.api import Core
from jmapcore.storage import ExternalChanges, ExternalUpdate, StateConflict, WriteBatch

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
                raw = snap.read_blob(message.blob_id)
                if raw is None or snap.get(MAILBOX, message.mailbox_id) is None:
                    continue
                record = writer.add_email(
                    parse(raw),
                    blob_id=message.blob_id,
                    mailbox_ids={message.mailbox_id: True},
                    keywords=dict.fromkeys(message.keywords, True),
                    received_at=utc_date(datetime.fromtimestamp(message.received_at, UTC)),
                )
                batch.external[record["id"]] = message.ref  # type: ignore[index]
            for update in changes.updated:
                _apply_update(writer, update)
            writer.finish()
        try:
            core.backend.commit(batch)
            return
        except StateConflict:
            if attempt == MAX_ATTEMPTS - 1:
                raise


def _apply_update(writer: MailWriter, update: ExternalUpdate) -> None:
    """New keywords, or the Email left the mailbox (destroyed when it was
    its last)."""
    record = writer.email(update.record_id)
    if record is None:
        return
    if update.keywords is not None:
        writer.update_email(update.record_id, keywords=dict.fromkeys(update.keywords, True))
        return
    remaining = {m: True for m in record["mailboxIds"] if m != update.mailbox_id}
    if remaining:
        writer.update_email(update.record_id, mailbox_ids=remaining)
    else:
        writer.destroy_email(update.record_id)
