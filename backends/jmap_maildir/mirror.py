"""Mirroring one committed batch into the account's Maildir tree.

Runs inside the LMDB write transaction, after the batch's preconditions
passed and before its records are written (so the old records are still
readable).  Order: folders are made or renamed first, then Email files are
removed, linked, renamed and delivered, and emptied folders go last.  An
exception aborts the transaction; a file already written then has no index
entry, which the next sync adopts as a delivery (design, section 2).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from jmapcore.storage import Record, WriteBatch

from .errors import FolderExists, InvalidName, MaildirError, MessageGone
from .flags import split_name
from .names import INBOX, FolderPath, validate_path
from .records import MAILDIR_FILE, MAILDIR_FOLDER, MAILDIR_NAME, TxnRecords, name_id
from .scan import MessageFile
from .tree import MaildirTree

EMAIL = "Email"
MAILBOX = "Mailbox"
#: Deeper parent chains are treated as broken (the mail plugin allows 10).
_MAX_DEPTH = 64

log = logging.getLogger(__name__)


def file_ref(mailbox_id: str, name: str) -> str:
    """The ``ref`` of an external message: mailbox and file name (neither
    can hold a slash)."""
    return f"{mailbox_id}/{name}"


def folder_ref(path: FolderPath) -> str:
    """The ``ref`` of a folder: its path as JSON."""
    return json.dumps(list(path))


def folder_of_ref(ref: str) -> FolderPath:
    return tuple(json.loads(ref))


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


def _is_inbox(record: Record) -> bool:
    """The top-level inbox-role mailbox: the tree's root folder."""
    return record.get("role") == "inbox" and not record.get("parentId")


def _valid(path: FolderPath) -> FolderPath | None:
    """The path, or None (index only, logged) for a name the tree refuses,
    such as a top-level "inbox" that is not the inbox."""
    try:
        return validate_path(path)
    except InvalidName as exc:
        log.warning("mailbox path %r has no folder: %s", path, exc)
        return None


def _keywords(record: Record) -> list[str]:
    return [k for k, v in (record.get("keywords") or {}).items() if v]


