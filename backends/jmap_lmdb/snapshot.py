"""A consistent read view of one account: one LMDB read transaction.

Cursors never outlive a method call: iterators read in batches and reseek
from the last key, so no LMDB cursor is ever held while the caller's code
runs (a map resize in between would invalidate it).  If the transaction
itself was invalidated (map resize, fork), it is reopened transparently when
the account is still at the same modseq (its data is then identical);
otherwise :class:`SnapshotInvalidated` is raised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any

import lmdb

from jmapcore import keycodec
from jmapcore.storage import (
    BlobInfo,
    ChangesPage,
    IndexSpec,
    KeyPart,
    LogPosition,
    Record,
    UnknownAccount,
)

from . import blobs, keys
from .changes import build_page
from .codec import (
    AccountMeta,
    LogRow,
    TypeMeta,
    decode_account_meta,
    decode_blob_meta,
    decode_log_row,
    decode_record,
    decode_type_meta,
)
from .env import LmdbEnv
from .errors import LmdbStorageError, SnapshotInvalidated
from .search import search_key

if TYPE_CHECKING:
    from jmap_fts import SqliteSearchIndex

_FIRST_BATCH = 32
_MAX_BATCH = 1024


class LmdbSnapshot:
    """Implements :class:`jmapcore.storage.Snapshot`; also a context manager."""

    def __init__(
        self,
        env: LmdbEnv,
        account_id: str,
        indexes: Callable[[str, str], IndexSpec | None],
        search: SqliteSearchIndex,
    ) -> None:
        self.account_id = account_id
        self._env = env
        self._search = search
        self._searched: dict[tuple[str, str | None, str], set[str]] = {}
        self._index_spec = indexes
        self._txn: Any = None
        self._dbs: Any = None
        self._generation = -1
        self._meta: AccountMeta | None = None
        self._closed = False
        self._types: dict[str, TypeMeta] = {}
        with self._reading():
            pass

    # -- transaction management ------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[Any]:
        """Run a short read on the snapshot's transaction (reopened if invalidated)."""
        while True:
            with self._env.op() as handles:
                if self._closed:
                    raise ValueError("snapshot is closed")
                if self._txn is None or self._generation != handles.generation:
                    try:
                        txn = handles.env.begin(buffers=True)
                    except lmdb.MapResizedError:
                        txn = None
                    if txn is not None:
                        self._adopt(txn, handles.dbs, handles.generation)
                if self._txn is not None and self._generation == handles.generation:
                    self._dbs = handles.dbs
                    yield self._txn
                    return
            self._env.remap(False, handles.generation)

    def _adopt(self, txn: Any, dbs: Any, generation: int) -> None:
        raw = txn.get(self.account_id.encode(), db=dbs.acctmeta)
        meta = None if raw is None else decode_account_meta(raw)
        if self._meta is None:
            if meta is None:
                txn.abort()
                raise UnknownAccount(self.account_id)
            self._meta = meta
        elif meta is None or (meta.num, meta.modseq) != (self._meta.num, self._meta.modseq):
            txn.abort()
            self._txn = None
            raise SnapshotInvalidated(f"account {self.account_id!r} changed under a snapshot")
        else:
            self._types.clear()  # low-water marks may have moved (prune_changes)
        self._txn = txn
        self._generation = generation

    def close(self) -> None:
        """End the read transaction (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            with self._env.op() as handles:
                if self._txn is not None and self._generation == handles.generation:
                    self._txn.abort()
        except LmdbStorageError:
            pass  # the environment is gone, and its transactions with it
        self._txn = None

    def __enter__(self) -> LmdbSnapshot:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- scalar reads --------------------------------------------------

    @property
    def _num(self) -> int:
        assert self._meta is not None
        return self._meta.num

    def modseq(self) -> int:
        assert self._meta is not None
        return self._meta.modseq

    def epoch(self) -> int:
        assert self._meta is not None
        return self._meta.epoch

    def _read_type_meta(self, txn: Any, type_name: str) -> TypeMeta:
        raw = txn.get(keys.type_key(self._num, type_name), db=self._dbs.typemeta)
        return TypeMeta() if raw is None else decode_type_meta(raw)

    def _type_meta(self, type_name: str) -> TypeMeta:
        meta = self._types.get(type_name)
        if meta is None:
            with self._reading() as txn:
                meta = self._read_type_meta(txn, type_name)
            self._types[type_name] = meta
        return meta

    def type_modseq(self, type_name: str) -> int:
        return self._type_meta(type_name).modseq

    def low_water(self, type_name: str) -> int:
        return self._type_meta(type_name).low_water

    def count(self, type_name: str) -> int:
        return self._type_meta(type_name).count

    # -- records ---------------------------------------------------------

    def get(self, type_name: str, record_id: str) -> Record | None:
        return self.get_many(type_name, [record_id])[0]

    def get_many(self, type_name: str, record_ids: Sequence[str]) -> list[Record | None]:
        prefix = keys.record_prefix(self._num, type_name)
        out: list[Record | None] = []
        with self._reading() as txn:
            db = self._dbs.records
            for record_id in record_ids:
                raw = _get(txn, db, keys.record_key(prefix, record_id))
                out.append(None if raw is None else decode_record(raw))
        return out

    def _scan(
        self, db_name: str, prefix: bytes, *, reverse: bool = False, values: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """``(key, value)`` of keys starting with ``prefix``, in batches."""
        after: bytes | None = None  # forward: resume strictly after this key
        before = keys.successor(prefix)  # reverse: resume strictly before this key
        batch = _FIRST_BATCH
        while True:
            chunk: list[tuple[bytes, bytes]] = []
            with self._reading() as txn:
                with txn.cursor(db=getattr(self._dbs, db_name)) as cursor:
                    if reverse:
                        found = cursor.set_range(before) if before is not None else False
                        found = cursor.prev() if found else cursor.last()
                    else:
                        found = cursor.set_range(prefix if after is None else after + b"\0")
                    while found and len(chunk) < batch:
                        key = bytes(cursor.key())
                        if not key.startswith(prefix):
                            found = False
                            break
                        chunk.append((key, bytes(cursor.value()) if values else b""))
                        found = cursor.prev() if reverse else cursor.next()
            yield from chunk
            if not found:
                return
            after = before = chunk[-1][0]
            batch = min(batch * 2, _MAX_BATCH)

    def ids(self, type_name: str) -> Iterator[str]:
        prefix = keys.record_prefix(self._num, type_name)
        start = len(prefix)
        for key, _value in self._scan("records", prefix):
            yield key[start:].decode()

    # -- indexes ---------------------------------------------------------

    def scan_index(
        self,
        type_name: str,
        index: str,
        prefix: tuple[KeyPart, ...] = (),
        *,
        reverse: bool = False,
    ) -> Iterator[tuple[tuple[KeyPart, ...], str]]:
        if self._index_spec(type_name, index) is None:
            raise KeyError(f"no index {index!r} registered for {type_name!r}")
        base = keys.index_base(self._num, type_name, index)
        cut = keys.index_cut(base)
        packed = keycodec.pack(prefix)
        exact = packed if len(packed) > cut else None
        entries = self._scan("index", base + packed[:cut], reverse=reverse, values=True)
        for _stored, full, record_id in _resort_cut(_split(entries, len(base)), cut, reverse):
            if exact is None or full.startswith(exact):
                yield keycodec.unpack(full), record_id

    # -- change log ------------------------------------------------------

    def changes(self, type_name: str, since: LogPosition, max_changes: int | None) -> ChangesPage:
        if max_changes is not None and max_changes < 1:
            raise ValueError("max_changes must be positive")
        prefix = keys.log_prefix(self._num, type_name)
        with self._reading() as txn:
            # Read the low-water mark in the same transaction as the rows: a
            # prune may have run if the transaction was reopened.
            type_meta = self._read_type_meta(txn, type_name)
            low = type_meta.low_water
            if (
                since.modseq < 0
                or since.offset < 0
                or since.modseq > self.modseq()
                or since.modseq < low
                or (since.offset and since.modseq <= low)
            ):
                raise LookupError(f"cannot calculate {type_name} changes since {since}")
            start = keys.log_key(prefix, *(since if since.offset else (since.modseq + 1, 0)))
            end = LogPosition(max(since.modseq, type_meta.modseq), 0)
            with txn.cursor(db=self._dbs.log) as cursor:
                return build_page(_log_rows(cursor, start, prefix), since, max_changes, end)

    # -- blobs -------------------------------------------------------------

    def blob_info(self, blob_id: str) -> BlobInfo | None:
        with self._reading() as txn:
            raw = _get(txn, self._dbs.blobmeta, keys.blob_meta_key(self._num, blob_id))
            return None if raw is None else blobs.info(blob_id, decode_blob_meta(raw))

    def read_blob(self, blob_id: str, offset: int = 0, length: int | None = None) -> bytes | None:
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("offset and length must not be negative")
        with self._reading() as txn:
            if _get(txn, self._dbs.blobmeta, keys.blob_meta_key(self._num, blob_id)) is None:
                return None
            data = txn.get(blob_id.encode(), db=self._dbs.blobdata)
            if data is None:
                return None
            stop = None if length is None else offset + length
            # ``data`` is a view into the map: only the slice is copied.
            return bytes(data[offset:stop])

    # -- full-text search --------------------------------------------------

    def search(self, type_name: str, field: str | None, query: str) -> set[str]:
        """Ids whose documents match now (not as of this snapshot): may name
        records this snapshot lacks, and omit ones destroyed since it began.

        Remembered for the snapshot's life: a query's planner and its filter
        ask the same question, and a common word has many hits to read."""
        key = (type_name, field, query)
        hits = self._searched.get(key)
        if hits is None:
            hits = self._searched[key] = self._search.search(search_key(self._num), type_name, field, query)
        return hits


def _get(txn: Any, db: Any, key: bytes) -> Any:
    """``txn.get``, where a key too long to have been stored is simply absent."""
    return None if len(key) > keys.MAX_KEY else txn.get(key, db=db)


def _log_rows(cursor: Any, start: bytes, prefix: bytes) -> Iterator[tuple[int, int, LogRow]]:
    found = cursor.set_range(start)
    while found:
        key = bytes(cursor.key())
        if not key.startswith(prefix):
            return
        modseq, seq = keys.log_position(key)
        yield modseq, seq, decode_log_row(cursor.value())
        found = cursor.next()


def _split(
    entries: Iterator[tuple[bytes, bytes]], base_len: int
) -> Iterator[tuple[bytes, bytes, str]]:
    """(stored key bytes, full packed key, id) of each index entry."""
    for key, value in entries:
        stored, record_id = keys.split_index_key(base_len, key)
        yield stored, value or stored, record_id


def _resort_cut(
    entries: Iterator[tuple[bytes, bytes, str]], cut: int, reverse: bool
) -> Iterator[tuple[bytes, bytes, str]]:
    """Restore exact order among keys that were cut to the same stored bytes.

    Cut keys sort by id within a run of equal stored bytes.  Only keys of
    exactly ``cut`` bytes can be in such a run; those runs (rare: very long
    keys sharing their first ``cut`` bytes) are buffered and sorted by the
    full key, everything else streams through.
    """
    run: list[tuple[bytes, bytes, str]] = []
    for entry in entries:
        if run and entry[0] != run[0][0]:
            run.sort(key=lambda item: (item[1], item[2]), reverse=reverse)
            yield from run
            run = []
        if len(entry[0]) == cut:
            run.append(entry)
        else:
            yield entry
    run.sort(key=lambda item: (item[1], item[2]), reverse=reverse)
    yield from run
