"""The folder half of mirroring a batch: Mailbox records -> Maildir folders.

A mailbox's folder is its names from the top down (the top-level inbox-role
mailbox is INBOX, the root; its children are ``("INBOX", ...)``), kept in
the internal :data:`~.records.MAILDIR_FOLDER` records; ``isSubscribed``
goes to the Maildir++ ``subscriptions`` file.  :class:`.mirror.Mirror`
adds the messages.
"""

from __future__ import annotations

import json
import logging
import os

from jmapcore.storage import Record, WriteBatch

from .errors import FolderExists, InvalidName, MaildirError
from .names import INBOX, FolderPath, validate_path
from .records import MAILDIR_FOLDER, TxnRecords
from .tree import MaildirTree

MAILBOX = "Mailbox"
#: Deeper parent chains are treated as broken (the mail plugin allows 10).
_MAX_DEPTH = 64

log = logging.getLogger(__name__)


def folder_ref(path: FolderPath) -> str:
    """The ``ref`` of a folder: its path as JSON."""
    return json.dumps(list(path))


def folder_of_ref(ref: str) -> FolderPath:
    return tuple(json.loads(ref))


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


class FolderMirror:
    """The folder work of one batch (see :class:`.mirror.Mirror`)."""

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
            record: dict[str, object] = {"id": mailbox_id, "path": list(path)}
            try:  # the directory's identity: a new process finds renames by it
                found = os.stat(self.tree.folder_dir(path))
                record["dir"] = [found.st_dev, found.st_ino]
            except OSError:
                pass
            self.records.put_internal(MAILDIR_FOLDER, record)

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

    def _adopt_folder(self, mailbox_id: str, ref: str) -> None:
        """Map a mailbox to a folder another program made or renamed (the
        subfolders a rename moved come with it)."""
        new = folder_of_ref(ref)
        old = self.folder(mailbox_id)
        if old is not None and old != INBOX and old != new:
            self._rename_prefix(old, new)
        self._set_folder(mailbox_id, new)


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