class Mirror:
    """The file work of one batch."""

    def __init__(self, tree: MaildirTree, records: TxnRecords, batch: WriteBatch) -> None:
        self.tree = tree
        self.records = records
        self.batch = batch
        self._mailboxes = {p.record["id"]: p.record for p in batch.puts if p.type_name == MAILBOX}
        self._folders: dict[str, FolderPath | None] = {}
        self._subscriptions = _SubscriptionChanges()

    # -- folders -------------------------------------------------------------

    def folder(self, mailbox_id: str) -> FolderPath | None:
        """The folder a mailbox is mirrored to (None: no folder)."""
        if mailbox_id not in self._folders:
            stored = self.records.get(MAILDIR_FOLDER, mailbox_id)
            self._folders[mailbox_id] = None if stored is None else tuple(stored["path"])
        return self._folders[mailbox_id]

    def _set_folder(self, mailbox_id: str, path: FolderPath | None) -> None:
        self._folders[mailbox_id] = path
        if path is None:
            self.records.delete_internal(MAILDIR_FOLDER, mailbox_id)
        else:
            self.records.put_internal(MAILDIR_FOLDER, {"id": mailbox_id, "path": list(path)})

    def _mailbox(self, mailbox_id: str) -> Record | None:
        if mailbox_id in self._mailboxes:
            return self._mailboxes[mailbox_id]
        return self.records.get(MAILBOX, mailbox_id)

    def wanted_path(self, mailbox_id: str) -> FolderPath | None:
        """The folder the mailbox should have after the batch: INBOX for the
        top-level inbox-role mailbox, else its names from the top down."""
        record = self._mailbox(mailbox_id)
        if record is None:
            return None
        if _is_inbox(record):
            return INBOX
        names: list[str] = []
        while record is not None and len(names) < _MAX_DEPTH:
            if _is_inbox(record):
                names.append("INBOX")  # the layer's name for INBOX's children
                return _valid(tuple(reversed(names)))
            name = record.get("name")
            if not isinstance(name, str) or not name:
                return None
            names.append(name)
            parent = record.get("parentId")
            if not parent:
                return _valid(tuple(reversed(names)))
            record = self._mailbox(parent)
        return None

    def _rename_prefix(self, old: FolderPath, new: FolderPath) -> None:
        """Point every mapping under ``old`` at ``new`` (a Maildir++ rename
        moves the subfolders too)."""
        for stored in self.records.all(MAILDIR_FOLDER):
            path = tuple(stored["path"])
            if path[: len(old)] == old and path != old and self.folder(stored["id"]) == path:
                self._set_folder(stored["id"], new + path[len(old) :])

    def mirror_mailboxes(self) -> None:
        """Create and rename folders, parents before children.  Several
        renames in one batch (two siblings swapping names) first move each
        folder aside to a name of its own, so no target is ever taken."""
        before = {m: self.folder(m) for m in self._mailboxes}
        planned = [(m, self.wanted_path(m)) for m in self._mailboxes]
        planned.sort(key=lambda item: -1 if item[1] is None else len(item[1]))
        renames = [m for m, new in planned if new is not None and self.folder(m) not in (None, new)]
        if len(renames) > 1:
            for mailbox_id in renames:
                self._rename(mailbox_id, self._aside(mailbox_id))
        for mailbox_id, new in planned:
            old = self.folder(mailbox_id)
            if new is None or old == new:
                continue
            if old is not None:
                self._rename(mailbox_id, new)
                continue
            if new != INBOX:
                try:
                    self.tree.create_folder(new)
                except FolderExists:
                    pass  # adopt the folder another program made
            self._set_folder(mailbox_id, new)
        for mailbox_id, path in before.items():
            self._note_subscription(mailbox_id, path)

    def _note_subscription(self, mailbox_id: str, before: FolderPath | None) -> None:
        """isSubscribed goes to the Maildir++ ``subscriptions`` file."""
        stored = self.records.get(MAILBOX, mailbox_id)
        was = bool(stored and stored.get("isSubscribed"))
        now = bool(self._mailboxes[mailbox_id].get("isSubscribed"))
        path = self.folder(mailbox_id)
        if (was, before) != (now, path) and path not in (None, INBOX):
            assert path is not None
            self._subscriptions.set(path, now)

    def _aside(self, mailbox_id: str) -> FolderPath:
        current = self.folder(mailbox_id)
        assert current is not None
        return current[:-1] + (f"jmap-rename-{mailbox_id}",)

    def _rename(self, mailbox_id: str, new: FolderPath) -> None:
        old = self.folder(mailbox_id)
        assert old is not None
        if INBOX in (old, new):
            log.warning("mailbox %s: INBOX cannot move (%r -> %r)", mailbox_id, old, new)
            return
        self.tree.rename_folder(old, new)
        self._subscriptions.moves.append((old, new))
        self._rename_prefix(old, new)
        self._set_folder(mailbox_id, new)

    def remove_folders(self) -> None:
        """Delete destroyed mailboxes' folders, deepest first; a folder still
        holding files another program delivered is left in place."""
        gone = [d.id for d in self.batch.destroys if d.type_name == MAILBOX]
        paths = [(m, self.folder(m)) for m in gone]
        for mailbox_id, path in sorted(paths, key=lambda item: -len(item[1] or ())):
            if path is not None and path != INBOX:
                try:
                    self.tree.delete_folder(path)
                except MaildirError as exc:
                    log.warning("kept folder %r of destroyed mailbox %s: %s", path, mailbox_id, exc)
            if path is not None:
                self._set_folder(mailbox_id, None)
                self._subscriptions.set(path, False)

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

    def destroy_email(self, email_id: str) -> None:
        files = self._files(email_id)
        for mailbox_id, name in files.items():
            message = self._message(mailbox_id, name)
            if message is not None:
                self.tree.remove(message)
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
                    kept[mailbox_id] = self.tree.set_flags(message, keywords=keywords).name
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
                copy = self.tree.set_flags(copy, keywords=keywords)
            source = source or copy
            kept[mailbox_id] = copy.name
        for mailbox_id, name in files.items():
            if mailbox_id not in kept:
                message = self._message(mailbox_id, name)
                if message is not None:
                    self.tree.remove(message)
        self.save_files(email_id, files, kept)

    def _link(self, source: MessageFile, folder: FolderPath) -> MessageFile | None:
        """A hard link of ``source`` in ``folder``; None if another program
        removed the source meanwhile (the caller delivers from the blob)."""
        try:
            return self.tree.link(source, folder)
        except MessageGone:
            return None

    def _deliver(self, record: Record, folder: FolderPath, keywords: list[str]) -> MessageFile | None:
        data = self.records.blob(record["blobId"])
        if data is None:
            log.warning("email %s: blob %s missing, no file written", record["id"], record["blobId"])
            return None
        return self.tree.deliver(folder, data, keywords=keywords, received=_received(record.get("receivedAt")))

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
            if kept != files:
                self.save_files(email_id, files, kept)
        for destroy in self.batch.destroys:
            if destroy.type_name == EMAIL:
                self.save_files(destroy.id, self._files(destroy.id), {})

    def _adopt_folder(self, mailbox_id: str, ref: str) -> None:
        """Map a mailbox to a folder another program made or renamed (the
        subfolders a rename moved come with it)."""
        new = folder_of_ref(ref)
        old = self.folder(mailbox_id)
        if old is not None and old != INBOX and old != new:
            self._rename_prefix(old, new)
        self._set_folder(mailbox_id, new)

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


class _SubscriptionChanges:
    """What one batch changes in the ``subscriptions`` file, written once
    at the end: folder renames (their subfolders' entries move too), then
    the subscribed and unsubscribed folders."""

    def __init__(self) -> None:
        self.moves: list[tuple[FolderPath, FolderPath]] = []
        self.wanted: dict[FolderPath, bool] = {}

    def set(self, path: FolderPath, subscribed: bool) -> None:
        self.wanted[path] = subscribed

    def write(self, tree: MaildirTree) -> None:
        if not (self.moves or self.wanted):
            return
        before = tree.subscriptions()
        current = set(before)
        for old, new in self.moves:
            current = {new + p[len(old) :] if p[: len(old)] == old else p for p in current}
        current |= {p for p, on in self.wanted.items() if on}
        current -= {p for p, on in self.wanted.items() if not on}
        if current != before:
            tree.set_subscriptions(current)
