"""Folding in what other programs wrote into the Maildir tree (design, section 4).

Folders another program made, renamed or removed become
:class:`~jmapcore.storage.ExternalMailbox` changes.  A file whose base name
is no Email's yet becomes a blob (its metadata only: the bytes stay in
the file, see :mod:`.blobfiles`) and an
:class:`~jmapcore.storage.ExternalMessage` (its hard links in other folders
with it); a known file renamed with other flags, removed or flagged T, or
linked into another folder, becomes an :class:`~jmapcore.storage.ExternalUpdate`.
They go to the plugins' ``external_changes`` callbacks; the mail plugin
applies them through its own write path in a batch marked external, and
the mirror records the files and folders instead of writing any.

One process at a time syncs an account (an flock beside the index).  The
last listings are kept in memory, so an idle check costs a few stats per
folder.  The first sync of a process lists everything and compares it
with the index (each known file with its :data:`MAILDIR_FILE` entry, each
folder with its :data:`MAILDIR_FOLDER` path and directory identity), so
flag changes, removals and folder renames made while no process was
running are found too; it also checks the tree's marker (:mod:`.rebuild`).
A flag change of one file is mirrored to the Email's other hard links.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from jmap_lmdb.env import Dbs
from jmap_lmdb.write import load_account

from jmapcore.storage import (
    ExternalChanges,
    ExternalMailbox,
    ExternalMessage,
    ExternalUpdate,
    Record,
)

from .errors import FolderNotFound, MessageGone
from .flags import split_keywords, split_name
from .folders import Folder, FolderListChanges, FolderListing, compare
from .mirror import EMAIL, MAILBOX, OwnOp, file_ref, folder_ref
from .names import INBOX, FolderPath
from .rebuild import drop_changes, new_token, read_marker, store_marker, stored_marker, write_marker
from .records import MAILDIR_FILE, MAILDIR_FOLDER, MAILDIR_NAME, TxnRecords, name_id
from .scan import Change, FolderScan, MessageEntry, message_entry
from .tree import MaildirTree

if TYPE_CHECKING:
    from .backend import MaildirBackend

#: Seconds between two looks at one account's folders, per process.
SYNC_INTERVAL = 0.2
#: The longest wait after failed syncs of one account.
MAX_BACKOFF = 60.0
#: Own file operations kept per account between two syncs.
MAX_OWN_OPS = 100_000
#: Messages (or Email updates) per write batch when many come at once: a
#: first sync adopting a tree, a rebuild dropping an account's Emails.
CHUNK = 1000

log = logging.getLogger(__name__)

Callback = Callable[[ExternalChanges], None]
#: (device, inode) -> [(mailbox id, base name)] of the files with that inode.
_Links = dict[tuple[int, int], list[tuple[str, str]]]


class ExternalSync:
    """One backend's view of its trees as last listed, by account and mailbox."""

    def __init__(self, backend: MaildirBackend, callback: Callback) -> None:
        self.backend = backend
        self.callback = callback
        self._scans: dict[str, dict[str, FolderScan]] = {}
        self._checked: dict[str, float] = {}
        self._wait: dict[str, float] = {}
        self._listings: dict[str, FolderListing] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        #: Our own committed file operations not yet folded into ``_scans``.
        self._own: dict[str, list[OwnOp]] = {}
        self._own_lock = threading.Lock()

    def note_own(self, account_id: str, ops: Iterable[OwnOp]) -> None:
        """File operations of a committed batch of ours: the next sync
        puts them into the stored listing before it looks (see
        :func:`_with_own`), so they are not taken for another program's
        and cost no lookup.  The stored stamps are left alone: a directory
        we wrote to is still listed again (one ``scandir`` pass), which is
        what finds another program's change made in the same second."""
        with self._own_lock:
            pending = self._own.setdefault(account_id, [])
            if len(pending) < MAX_OWN_OPS:  # beyond: found by the listing instead
                pending.extend(ops)

    def maybe_sync(self, account_id: str, *, force: bool = False) -> None:
        """Sync the account unless it was looked at within SYNC_INTERVAL, or
        this thread is already syncing (the callback reads snapshots too),
        or another thread is."""
        now = time.monotonic()
        if getattr(self._local, "busy", False):
            return
        interval = self._wait.get(account_id, SYNC_INTERVAL)
        if not force and now - self._checked.get(account_id, -interval) < interval:
            return
        if not self._lock.acquire(blocking=False):
            return
        self._local.busy = True
        try:
            self._checked[account_id] = now
            with _process_lock(self.backend.sync_lock_path(account_id)) as held:
                if held:
                    self.sync(account_id)
            self._wait.pop(account_id, None)
        except Exception:
            # The same changes are offered again later: back off, so a file
            # that keeps failing does not cost a try on every request.
            self._wait[account_id] = min(max(2 * interval, 1.0), MAX_BACKOFF)
            raise
        finally:
            self._local.busy = False
            self._lock.release()

    def sync(self, account_id: str) -> None:
        tree = self.backend.tree(account_id)
        if account_id not in self._listings:
            self._check_marker(account_id, tree)
        self._sync_folders(account_id, tree)
        folders = self.backend.read_internal(account_id, _folders)
        with self._own_lock:
            own = self._own.pop(account_id, [])
        old = _with_own(tree, self._scans.get(account_id, {}), own)
        if own and account_id in self._scans:
            self._scans[account_id] = old  # kept should this sync fail
        scans: dict[str, FolderScan] = {}
        seen = _Seen()
        for mailbox_id, path in folders.items():
            try:
                if mailbox_id in old and old[mailbox_id].folder == path:
                    changes = tree.changes_since(path, old[mailbox_id])
                    scans[mailbox_id] = changes.scan
                    seen.add(mailbox_id, changes.added, changes.removed, changes.changed)
                else:
                    scans[mailbox_id] = tree.scan(path)
                    seen.add(mailbox_id, tuple(scans[mailbox_id].entries.values()), (), ())
                    seen.fresh[mailbox_id] = scans[mailbox_id]
            except FolderNotFound:
                continue
        if seen:
            # A write transaction waits for any writer still writing files,
            # so its files are known by the time they are looked up.
            listed = [*old.items(), *scans.items()]
            unknown, updated = self.backend.write_internal(
                account_id,
                lambda r: seen.resolve(r, tree, folders, lambda: _links(listed, {e.link_id for _, e in seen.added})),
            )
            self._hand_over(ExternalChanges(account_id, [], updated))
            for start in range(0, len(unknown), CHUNK):
                part = [self._stored(account_id, tree, g) for g in unknown[start : start + CHUNK]]
                self.callback(ExternalChanges(account_id, [m for m in part if m], []))
        self._scans[account_id] = scans  # only once the plugins took the changes

    def _hand_over(self, changes: ExternalChanges) -> None:
        """Give the plugins ``changes`` in batches of at most CHUNK updates
        (each batch is one write transaction).  The updates keep the order
        the plugin applies them in (those adding a file first, so a move
        keeps its Email); the mailbox changes go with the last batch.
        Should a batch fail, the next sync offers what is left again (the
        listing is stored only after the last batch): the index says what
        was already done."""
        updated = sorted(changes.updated, key=lambda u: u.ref is None)
        if not updated and not changes.mailboxes:
            return
        starts = range(0, max(len(updated), 1), CHUNK)
        for start in starts:
            last = start == starts[-1]
            self.callback(
                ExternalChanges(
                    changes.account_id,
                    list(changes.delivered) if last else [],
                    updated[start : start + CHUNK],
                    mailboxes=list(changes.mailboxes) if last else [],
                )
            )

    def rebuild(self, account_id: str) -> int:
        """Drop the account's mail data and adopt its tree anew (waiting
        for any other sync of it); returns the new epoch."""
        with self._lock, _process_lock(self.backend.sync_lock_path(account_id), wait=True):
            self._local.busy = True
            try:
                return self._rebuild(account_id, self.backend.tree(account_id))
            finally:
                self._local.busy = False

    def _rebuild(self, account_id: str, tree: MaildirTree) -> int:
        """See :mod:`.rebuild`: every Email removed through the plugins
        (no file touched), a new epoch, new markers, then a first listing
        adopts every file."""
        self._scans.pop(account_id, None)
        self._listings.pop(account_id, None)
        changes = self.backend.read_internal(account_id, lambda r: drop_changes(account_id, r, tree))
        self._hand_over(changes)  # in batches: a 100k-message account is no single write
        epoch = self.backend.bump_epoch(account_id)
        token = new_token()
        self.backend.write_internal(account_id, lambda r: store_marker(r, token))
        write_marker(tree, token)
        self.sync(account_id)
        return epoch

    def _check_marker(self, account_id: str, tree: MaildirTree) -> None:
        """On a process's first sync of the account: rebuild when the
        sidecar's marker and the tree's differ (design, section 5); set
        them when the sidecar has none yet."""
        stored = self.backend.read_internal(account_id, stored_marker)
        on_disk = read_marker(tree)
        if stored is None:
            token = on_disk or new_token()
            self.backend.write_internal(account_id, lambda r: store_marker(r, token))
            if on_disk != token:
                write_marker(tree, token)
        elif stored != on_disk:
            log.warning("account %s: the index's marker and %s disagree: rebuilding from the tree", account_id, tree.root)
            self._rebuild(account_id, tree)

    def _sync_folders(self, account_id: str, tree: MaildirTree) -> None:
        """Folders other programs made, renamed or removed become mailbox
        changes (before the messages, which need the folders mapped)."""
        previous = self._listings.get(account_id)
        if previous is None:
            listing = tree.list_folders()
            known = self.backend.read_internal(account_id, lambda r: list(r.all(MAILDIR_FOLDER)))
            events = compare(_last_seen(known, listing), listing)
        else:
            events = tree.folder_changes_since(previous)
        if events:
            changes = self.backend.write_internal(account_id, lambda r: _FolderEvents(tree, events).resolve(r))
            if changes:
                self.callback(ExternalChanges(account_id, mailboxes=changes))
        self._listings[account_id] = events.listing

    def _stored(self, account_id: str, tree: MaildirTree, group: list[tuple[str, MessageEntry]]) -> ExternalMessage | None:
        """One new message: a file and its hard links in other folders."""
        _, first = group[0]
        try:
            data = tree.read(first.file)
        except MessageGone:
            return None
        # The bytes stay in the file only (see .blobfiles).
        blob_id = self.backend.put_file_blob(account_id, data, [[m, e.subdir, e.name] for m, e in group])
        return ExternalMessage(
            tuple(m for m, _ in group),
            blob_id,
            tuple(sorted(first.keywords)),
            first.mtime_ns / 1e9,
            tuple(file_ref(m, e.name) for m, e in group),
        )

    def forget(self) -> None:
        self._scans.clear()
        self._checked.clear()
        self._wait.clear()
        self._listings.clear()


