"""Mirroring one committed batch into the account's Maildir tree.

Runs inside the LMDB write transaction, after the batch's preconditions
passed and before its records are written (so the old records are still
readable).  Order: folders are made or renamed first, then Email files are
removed, linked, renamed and delivered, and emptied folders go last.  An
exception aborts the transaction; a file already written then has no index
entry, which the next sync adopts as a delivery (design, section 2).

Each file operation is also noted in :attr:`Mirror.ops`; once the
transaction committed, the backend hands them to the sync
(:meth:`.sync.ExternalSync.note_own`), which puts our own files into its
stored listing so the next look does not take them for another program's.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from jmapcore.storage import Record, WriteBatch

from . import blobfiles
from .errors import MessageGone
from .flags import split_name
from .mirror_folders import MAILBOX, FolderMirror, folder_of_ref, folder_ref
from .names import FolderPath
from .records import MAILDIR_FILE, MAILDIR_NAME, TxnRecords, name_id
from .scan import MessageFile, Subdir
from .tree import MaildirTree

EMAIL = "Email"

__all__ = [
    "EMAIL",
    "MAILBOX",
    "Mirror",
    "OwnOp",
    "file_ref",
    "folder_of_ref",
    "folder_ref",
    "touches_mail",
]

#: One file operation of ours: (folder, the (subdir, name) it removed or
#: renamed away, or None; the name it made in cur/, or None).
OwnOp = tuple[FolderPath, tuple[Subdir, str] | None, str | None]

log = logging.getLogger(__name__)


def file_ref(mailbox_id: str, name: str) -> str:
    """The ``ref`` of an external message: mailbox and file name (neither
    can hold a slash)."""
    return f"{mailbox_id}/{name}"


def touches_mail(batch: WriteBatch) -> bool:
    """Whether the batch writes Emails or Mailboxes (else nothing to mirror)."""
    return batch.external is not None or any(p.type_name in (EMAIL, MAILBOX) for p in batch.puts) or any(
        d.type_name in (EMAIL, MAILBOX) for d in batch.destroys
    )


def _received(value: Any) -> float | None:
    """``receivedAt`` as Unix seconds: the file's mtime, as IMAP servers read it."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _keywords(record: Record) -> list[str]:
    return [k for k, v in (record.get("keywords") or {}).items() if v]


