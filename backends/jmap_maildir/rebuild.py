"""Rebuilding an account's mail data from its tree (design, section 5: the
files are the truth).

The sidecar and the tree each keep a marker token: an internal record
(:data:`MAILDIR_MARKER`) and the file :data:`MARKER_FILE` in the tree's
root.  They are written together when an account first syncs and after
each rebuild.  When a process's first sync of an account finds them
different (the tree was replaced or restored, or the sidecar now points
at another tree), the account's Emails and Threads are dropped and the
tree adopted anew, under a new epoch, so states from before give
``cannotCalculateChanges``.  Both halves go to the mail plugin in batches
of :data:`.sync.CHUNK` Emails, so a 100k-message account is many bounded
write transactions, not one.  Each batch is logged like any change, so an
interrupted rebuild leaves a consistent index: the next sync (a fresh
listing) adopts the files whose Emails were already dropped.

Principals and accounts stay in the sidecar and are not rebuilt: a
deleted sidecar loses them, and ``account add`` over the same root then
adopts the tree as a new account.  Mailbox records whose folder still
exists are kept (their ids are tied to the folder), so only Email ids
change.  A restore of an older sidecar over the same tree is not detected
(its token still matches): run ``account rebuild``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from jmapcore.storage import ExternalChanges, ExternalMailbox, ExternalUpdate

from .mirror import EMAIL, folder_ref
from .names import INBOX
from .records import MAILDIR_FOLDER, TxnRecords
from .tree import MaildirTree

#: The marker file in the tree's root (Maildir++ lists only directories,
#: so it is never taken for a folder).
MARKER_FILE = ".jmapcore-epoch"
#: Internal record "marker" -> {"token": ...}: the sidecar's copy.
MAILDIR_MARKER = "MaildirMarker"
_MARKER_ID = "marker"


def read_marker(tree: MaildirTree) -> str | None:
    """The token in the tree's marker file, or None."""
    try:
        return (Path(tree.root) / MARKER_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None


def write_marker(tree: MaildirTree, token: str) -> None:
    """Replace the marker file atomically (a reader sees old or new)."""
    target = Path(tree.root) / MARKER_FILE
    tmp = target.with_name(f"{MARKER_FILE}.{os.getpid()}.tmp")
    tmp.write_text(token + "\n")
    os.replace(tmp, target)


def stored_marker(records: TxnRecords) -> str | None:
    found = records.get(MAILDIR_MARKER, _MARKER_ID)
    return None if found is None else str(found["token"])


def store_marker(records: TxnRecords, token: str) -> None:
    records.put_internal(MAILDIR_MARKER, {"id": _MARKER_ID, "token": token})


def new_token() -> str:
    return secrets.token_hex(16)


def drop_changes(account_id: str, records: TxnRecords, tree: MaildirTree) -> ExternalChanges:
    """What removes every Email (from each of its mailboxes, so counts,
    threads and search follow) and the mailboxes whose folder is gone, as
    external changes: applied through the mail plugin, not mirrored, so
    no file is touched."""
    updated = [
        ExternalUpdate(email["id"], mailbox_id, removed=True)
        for email in records.all(EMAIL)
        for mailbox_id in (email.get("mailboxIds") or {})
    ]
    mailboxes = [
        ExternalMailbox(folder["id"], removed=True, ref=folder_ref(tuple(folder["path"])))
        for folder in records.all(MAILDIR_FOLDER)
        if tuple(folder["path"]) != INBOX and not os.path.isdir(tree.folder_dir(tuple(folder["path"])))
    ]
    return ExternalChanges(account_id, [], updated, mailboxes=mailboxes)
