"""Delivering a message into an account's Inbox (LMTP, or any embedder).

The same write path as Email/import: the message is stored as a blob, then
one :class:`~jmap_mail.store.MailWriter` batch adds the Email with its
thread, the Inbox counts, the search document and the ``EmailDelivery``
push state ([mail-1.5-push]).  On the Maildir backend the write-through
mirror writes the file into the Inbox folder in the same commit.

Malformed messages are delivered as they are: parsing is best effort and
never refuses a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from jmapcore.api import Core
from jmapcore.errors import SetError
from jmapcore.storage import Record, Snapshot, StateConflict, WriteBatch

from .constants import MAILBOX
from .dates import now_utc, utc_date
from .mime import parse
from .store import MailWriter

#: Attempts when another writer wins the race for the account.
MAX_ATTEMPTS = 8


class DeliveryRefused(Exception):
    """The account would not take the message; ``error`` is the SetError
    (``overQuota``, ...) a JMAP client would have been given."""

    def __init__(self, error: SetError) -> None:
        super().__init__(error.get("description") or error.kind)
        self.error = error


class NoMailbox(Exception):
    """The account has no mailbox with the wanted role (and no other)."""


@dataclass(frozen=True, slots=True)
class Delivered:
    email_id: str
    thread_id: str
    blob_id: str
    mailbox_id: str
    size: int


def find_role(snap: Snapshot, role: str) -> Record | None:
    """The mailbox with ``role`` (accounts hold few mailboxes)."""
    for record in snap.get_many(MAILBOX, list(snap.ids(MAILBOX))):
        if record is not None and record.get("role") == role:
            return record
    return None


def deliver(
    core: Core,
    account_id: str,
    raw: bytes,
    *,
    role: str = "inbox",
    keywords: dict[str, bool] | None = None,
    received_at: datetime | None = None,
) -> Delivered:
    """Add ``raw`` as a new Email in the account's mailbox with ``role``.

    Raises :class:`DeliveryRefused` when a plugin's hook refuses it (over
    quota), :class:`NoMailbox` when the account has no such mailbox, and
    :class:`jmapcore.storage.UnknownAccount` for an unknown account.
    """
    parsed = parse(raw)
    blob_id = core.backend.put_blob(account_id, raw, None).blob_id
    when = utc_date(received_at) if received_at is not None else now_utc()
    for attempt in range(MAX_ATTEMPTS):
        with core.backend.snapshot(account_id) as snap:
            mailbox = find_role(snap, role)
            if mailbox is None:
                raise NoMailbox(f"the account has no {role} mailbox")
            batch = WriteBatch(account_id)
            writer = MailWriter(None, snap, batch, core=core)
            refused = writer.admit(len(raw))
            if refused is not None:
                raise DeliveryRefused(refused)
            record = writer.add_email(
                parsed,
                blob_id=blob_id,
                mailbox_ids={mailbox["id"]: True},
                keywords=dict(keywords or {}),
                received_at=when,
            )
            writer.finish()
        try:
            core.backend.commit(batch)
        except StateConflict:
            if attempt == MAX_ATTEMPTS - 1:
                raise
            continue
        return Delivered(record["id"], record["threadId"], blob_id, mailbox["id"], record["size"])
    raise AssertionError("unreachable")  # pragma: no cover


def accepts(core: Core, account_id: str, size: int) -> SetError | None:
    """Would a message of ``size`` octets be taken now (quota hooks)?
    None if so, else the SetError a delivery would get."""
    with core.backend.snapshot(account_id) as snap:
        return MailWriter(None, snap, WriteBatch(account_id), core=core).admit(size)