@contextmanager
def _process_lock(path: str, *, wait: bool = False) -> Iterator[bool]:
    """An flock other processes syncing the same account skip on (True if
    held; ``wait``: block until it is): two processes adopting one file
    would make two Emails of it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the lock


def _folders(records: TxnRecords) -> dict[str, FolderPath]:
    return {r["id"]: tuple(r["path"]) for r in records.all(MAILDIR_FOLDER)}


class _Seen:
    """The file events of one sync, before they are matched to Emails."""

    def __init__(self) -> None:
        self.added: list[tuple[str, MessageEntry]] = []
        self.removed: list[tuple[str, str]] = []  # (mailbox id, base)
        self.flagged: list[tuple[str, MessageEntry]] = []
        #: Folders listed for the first time by this process: their known
        #: files are compared with the index (changes made while no process ran).
        self.fresh: dict[str, FolderScan] = {}

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.flagged or self.fresh)

    def add(
        self,
        mailbox_id: str,
        added: Iterable[MessageEntry],
        removed: Iterable[MessageEntry],
        changed: Iterable[Change],
    ) -> None:
        """A file flagged T (IMAP \\Deleted) counts as gone (design, section 6)."""
        self.added += [(mailbox_id, e) for e in added if not e.deleted]
        self.removed += [(mailbox_id, e.base) for e in removed]
        for change in changed:
            if not change.flags_changed:
                continue
            if change.new.deleted:
                self.removed.append((mailbox_id, change.new.base))
            elif change.old.deleted:
                self.added.append((mailbox_id, change.new))
            else:
                self.flagged.append((mailbox_id, change.new))

    def resolve(
        self,
        records: TxnRecords,
        tree: MaildirTree,
        folders: dict[str, FolderPath],
        make_links: Callable[[], _Links],
    ) -> tuple[list[list[tuple[str, MessageEntry]]], list[ExternalUpdate]]:
        """Files no Email is yet, grouped by inode (hard links are one
        message), and the changes to Emails, skipping what the index
        already says (our own renames and unlinks).  A new file linked to
        a known one (another program's copy or move) joins its Email."""
        self._reconcile(records, tree, folders)
        updated: list[ExternalUpdate] = []
        groups: dict[tuple[int, int], list[tuple[str, MessageEntry]]] = {}
        links: _Links | None = None  # built only for files no Email has (not our own)
        for mailbox_id, entry in self.added:
            known = _email_of(records, mailbox_id, entry)
            if known is not None:
                if _renamed_unseen(records, tree, folders[mailbox_id], known, mailbox_id, entry):
                    self.flagged.append((mailbox_id, entry))
                continue
            if links is None:
                links = make_links()
            sibling = next(
                (found for m, base in links.get(entry.link_id, ()) if (found := _name_of(records, m, base))),
                None,
            )
            if sibling is not None:
                updated.append(ExternalUpdate(sibling, mailbox_id, ref=file_ref(mailbox_id, entry.name)))
            else:
                groups.setdefault(entry.link_id, []).append((mailbox_id, entry))
        for mailbox_id, base in self.removed:
            email_id = _name_of(records, mailbox_id, base)
            if email_id is not None:
                updated.append(ExternalUpdate(email_id, mailbox_id, removed=True))
        for mailbox_id, entry in self.flagged:
            email_id = _email_of(records, mailbox_id, entry)
            email = None if email_id is None else records.get(EMAIL, email_id)
            if email is None:
                continue
            old = {k.lower() for k, v in (email.get("keywords") or {}).items() if v}
            table = tree.keyword_table(folders[mailbox_id])
            unlettered = {k for k in split_keywords(old)[1] if table.letter_for(k) is None}
            new = set(entry.keywords) | unlettered
            if new != old:
                updated.append(ExternalUpdate(email["id"], mailbox_id, keywords=tuple(sorted(new))))
        return list(groups.values()), updated

    def _reconcile(self, records: TxnRecords, tree: MaildirTree, folders: dict[str, FolderPath]) -> None:
        """Known files of freshly listed folders that are gone or flagged T
        (removed while no process watched; renames are found as added
        files, see :func:`_renamed_unseen`).  Runs in the write transaction,
        so our own writers are done: a file still under its recorded name
        was written by us after the listing."""
        if not self.fresh:
            return
        for stored in records.all(MAILDIR_FILE):
            for mailbox_id, name in stored["files"].items():
                scan = self.fresh.get(mailbox_id)
                if scan is None:
                    continue
                base = split_name(name)[0]
                entry = scan.entries.get(base)
                if entry is not None and not entry.deleted:
                    continue
                if not _on_disk(tree, folders[mailbox_id], name):
                    self.removed.append((mailbox_id, base))


class _FolderEvents:
    """Folder changes matched against the mailboxes' folders, inside the
    write transaction (so our own folder work has finished: a folder that
    is not on disk any more was only passing through)."""

    def __init__(self, tree: MaildirTree, events: FolderListChanges) -> None:
        self.tree = tree
        self.events = events
        self.mapped: dict[FolderPath, str] = {}
        self.new_refs: dict[FolderPath, str] = {}

    def _exists(self, path: FolderPath) -> bool:
        return os.path.isdir(self.tree.folder_dir(path))

    def _parent(self, path: FolderPath) -> tuple[str | None, str | None] | None:
        """(parent id, parent ref) of a folder; None when its parent folder
        is no mailbox (a Maildir++ ".a.b" without ".a": not adopted yet)."""
        if path[:-1] == ("INBOX",):
            return (self.mapped.get(INBOX), None)
        if len(path) == 1:
            return (None, None)
        if path[:-1] in self.mapped:
            return (self.mapped[path[:-1]], None)
        if path[:-1] in self.new_refs:
            return (None, self.new_refs[path[:-1]])
        return None

    def resolve(self, records: TxnRecords) -> list[ExternalMailbox]:
        self.mapped = {tuple(r["path"]): r["id"] for r in records.all(MAILDIR_FOLDER)}
        out: list[ExternalMailbox] = []
        for folder in sorted(self.events.added, key=lambda f: len(f.path)):
            path = folder.path
            if path == INBOX or path in self.mapped or not self._exists(path):
                continue
            parent = self._parent(path)
            if parent is None:
                log.info("folder %r has no parent mailbox: not adopted", path)
                continue
            ref = folder_ref(path)
            out.append(ExternalMailbox(None, path[-1], parent[0], parent[1], ref=ref))
            self.new_refs[path] = ref
        for old, new in sorted(self.events.renamed, key=lambda pair: len(pair[1].path)):
            mailbox_id = self.mapped.get(old.path)
            if mailbox_id is None or new.path in self.mapped or not self._exists(new.path):
                continue
            self._move_prefix(old.path, new.path)
            parent = self._parent(new.path)
            record = records.get(MAILBOX, mailbox_id)
            if parent is None or record is None:
                continue
            if record.get("name") == new.path[-1] and record.get("parentId") == parent[0] and parent[1] is None:
                continue  # moved with its parent: the parent's change maps it
            out.append(ExternalMailbox(mailbox_id, new.path[-1], parent[0], parent[1], ref=folder_ref(new.path)))
        for folder in self.events.removed:
            mailbox_id = self.mapped.get(folder.path)
            if mailbox_id is not None and folder.path != INBOX and not self._exists(folder.path):
                out.append(ExternalMailbox(mailbox_id, removed=True, ref=folder_ref(folder.path)))
        return out

    def _move_prefix(self, old: FolderPath, new: FolderPath) -> None:
        self.mapped = {
            (new + p[len(old) :] if p[: len(old)] == old else p): m for p, m in self.mapped.items()
        }


def _renamed_unseen(
    records: TxnRecords, tree: MaildirTree, folder: FolderPath, email_id: str, mailbox_id: str, entry: MessageEntry
) -> bool:
    """Whether a listed file of an Email is not under the name the index
    has, and that name is gone: another program renamed it while no listing
    watched (this process had not started, or the file was ours and new)."""
    stored = records.get(MAILDIR_FILE, email_id)
    name = None if stored is None else stored["files"].get(mailbox_id)
    return (
        name is not None
        and name != entry.name
        and not _on_disk(tree, folder, name)
        and _on_disk(tree, folder, entry.name)
    )


def _last_seen(known: Iterable[Record], listing: FolderListing) -> FolderListing:
    """The folders as the index last knew them, for a process's first
    listing to compare with (folders renamed or removed while no process
    ran).  A mailbox's folder still at its path with the same directory is
    the listed one; the others keep their stored identity (none for
    records older than it: only a removal is found then)."""
    folders: dict[FolderPath, Folder] = {}
    for record in known:
        path = tuple(record["path"])
        listed = listing.folders.get(path)
        dev, ino = record.get("dir") or (-1, -1)
        if listed is not None and (record.get("dir") is None or listed.dir_id == (dev, ino)):
            folders[path] = listed
        else:
            folders[path] = Folder(path, "", dev, ino)
    return FolderListing(folders)


def _on_disk(tree: MaildirTree, folder: FolderPath, name: str) -> bool:
    """Whether a file of that exact name is in the folder's cur/ or new/."""
    directory = tree.folder_dir(folder)
    return any(os.path.lexists(directory / sub / name) for sub in ("cur", "new"))


def _email_of(records: TxnRecords, mailbox_id: str, entry: MessageEntry) -> str | None:
    return _name_of(records, mailbox_id, entry.base)


def _name_of(records: TxnRecords, mailbox_id: str, base: str) -> str | None:
    found = records.get(MAILDIR_NAME, name_id(mailbox_id, base))
    return None if found is None else found["emailId"]


def _with_own(tree: MaildirTree, scans: dict[str, FolderScan], ops: list[OwnOp]) -> dict[str, FolderScan]:
    """The stored listings with our own committed file operations applied:
    what each folder held right after our writes, as far as we know it.

    The stamps stay those of the last listing, so every directory we
    touched is still listed again, and the listing is compared with this
    state: whatever else changed there, in the same second or not, shows
    as a difference.  A file we made that is already gone again is put in
    all the same (with no inode), so its removal by another program is
    found, even one made before any listing saw the file.
    """
    if not ops or not scans:
        return scans
    by_folder: dict[FolderPath, list[OwnOp]] = {}
    for op in ops:
        by_folder.setdefault(op[0], []).append(op)
    out = dict(scans)
    for mailbox_id, scan in scans.items():
        folder_ops = by_folder.get(scan.folder)
        if folder_ops and not scan.duplicates:
            out[mailbox_id] = _scan_with(tree, scan, folder_ops)
    return out


def _scan_with(tree: MaildirTree, scan: FolderScan, ops: list[OwnOp]) -> FolderScan:
    directory = tree.folder_dir(scan.folder)
    entries = dict(scan.entries)
    files = {sub: dict(names) for sub, names in scan.files.items()}
    table = tree.keyword_table(scan.folder)
    for _, gone, made in ops:
        if gone is not None:
            subdir, name = gone
            base = split_name(name)[0]
            entry = entries.get(base)
            if entry is not None and (entry.subdir, entry.name) == (subdir, name):
                del entries[base]
            files.get(subdir, {}).pop(name, None)
        if made is None:
            continue
        try:
            st: os.stat_result | None = os.lstat(directory / "cur" / made)
        except FileNotFoundError:  # renamed or removed since: the listing tells
            st = None
        entry = message_entry(scan.folder, "cur", made, st, table.names)
        present = entries.get(entry.base)
        if present is not None and (present.subdir, present.name) != ("cur", made):
            files.get(present.subdir, {}).pop(present.name, None)  # renamed by us
        entries[entry.base] = entry
        files.setdefault("cur", {})[made] = _NO_INODE if st is None else st.st_ino
    return FolderScan(scan.folder, scan.stamp, entries, scan.duplicates, files)


#: A file of ours that is gone again has no inode a listing can match, so
#: the listing reports it removed.
_NO_INODE = -1


def _links(scans: Iterable[tuple[str, FolderScan]], wanted: set[tuple[int, int]]) -> _Links:
    """(device, inode) -> the (mailbox, base) of every listed file with one
    of the ``wanted`` identities, from the last listings and the new ones
    (a file moved away is in the old).  Found through each scan's
    {name: inode} dicts, so a large folder costs one pass at C speed."""
    inodes = {ino for _, ino in wanted}
    links: dict[tuple[int, int], list[tuple[str, str]]] = {}
    for mailbox_id, scan in scans:
        for names in scan.files.values():
            for name in [n for n, ino in names.items() if ino in inodes]:
                entry = scan.entries.get(split_name(name)[0])
                if entry is not None and entry.name == name and entry.link_id in wanted:
                    links.setdefault(entry.link_id, []).append((mailbox_id, entry.base))
    return links


def account_records(txn: Any, dbs: Dbs, account_id: str) -> TxnRecords:
    return TxnRecords(txn, dbs, load_account(txn, dbs, account_id).num)
