"""Message blobs served from their files (design, section 3).

A message's bytes are kept once, in its Maildir file.  The LMDB blob store
keeps the blob's per-account metadata (size, references, upload time) as
for any blob, but its bytes only until a file holds them:

* **Write-through:** the mirror delivers an Email's file from the blob
  (tmp/, fsync, rename, fsync of cur/), then, in the same write
  transaction, records the Email under :data:`MAILDIR_BLOB` and deletes
  the blob's bytes from the store.  Should the transaction abort, the
  deletion is rolled back with it (the file is then adopted by the next
  sync), so the bytes are never only in a file the index does not know.
* **Adopted files** (another program's delivery, a first start on a tree)
  never have their bytes stored: :func:`put_file_blob` writes the
  metadata and a *pending* location (mailbox, subdir, name) the mail
  plugin reads the message from while it indexes it; the Email's commit
  then records the Email in place of the pending location.
* **Reads** (:func:`locations`, :func:`read_located`) try the store first
  (blobs no file backs: uploads not yet an Email, attachments, other
  data), then each file of each Email of the blob, by the name the index
  has (cur/, then new/), then by its base name (another program renamed
  it with other flags since the last sync).  No file left: None (404).

The bytes are dropped only where this account alone holds the blob
(``blobholders`` is 1): another account's copy of the same bytes (an
upload, Blob/copy, another LMDB-only use) keeps them in the store, and
:meth:`.backend.MaildirBackend.put_blob` puts them back should another
account upload bytes the store no longer has.  When our own write takes
the last file of a file-backed blob away (Email/set destroy, or a move
out of every folder), the bytes go back into the store first, so the
blob stays readable until it expires, as on LMDB.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from jmap_lmdb import blobs, keys
from jmap_lmdb.codec import BlobMeta

from .errors import MaildirError
from .flags import split_name
from .names import FolderPath
from .records import MAILDIR_FILE, MAILDIR_FOLDER, TxnRecords
from .scan import MessageFile
from .tree import MaildirTree

#: blobId -> {"emails": [emailId, ...], "pending": [[mailboxId, subdir, name], ...]}:
#: the Emails whose files hold the blob's bytes, and adopted files not yet
#: an Email (see the module docstring).
MAILDIR_BLOB = "MaildirBlob"

#: Where a blob's bytes may be: (folder, subdir, name) in the order to try.
Location = tuple[FolderPath, str, str]

log = logging.getLogger(__name__)


def has_data(records: TxnRecords, blob_id: str) -> bool:
    return records.txn.get(blob_id.encode(), db=records.dbs.blobdata) is not None


def _holders(records: TxnRecords, blob_id: str) -> int:
    return keys.decode_u64(records.txn.get(blob_id.encode(), db=records.dbs.blobholders))


def _entry(records: TxnRecords, blob_id: str) -> dict[str, Any]:
    stored = records.get(MAILDIR_BLOB, blob_id)
    if stored is None:
        return {"id": blob_id, "emails": [], "pending": []}
    return {"id": blob_id, "emails": list(stored.get("emails") or ()), "pending": list(stored.get("pending") or ())}


def _save(records: TxnRecords, entry: dict[str, Any]) -> None:
    if entry["emails"] or entry["pending"]:
        records.put_internal(MAILDIR_BLOB, entry)
    else:
        records.delete_internal(MAILDIR_BLOB, entry["id"])


def file_backed(records: TxnRecords, blob_id: str, email_id: str) -> None:
    """``email_id`` now has a durable file holding the blob's bytes (called
    inside the write transaction, after the file is in place): record it,
    forget the pending locations, and drop the stored bytes where this
    account alone holds them."""
    entry = _entry(records, blob_id)
    if email_id not in entry["emails"] or entry["pending"]:
        if email_id not in entry["emails"]:
            entry["emails"].append(email_id)
        entry["pending"] = []
        _save(records, entry)
    if _holders(records, blob_id) == 1:
        records.txn.delete(blob_id.encode(), db=records.dbs.blobdata)


def not_file_backed(records: TxnRecords, tree: MaildirTree, blob_id: str, email_id: str, *, keep_bytes: bool) -> None:
    """``email_id`` no longer holds the blob in a file (its last file goes
    now, or went).  With ``keep_bytes`` (our own write, files still on
    disk) the bytes go back into the store when no other Email holds them,
    read from the file before it is removed."""
    entry = _entry(records, blob_id)
    if email_id not in entry["emails"]:
        return
    if keep_bytes and len(entry["emails"]) == 1 and not has_data(records, blob_id) and _holders(records, blob_id):
        data = read_located(tree, locations(records, blob_id))
        if data is not None:
            records.txn.put(blob_id.encode(), data, db=records.dbs.blobdata)
    entry["emails"].remove(email_id)
    _save(records, entry)


def locations(records: TxnRecords, blob_id: str, emails: Iterable[str] | None = None) -> list[Location]:
    """Every file that should hold the blob's bytes, by the names the index
    has (each Email's files, then pending adoptions)."""
    stored = records.get(MAILDIR_BLOB, blob_id)
    if stored is None:
        return []
    folders: dict[str, FolderPath | None] = {}

    def folder(mailbox_id: str) -> FolderPath | None:
        if mailbox_id not in folders:
            record = records.get(MAILDIR_FOLDER, mailbox_id)
            folders[mailbox_id] = None if record is None else tuple(record["path"])
        return folders[mailbox_id]

    out: list[Location] = []
    for email_id in stored.get("emails") or () if emails is None else emails:
        files = records.get(MAILDIR_FILE, email_id)
        for mailbox_id, name in ({} if files is None else files["files"]).items():
            path = folder(mailbox_id)
            if path is not None:
                out.append((path, "cur", name))
    for mailbox_id, subdir, name in stored.get("pending") or ():
        path = folder(mailbox_id)
        if path is not None:
            out.append((path, subdir, name))
    return out


def read_located(tree: MaildirTree, found: list[Location], offset: int = 0, length: int | None = None) -> bytes | None:
    """The bytes (or the range) of the first of these files still there:
    by name in cur/ and new/, then by base name; None if none is."""
    for folder, subdir, name in found:
        for sub in (subdir, "new" if subdir == "cur" else "cur"):
            data = _read(tree, MessageFile(folder, sub, name), offset, length)  # type: ignore[arg-type]
            if data is not None:
                return data
    for folder, _subdir, name in found:
        try:
            current = tree.locate(folder, split_name(name)[0])
        except (OSError, ValueError):
            continue
        if current is not None:
            data = _read(tree, current, offset, length)
            if data is not None:
                return data
    return None


def _read(tree: MaildirTree, message: MessageFile, offset: int, length: int | None) -> bytes | None:
    try:
        return tree.read_range(message, offset, length)
    except (FileNotFoundError, NotADirectoryError, MaildirError, ValueError):
        return None  # gone, moved, or not a file we may read: try the next
    except OSError as exc:
        log.warning("reading %s/%s of %r: %s", message.subdir, message.name, message.folder, exc)
        return None


def put_file_blob(
    txn: Any, dbs: Any, num: int, blob_id: str, size: int, now: float, pending: list[list[str]]
) -> str:
    """:func:`jmap_lmdb.blobs.put` for an adopted file's bytes, without the
    bytes: the metadata (a new unreferenced blob, or a refreshed upload
    time), the account as one more holder, and where the file is."""
    old = blobs.get_meta(txn, dbs, num, blob_id)
    if old is None:
        key = blob_id.encode()
        holders = keys.decode_u64(txn.get(key, db=dbs.blobholders))
        txn.put(key, keys.encode_u64(holders + 1), db=dbs.blobholders)
        new = BlobMeta(size, 0, now, None)
    else:
        new = BlobMeta(old.size, old.refs, now, None if not old.refs else old.uploader)
    blobs.set_meta(txn, dbs, num, blob_id, old, new)
    records = TxnRecords(txn, dbs, num)
    entry = _entry(records, blob_id)
    for location in pending:
        if location not in entry["pending"]:
            entry["pending"].append(location)
    _save(records, entry)
    return blob_id


def ensure_data(txn: Any, dbs: Any, blob_id: str, data: bytes | memoryview) -> None:
    """Put the bytes back if the store lacks them (another account, or an
    upload, now holds a blob whose bytes only files had)."""
    if txn.get(blob_id.encode(), db=dbs.blobdata) is None:
        txn.put(blob_id.encode(), data, db=dbs.blobdata)
