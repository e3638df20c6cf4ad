"""The embedded LMDB storage backend for jmapcore.

One LMDB environment per data directory holds every account's records,
indexes, change log, blobs and the directory.  Several (forked) worker
processes may share it: each opens it lazily, LMDB serialises writers, and
readers never block.  Entry point: :func:`open_backend`.

Full-text search documents live in an SQLite FTS5 database beside the
environment (``search.sqlite3``), kept in step with every commit as
described in :mod:`jmap_lmdb.search`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import jmap_fts

from jmapcore.storage import BlobInfo, CommitResult, IndexSpec, SearchDocument, WriteBatch

from . import blobs, keys
from .codec import TypeMeta, decode_account_meta, decode_type_meta, encode
from .directory import LmdbDirectory
from .env import DEFAULT_MAP_SIZE, DEFAULT_MAX_READERS, Dbs, LmdbEnv
from .errors import (
    BackendClosed,
    ForkedWhileBusy,
    LmdbStorageError,
    SnapshotInvalidated,
    UnusablePath,
)
from .search import CommitSearch, search_key
from .snapshot import LmdbSnapshot
from .write import BeforeApply, apply_batch, backfill_index, load_account, modseq_before

__all__ = [
    "BackendClosed",
    "ForkedWhileBusy",
    "LmdbBackend",
    "LmdbStorageError",
    "SnapshotInvalidated",
    "UnusablePath",
    "open_backend",
]

_BUILT = b"index-built\0"
_EXPIRE_CHUNK = 1000
#: wait_for_change polls the meta page for other processes' commits this
#: often (backing off from the first to the max).  One read transaction
#: costs microseconds, and each worker has only a couple of waiters (the
#: push hub, background jobs), so the max is set by push latency: a commit
#: in another worker is seen within 50 ms.
_POLL_FIRST = 0.01
_POLL_MAX = 0.05


class LmdbBackend:
    """Implements :class:`jmapcore.storage.Backend` on one LMDB environment."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        map_size: int = DEFAULT_MAP_SIZE,
        max_readers: int = DEFAULT_MAX_READERS,
        sync: bool = True,
        readahead: bool = True,
    ) -> None:
        self.path = os.fspath(path)
        self._env = LmdbEnv(
            self.path, map_size=map_size, max_readers=max_readers, sync=sync, readahead=readahead
        )
        self._search = jmap_fts.SqliteSearchIndex(
            os.path.join(self.path, jmap_fts.FILENAME), sync=sync
        )
        self.directory = LmdbDirectory(
            self._env, on_purge=lambda num: self._search.delete_account(search_key(num))
        )
        self._indexes: dict[str, dict[str, IndexSpec]] = {}
        self._index_lists: dict[str, list[IndexSpec]] = {}
        self._unbuilt: list[IndexSpec] = []
        self._index_lock = threading.Lock()
        self.directory.resume_purges()

    # -- indexes -----------------------------------------------------------

    def register_index(self, spec: IndexSpec) -> None:
        """Keep ``spec`` from now on; an index this environment never built
        is built for existing records at the next snapshot or commit."""
        keys.index_base(0, spec.type_name, spec.name)  # validates both names
        with self._index_lock:
            specs = self._indexes.setdefault(spec.type_name, {})
            specs[spec.name] = spec
            self._index_lists = {name: list(s.values()) for name, s in self._indexes.items()}
            self._unbuilt.append(spec)

    def _index_spec(self, type_name: str, name: str) -> IndexSpec | None:
        return self._indexes.get(type_name, {}).get(name)

    def _ensure_indexes(self) -> None:
        if not self._unbuilt:
            return
        with self._index_lock:
            missing = self._env.read(
                lambda txn, dbs: [s for s in self._unbuilt if not _index_built(txn, dbs, s)]
            )
            for spec in missing:
                self._env.write(lambda txn, dbs, spec=spec: _build_index(txn, dbs, spec))
            self._unbuilt.clear()

    # -- reads -------------------------------------------------------------

    def snapshot(self, account_id: str) -> LmdbSnapshot:
        """Open a read view (a context manager); raises UnknownAccount."""
        self._ensure_indexes()
        return LmdbSnapshot(self._env, account_id, self._index_spec, self._search)

    def current_modseqs(self, account_ids: Iterable[str]) -> dict[str, int]:
        """Modseqs of the given accounts; unknown accounts are left out."""
        wanted = list(account_ids)

        def read(txn: Any, dbs: Dbs) -> dict[str, int]:
            found: dict[str, int] = {}
            for account_id in wanted:
                raw = txn.get(account_id.encode(), db=dbs.acctmeta)
                if raw is not None:
                    found[account_id] = decode_account_meta(raw).modseq
            return found

        return self._env.read(read)

    def wait_for_change(self, since: Mapping[str, int], timeout: float) -> dict[str, int]:
        """Poll the modseqs (other processes' commits) with backoff, woken at
        once by commits of this process; bounded by ``timeout``."""
        deadline = time.monotonic() + max(0.0, timeout)
        delay = _POLL_FIRST
        while True:
            seen = self._env.change_count
            current = self.current_modseqs(since)
            if any(current.get(a, m) > m for a, m in since.items()):
                return current
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return current
            self._env.wait_change(seen, min(delay, remaining))
            delay = min(delay * 2, _POLL_MAX)

    def modseq_before(self, account_id: str, when: float) -> int:
        """The last modseq committed before unix time ``when`` (0 if none).

        A retention job keeping N days of changes calls
        ``prune_changes(account, modseq_before(account, now - N days) + 1)``.
        """

        def read(txn: Any, dbs: Dbs) -> int:
            return modseq_before(txn, dbs, load_account(txn, dbs, account_id).num, when)

        return self._env.read(read)

    # -- writes ------------------------------------------------------------

    def commit(self, batch: WriteBatch) -> CommitResult:
        """Apply ``batch``; its search documents are committed to the index
        just before the LMDB transaction, destroyed records' documents are
        removed just after (see :mod:`jmap_lmdb.search` for why)."""
        self._ensure_indexes()
        now = time.time()
        indexes = self._index_lists
        search = CommitSearch(self._search, batch)

        def write(txn: Any, dbs: Dbs) -> CommitResult:
            result = apply_batch(txn, dbs, batch, indexes, now, self._before_apply(batch))
            if not batch.is_empty():
                search.before_commit(load_account(txn, dbs, batch.account_id).num)
            return result

        try:
            result = self._env.write(write)
        except BaseException:
            search.undo()
            raise
        search.after_commit()
        if not batch.is_empty():
            self._env.notify_change()
        return result

    def _before_apply(self, batch: WriteBatch) -> BeforeApply | None:
        """A subclass's hook for ``batch`` (see :data:`jmap_lmdb.write.BeforeApply`),
        resolved before the write transaction opens; None here."""
        return None

    def rebuild_search(
        self, account_id: str, type_name: str, documents: Iterable[SearchDocument]
    ) -> int:
        """Replace a type's search documents, a chunk per SQLite transaction.

        Searches meanwhile still find everything they found before, and
        commits running meanwhile keep their documents; a record destroyed
        meanwhile may leave an orphan document (harmless).
        """
        num = self._env.read(lambda txn, dbs: load_account(txn, dbs, account_id).num)
        return self._search.rebuild(search_key(num), type_name, documents)

    def put_blob(self, account_id: str, data: bytes, uploader: str | None) -> BlobInfo:
        blob_id = blobs.blob_id_for(data)
        now = time.time()

        def put(txn: Any, dbs: Dbs) -> BlobInfo:
            num = load_account(txn, dbs, account_id).num
            return blobs.put(txn, dbs, num, blob_id, data, uploader, now)

        return self._env.write(put)

    def expire_blobs(self, account_id: str, older_than: float) -> int:
        """Delete unreferenced blobs uploaded before ``older_than``, in chunks."""

        def expire(txn: Any, dbs: Dbs) -> int:
            num = load_account(txn, dbs, account_id).num
            return blobs.expire(txn, dbs, num, older_than, _EXPIRE_CHUNK)

        total = 0
        while True:
            done = self._env.write(expire)
            total += done
            if done < _EXPIRE_CHUNK:
                return total

    def prune_changes(self, account_id: str, before_modseq: int) -> None:
        """Drop change-log rows with modseq < ``before_modseq``; each type's
        low-water mark becomes the highest modseq it lost."""
        self._env.write(lambda txn, dbs: _prune(txn, dbs, account_id, before_modseq))

    def bump_epoch(self, account_id: str) -> int:
        def bump(txn: Any, dbs: Dbs) -> int:
            meta = load_account(txn, dbs, account_id)
            meta.epoch += 1
            txn.put(account_id.encode(), encode(meta), db=dbs.acctmeta)
            return meta.epoch

        return self._env.write(bump)

    def close(self) -> None:
        self._env.close()
        self._search.close()


