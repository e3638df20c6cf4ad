"""The Maildir backend: the LMDB sidecar index plus write-through into files.

Every record, index, change-log row and blob's metadata lives in the LMDB
environment (so the storage Protocol and its conformance suite hold
unchanged); each committed batch that writes Emails or Mailboxes is also
mirrored into the account's :class:`MaildirTree` by :mod:`.mirror`, inside
the same write transaction.  What other programs change in the tree is
folded in by :mod:`.sync`; :mod:`.rebuild` rebuilds an account's mail
from its tree under a new epoch.  A message blob's bytes are kept in its
file only, and read from there (:mod:`.blobfiles`, design section 3).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from jmap_lmdb import LmdbBackend, blobs, keys
from jmap_lmdb.env import Dbs
from jmap_lmdb.errors import UnusablePath
from jmap_lmdb.snapshot import LmdbSnapshot
from jmap_lmdb.write import BeforeApply, load_account

from jmapcore.storage import BlobInfo, CommitResult, ExternalChanges, UnknownAccount, WriteBatch

from . import blobfiles
from .mirror import Mirror, OwnOp, touches_mail
from .names import Layout
from .records import TxnRecords
from .sync import ExternalSync, account_records
from .tree import MaildirTree

T = TypeVar("T")
log = logging.getLogger(__name__)
_LMDB_OPTIONS = frozenset({"map_size", "max_readers", "sync", "readahead"})
#: Seconds between two looks at an account's tree on behalf of push waiters.
WAIT_SYNC_INTERVAL = 0.5


def account_root(template: str, account_name: str) -> str:
    """``template`` with ``%u`` replaced by the account name; a name that
    could climb out of (or into) another account's tree is refused."""
    if "%u" in template and (
        not account_name or "/" in account_name or "\0" in account_name or account_name in (".", "..")
    ):
        raise UnusablePath(f"account name {account_name!r} cannot name a Maildir root")
    return template.replace("%u", account_name)


class MaildirSnapshot(LmdbSnapshot):
    """An LMDB snapshot whose message blobs are read from their files
    (:mod:`.blobfiles`) when the store no longer has their bytes."""

    def __init__(self, *args: Any, tree: Callable[[], MaildirTree]) -> None:
        super().__init__(*args)
        self._tree = tree

    def read_blob(self, blob_id: str, offset: int = 0, length: int | None = None) -> bytes | None:
        data = super().read_blob(blob_id, offset, length)
        if data is not None:
            return data
        with self._reading() as txn:
            if txn.get(keys.blob_meta_key(self._num, blob_id), db=self._dbs.blobmeta) is None:
                return None
            found = blobfiles.locations(TxnRecords(txn, self._dbs, self._num), blob_id)
        if not found:
            return None
        try:
            tree = self._tree()
        except Exception:  # an account whose tree cannot be opened has no files to read
            log.exception("opening the Maildir tree of %s to read blob %s", self.account_id, blob_id)
            return None
        return blobfiles.read_located(tree, found, offset, length)


