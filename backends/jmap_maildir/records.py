"""Records of one account read and written inside an LMDB write transaction.

The mirror needs the records as they were before the batch (to see what a
Put changed) and keeps its own internal records (:data:`MAILDIR_FILE`,
:data:`MAILDIR_FOLDER`).  Internal records are written straight into the
records table, with no change-log row and no type modseq, so they never
show up in a JMAP state; they live under the account's key prefix, so an
account purge removes them with everything else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from jmap_lmdb import keys
from jmap_lmdb.codec import decode_record, encode
from jmap_lmdb.env import Dbs

from jmapcore.storage import Record

#: emailId -> {"files": {mailboxId: file name in cur/}}.
MAILDIR_FILE = "MaildirFile"
#: mailboxId -> {"path": [folder names], "dir": [device, inode]} ([] is
#: INBOX, the root folder; "dir" is missing in records written before it).
MAILDIR_FOLDER = "MaildirFolder"
#: :func:`name_id` (mailbox, base) -> {"emailId": ...}: which files are
#: already Emails, so a sync adopts only the others.
MAILDIR_NAME = "MaildirName"


def name_id(mailbox_id: str, base: str) -> str:
    """A record id for (mailbox, unique base name): base names hold dots
    and colons, which ids may not."""
    digest = hashlib.sha256(f"{mailbox_id}/{base}".encode()).hexdigest()
    return "N" + digest[:40]


class TxnRecords:
    """Record access for one account inside one write transaction."""

    def __init__(self, txn: Any, dbs: Dbs, num: int) -> None:
        self.txn = txn
        self.dbs = dbs
        self.num = num

    def _key(self, type_name: str, record_id: str) -> bytes:
        return keys.record_key(keys.record_prefix(self.num, type_name), record_id)

    def get(self, type_name: str, record_id: str) -> Record | None:
        raw = self.txn.get(self._key(type_name, record_id), db=self.dbs.records)
        return None if raw is None else decode_record(raw)

    def all(self, type_name: str) -> Iterator[Record]:
        prefix = keys.record_prefix(self.num, type_name)
        found: list[Record] = []
        with self.txn.cursor(db=self.dbs.records) as cursor:
            ok = cursor.set_range(prefix)
            while ok and cursor.key().startswith(prefix):
                found.append(decode_record(cursor.value()))
                ok = cursor.next()
        return iter(found)

    def put_internal(self, type_name: str, record: Record) -> None:
        """Write an internal record (unlogged, see the module docstring)."""
        self.txn.put(self._key(type_name, record["id"]), encode(record), db=self.dbs.records)

    def delete_internal(self, type_name: str, record_id: str) -> None:
        self.txn.delete(self._key(type_name, record_id), db=self.dbs.records)

    def blob(self, blob_id: str) -> bytes | None:
        """The bytes of a stored blob (put_blob stored them before the batch)."""
        raw = self.txn.get(blob_id.encode(), db=self.dbs.blobdata)
        return None if raw is None else bytes(raw)