def _index_marker(spec: IndexSpec) -> bytes:
    return _BUILT + keys.name_part(spec.type_name, "type name") + spec.name.encode()


def _index_built(txn: Any, dbs: Dbs, spec: IndexSpec) -> bool:
    return txn.get(_index_marker(spec), db=dbs.meta) is not None


def _build_index(txn: Any, dbs: Dbs, spec: IndexSpec) -> None:
    """Backfill an index once per environment (re-checked under the writer lock)."""
    if not _index_built(txn, dbs, spec):
        backfill_index(txn, dbs, spec)
        txn.put(_index_marker(spec), b"", db=dbs.meta)


def _prune(txn: Any, dbs: Dbs, account_id: str, before: int) -> None:
    num = load_account(txn, dbs, account_id).num
    prefix = keys.account(num)
    metas: list[tuple[bytes, TypeMeta]] = []
    with txn.cursor(db=dbs.typemeta) as cursor:
        found = cursor.set_range(prefix)
        while found and cursor.key().startswith(prefix):
            metas.append((cursor.key(), decode_type_meta(cursor.value())))
            found = cursor.next()
    for type_key, meta in metas:
        # The type-meta key is the change-log prefix of the type.
        highest = 0
        with txn.cursor(db=dbs.log) as cursor:
            found = cursor.set_range(type_key)
            while found and cursor.key().startswith(type_key):
                modseq, _seq = keys.log_position(cursor.key())
                if modseq >= before:
                    break
                highest = modseq
                found = cursor.delete()
        if highest > meta.low_water:
            meta.low_water = highest
            txn.put(type_key, encode(meta), db=dbs.typemeta)
    with txn.cursor(db=dbs.modtime) as cursor:
        found = cursor.set_range(prefix)
        while found and cursor.key().startswith(prefix):
            if keys.modseq_of_modtime(cursor.key()) >= before:
                break
            found = cursor.delete()


def open_backend(path: str | os.PathLike[str], **options: object) -> LmdbBackend:
    """The ``jmapcore.backends`` entry point: open (creating if missing) the
    LMDB data directory at ``path``.  Options: ``map_size``, ``max_readers``,
    ``sync``, ``readahead``.  Raises :class:`UnusablePath` (a StorageError)
    if the directory cannot be used."""
    unknown = set(options) - {"map_size", "max_readers", "sync", "readahead"}
    if unknown:
        raise TypeError(f"unknown LMDB backend options: {sorted(unknown)}")
    return LmdbBackend(path, **options)  # type: ignore[arg-type]