class Mirror(FolderMirror):
    """The file work of one batch: folders (:class:`FolderMirror`), then messages."""

    def __init__(self, tree: MaildirTree, records: TxnRecords, batch: WriteBatch) -> None:
        super().__init__(tree, records, batch)
        self.ops: list[OwnOp] = []

    # -- file operations, noted ------------------------------------------------

    def _remove(self, message: MessageFile) -> None:
        self.tree.remove(message)
        self.ops.append((message.folder, (message.subdir, message.name), None))

    def _set_flags(self, message: MessageFile, keywords: list[str]) -> MessageFile:
        moved = self.tree.set_flags(message, keywords=keywords)
        if moved.name != message.name or moved.subdir != message.subdir:
            self.ops.append((message.folder, (message.subdir, message.name), moved.name))
        return moved

    def _made(self, message: MessageFile) -> MessageFile:
        self.ops.append((message.folder, None, message.name))
        return message

    # -- messages --------------------------------------------------------------

    def _files(self, email_id: str) -> dict[str, str]:
        stored = self.records.get(MAILDIR_FILE, email_id)
        return {} if stored is None else dict(stored["files"])

    def _message(self, mailbox_id: str, name: str) -> MessageFile | None:
        path = self.folder(mailbox_id)
        return None if path is None else MessageFile(path, "cur", name)

    def save_files(self, email_id: str, old: dict[str, str], new: dict[str, str]) -> None:
        """Record where the email's files are now, and the reverse entries."""
        old_bases = {(m, split_name(n)[0]) for m, n in old.items()}
        new_bases = {(m, split_name(n)[0]) for m, n in new.items()}
        for mailbox_id, base in old_bases - new_bases:
            self.records.delete_internal(MAILDIR_NAME, name_id(mailbox_id, base))
        for mailbox_id, base in new_bases - old_bases:
            record = {"id": name_id(mailbox_id, base), "emailId": email_id}
            self.records.put_internal(MAILDIR_NAME, record)
        if new:
            self.records.put_internal(MAILDIR_FILE, {"id": email_id, "files": new})
        elif old:
            self.records.delete_internal(MAILDIR_FILE, email_id)

    def _blob_of(self, email_id: str) -> str | None:
        record = self.records.get(EMAIL, email_id)
        blob_id = None if record is None else record.get("blobId")
        return blob_id if isinstance(blob_id, str) else None

    def _file_backed(self, email_id: str, blob_id: str | None, files: dict[str, str]) -> None:
        """Record whether the Email's files now hold its blob (see
        :mod:`.blobfiles`); our own write: the bytes go back into the
        store before the last file is removed."""
        if blob_id is None:
            return
        if files:
            blobfiles.file_backed(self.records, blob_id, email_id)
        else:
            blobfiles.not_file_backed(self.records, self.tree, blob_id, email_id, keep_bytes=self.batch.external is None)

    def destroy_email(self, email_id: str) -> None:
        files = self._files(email_id)
        self._file_backed(email_id, self._blob_of(email_id), {})
        for mailbox_id, name in files.items():
            message = self._message(mailbox_id, name)
            if message is not None:
                self._remove(message)
        self.save_files(email_id, files, {})

    def put_email(self, record: Record) -> None:
        """Bring the email's files in line with its mailboxes and keywords."""
        if not isinstance(record.get("mailboxIds"), dict) or not isinstance(record.get("blobId"), str):
            return
        email_id = record["id"]
        files = self._files(email_id)
        old = self.records.get(EMAIL, email_id)
        keywords = _keywords(record)
        reflag = old is not None and _keywords(old) != keywords
        wanted = [m for m in record["mailboxIds"] if self.folder(m) is not None]
        kept = {m: n for m, n in files.items() if m in wanted}
        if reflag:
            for mailbox_id, name in list(kept.items()):
                message = self._message(mailbox_id, name)
                assert message is not None
                try:
                    kept[mailbox_id] = self._set_flags(message, keywords).name
                except MessageGone:  # removed by another program: written anew below
                    del kept[mailbox_id]
        # New copies link a kept file, else one about to be unlinked (so a
        # move keeps the inode), else are delivered from the blob.
        sources = [self._message(m, n) for m, n in (kept or files).items()]
        source = next((m for m in sources if m is not None), None)
        for mailbox_id in wanted:
            if mailbox_id in kept:
                continue
            folder = self.folder(mailbox_id)
            assert folder is not None
            copy = self._link(source, folder) if source is not None else None
            if copy is None:
                copy = self._deliver(record, folder, keywords)
                if copy is None:
                    return
            elif reflag:
                copy = self._set_flags(copy, keywords)
            source = source or copy
            kept[mailbox_id] = copy.name
        # The new files are durable (fsynced) by now: the blob's bytes may
        # leave the store in this transaction; or come back before the last
        # file goes.
        self._file_backed(email_id, record["blobId"], kept)
        for mailbox_id, name in files.items():
            if mailbox_id not in kept:
                message = self._message(mailbox_id, name)
                if message is not None:
                    self._remove(message)
        self.save_files(email_id, files, kept)

    def _link(self, source: MessageFile, folder: FolderPath) -> MessageFile | None:
        """A hard link of ``source`` in ``folder``; None if another program
        removed the source meanwhile (the caller delivers from the blob)."""
        try:
            return self._made(self.tree.link(source, folder))
        except MessageGone:
            return None

    def _deliver(self, record: Record, folder: FolderPath, keywords: list[str]) -> MessageFile | None:
        data = self.records.blob(record["blobId"])
        if data is None:  # another Email's file holds the bytes
            data = blobfiles.read_located(self.tree, blobfiles.locations(self.records, record["blobId"]))
        if data is None:
            log.warning("email %s: blob %s missing, no file written", record["id"], record["blobId"])
            return None
        return self._made(
            self.tree.deliver(folder, data, keywords=keywords, received=_received(record.get("receivedAt")))
        )

    def adopt(self, external: dict[str, list[str]]) -> None:
        """An external batch (what another program did to the files):
        record which files the Emails now are, and write nothing back.
        ``external`` names the new files of each Email (delivered, linked
        or moved by another program); a mailbox an Email left drops out of
        its files."""
        for put in self.batch.puts:
            if put.type_name == MAILBOX and put.record["id"] in external:
                self._adopt_folder(put.record["id"], external[put.record["id"]][0])
        for destroy in self.batch.destroys:
            if destroy.type_name == MAILBOX and self.folder(destroy.id) is not None:
                self._set_folder(destroy.id, None)
        for put in self.batch.puts:
            if put.type_name != EMAIL:
                continue
            email_id = put.record["id"]
            files = self._files(email_id)
            kept = {m: n for m, n in files.items() if m in (put.record.get("mailboxIds") or {})}
            for ref in external.get(email_id, ()):
                mailbox_id, _, name = ref.partition("/")  # see file_ref
                kept[mailbox_id] = name
            previous = self.records.get(EMAIL, email_id)
            if previous is not None and _keywords(previous) != _keywords(put.record):
                self._reflag_links(kept, _keywords(put.record))
            if kept != files:
                self.save_files(email_id, files, kept)
            blob_id = put.record.get("blobId")
            self._file_backed(email_id, blob_id if isinstance(blob_id, str) else None, kept)
        for destroy in self.batch.destroys:
            if destroy.type_name == EMAIL:
                self._file_backed(destroy.id, self._blob_of(destroy.id), {})
                self.save_files(destroy.id, self._files(destroy.id), {})

    def _reflag_links(self, files: dict[str, str], keywords: list[str]) -> None:
        """Another program changed the flags of one file of an Email: give
        its other files (hard links in other folders) the same flags, so
        every folder agrees, and note the names every file has now."""
        for mailbox_id, name in list(files.items()):
            message = self._message(mailbox_id, name)
            if message is None:
                continue
            try:
                files[mailbox_id] = self._set_flags(message, keywords).name
            except MessageGone:  # removed meanwhile: the next sync sees it
                continue

    def run(self) -> None:
        if self.batch.external is not None:
            self.adopt(self.batch.external)
            return
        self.mirror_mailboxes()
        for destroy in self.batch.destroys:
            if destroy.type_name == EMAIL:
                self.destroy_email(destroy.id)
        for put in self.batch.puts:
            if put.type_name == EMAIL:
                self.put_email(put.record)
        self.remove_folders()
        self._subscriptions.write(self.tree)