class MaildirBackend(LmdbBackend):
    """:class:`LmdbBackend` whose mail also lives in one Maildir tree per account."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        maildir_root: str | None = None,
        layout: Layout = "maildir++",
        **lmdb_options: Any,
    ) -> None:
        super().__init__(path, **lmdb_options)
        self.maildir_root = maildir_root or os.path.join(self.path, "maildir", "%u")
        self.layout: Layout = layout
        self._trees: dict[str, MaildirTree] = {}
        self._trees_lock = threading.Lock()
        self._sync: ExternalSync | None = None
        self._ops = threading.local()  # the file operations of this thread's commit
        self._waiter_synced: dict[str, float] = {}
        self._waiter_lock = threading.Lock()

    def tree(self, account_id: str) -> MaildirTree:
        """The account's tree (created if missing); raises UnknownAccount."""
        tree = self._trees.get(account_id)
        if tree is not None:
            return tree
        account = self.directory.get_account(account_id)
        if account is None:
            raise UnknownAccount(account_id)
        with self._trees_lock:
            tree = self._trees.get(account_id)
            if tree is None:
                root = account_root(self.maildir_root, account.name)
                tree = MaildirTree(root, self.layout)
                tree.recover()  # leftovers of crashed writers, ours and others'
                self._trees[account_id] = tree
        return tree

    # -- external changes (design, section 4) ----------------------------------

    def attach(self, core: Any) -> None:
        """Called by the Core: from now on, files other programs deliver are
        handed to the plugins' ``external_changes`` callbacks before a
        snapshot is opened (at most every SYNC_INTERVAL per account)."""
        callbacks = [
            (plugin.external_changes, core)
            for plugin in core.registry.plugins.values()
            if getattr(plugin, "external_changes", None) is not None
        ]
        if not callbacks:
            return

        def deliver(changes: ExternalChanges) -> None:
            for callback, owner in callbacks:
                callback(owner, changes)

        self._sync = ExternalSync(self, deliver)

    def snapshot(self, account_id: str) -> LmdbSnapshot:
        if self._sync is not None:
            try:
                self._sync.maybe_sync(account_id)
            except UnknownAccount:
                pass  # the snapshot says so
            except Exception:  # a broken file must not make the account unreadable
                log.exception("syncing the Maildir tree of %s failed", account_id)
        self._ensure_indexes()
        return MaildirSnapshot(
            self._env, account_id, self._index_spec, self._search, tree=lambda: self.tree(account_id)
        )

    # -- blobs (design, section 3: message blobs are the files) -----------------

    def put_blob(self, account_id: str, data: bytes, uploader: str | None) -> BlobInfo:
        """LmdbBackend's put_blob; the bytes go back into the store if only
        files held them (see :mod:`.blobfiles`)."""
        blob_id = blobs.blob_id_for(data)
        now = time.time()

        def put(txn: Any, dbs: Dbs) -> BlobInfo:
            num = load_account(txn, dbs, account_id).num
            info = blobs.put(txn, dbs, num, blob_id, data, uploader, now)
            blobfiles.ensure_data(txn, dbs, blob_id, data)
            return info

        return self._env.write(put)

    def put_file_blob(self, account_id: str, data: bytes, files: list[list[str]]) -> str:
        """An adopted file's bytes as an unreferenced blob of the account,
        without storing them: only the metadata and the files
        ([mailboxId, subdir, name]) they are read from until the Email
        that takes them is committed.  Returns the blobId."""
        blob_id = blobs.blob_id_for(data)
        now = time.time()

        def put(txn: Any, dbs: Dbs) -> str:
            num = load_account(txn, dbs, account_id).num
            return blobfiles.put_file_blob(txn, dbs, num, blob_id, len(data), now, files)

        return self._env.write(put)

    def wait_for_change(self, since: Mapping[str, int], timeout: float) -> dict[str, int]:
        """LmdbBackend's wait (woken by this process's commits, polling
        other processes'), which also folds in the external changes of the
        accounts in ``since`` while it waits, at most every
        WAIT_SYNC_INTERVAL per account however many waiters there are: a
        file another program drops into the tree wakes a push waiter within
        about a second with no request being made (design: push across
        worker processes; issue 4: external changes wake push waiters)."""
        if self._sync is None:
            return super().wait_for_change(since, timeout)
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            self._sync_for_waiters(since)
            remaining = deadline - time.monotonic()
            current = super().wait_for_change(since, max(0.0, min(remaining, WAIT_SYNC_INTERVAL)))
            if remaining <= WAIT_SYNC_INTERVAL or any(current.get(a, m) > m for a, m in since.items()):
                return current

    def _sync_for_waiters(self, account_ids: Iterable[str]) -> None:
        sync = self._sync
        assert sync is not None
        for account_id in account_ids:
            now = time.monotonic()
            with self._waiter_lock:
                if now - self._waiter_synced.get(account_id, -math.inf) < WAIT_SYNC_INTERVAL:
                    continue
                self._waiter_synced[account_id] = now
            try:
                sync.maybe_sync(account_id)
            except UnknownAccount:
                pass
            except Exception:  # backs off inside maybe_sync; the waiter keeps waiting
                log.exception("syncing the Maildir tree of %s for a push waiter failed", account_id)

    def sync(self, account_id: str) -> None:
        """Fold in external changes now (tests, the CLI)."""
        if self._sync is not None:
            self._sync.maybe_sync(account_id, force=True)

    def rebuild_account(self, account_id: str) -> int:
        """Drop the account's Emails and Threads and adopt its tree anew,
        under a new epoch (design, section 5; see :mod:`.rebuild`); returns
        the epoch.  Needs a Core with the mail plugin attached."""
        if self._sync is None:
            raise RuntimeError("rebuilding needs a Core whose plugins take external changes")
        return self._sync.rebuild(account_id)

    def sync_lock_path(self, account_id: str) -> str:
        """The lock file held while this account's tree is synced."""
        return os.path.join(self.path, f"maildir-sync-{account_id}.lock")

    def read_internal(self, account_id: str, fn: Callable[[TxnRecords], T]) -> T:
        """``fn`` over the account's records in a read transaction."""
        return self._env.read(lambda txn, dbs: fn(account_records(txn, dbs, account_id)))

    def write_internal(self, account_id: str, fn: Callable[[TxnRecords], T]) -> T:
        """``fn`` in a write transaction (serialised with every writer)."""
        return self._env.write(lambda txn, dbs: fn(account_records(txn, dbs, account_id)))

    def commit(self, batch: WriteBatch) -> CommitResult:
        """LmdbBackend's commit; then, once it is durable, the files the
        mirror wrote, renamed or removed go to the sync's stored listing
        (:meth:`.sync.ExternalSync.note_own`): never before, so a file of a
        failed transaction is still found and adopted."""
        ops: list[OwnOp] = []
        self._ops.current = ops
        try:
            result = super().commit(batch)
        finally:
            self._ops.current = None
        if ops and self._sync is not None:
            self._sync.note_own(batch.account_id, ops)
        return result

    def _before_apply(self, batch: WriteBatch) -> BeforeApply | None:
        """Mirror mail batches into the tree (resolved before the write
        transaction opens: the directory read needs its own transaction)."""
        if not touches_mail(batch):
            return None
        try:
            tree = self.tree(batch.account_id)
        except UnknownAccount:
            return None  # apply_batch raises it

        ops: list[OwnOp] | None = getattr(self._ops, "current", None)

        def mirror(txn: Any, dbs: Dbs, num: int, batch: WriteBatch) -> None:
            work = Mirror(tree, TxnRecords(txn, dbs, num), batch)
            if ops is not None:
                ops.clear()  # a retried transaction starts over
            work.run()
            if ops is not None:
                ops.extend(work.ops)

        return mirror

    def close(self) -> None:
        self._trees.clear()
        if self._sync is not None:
            self._sync.forget()
        super().close()


def open_backend(
    path: str | os.PathLike[str],
    *,
    maildir_root: str | None = None,
    layout: Layout = "maildir++",
    **lmdb_options: Any,
) -> MaildirBackend:
    """The ``jmapcore.backends`` entry point ``maildir``: the LMDB sidecar at
    ``path`` and the Maildir trees at ``maildir_root`` (``%u``: the account
    name; default ``PATH/maildir/%u``).  Other options are LmdbBackend's."""
    unknown = set(lmdb_options) - _LMDB_OPTIONS
    if unknown:
        raise TypeError(f"unknown Maildir backend options: {sorted(unknown)}")
    return MaildirBackend(path, maildir_root=maildir_root, layout=layout, **lmdb_options)
