"""The LMDB environment of one data directory, as seen by one process.

LMDB sets three rules this module keeps so nothing else has to:

* an environment must not be used across ``fork()``: it is opened lazily
  per process, and a fork hook closes it in the parent just before the fork
  (reopened on next use), so a child (a gunicorn worker) never inherits an
  open one;
* the map can only be resized while no transaction of the process is in
  use: every short piece of LMDB work runs inside :meth:`LmdbEnv.op`, and a
  resize waits until no operation is in flight.  Resizing (and the fork
  hook) invalidates open read transactions; :attr:`generation` tells their
  owners to reopen them;
* ``MDB_MAP_FULL`` / ``MDB_MAP_RESIZED`` must be answered by growing or
  adopting the map and retrying: :meth:`write` and :meth:`read` do that.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar

import lmdb

from .errors import BackendClosed, ForkedWhileBusy, LmdbStorageError, UnusablePath

T = TypeVar("T")

#: LMDB on Linux does not preallocate the map, so start big on 64-bit.
DEFAULT_MAP_SIZE = (1 << 40) if sys.maxsize > 2**32 else (1 << 30)
DEFAULT_MAX_READERS = 1024
#: How long the fork hook waits for in-flight operations before giving up.
_FORK_WAIT = 10.0

DB_NAMES = (
    "records",  # num type\0 id -> record
    "index",  # num type\0 index\0 packed-key packed-id -> b"" | full packed key
    "log",  # num type\0 modseq seq -> LogRow
    "typemeta",  # num type\0 -> TypeMeta
    "acctmeta",  # account id -> AccountMeta
    "modtime",  # num modseq -> unix time of the commit (double)
    "blobmeta",  # num blobId -> BlobMeta
    "blobexp",  # num packed(uploaded_at, blobId) -> b"" for unreferenced blobs
    "blobdata",  # blobId -> bytes, once per environment
    "blobholders",  # blobId -> number of accounts holding the data
    "accounts",  # account id -> AccountInfo
    "principals",  # name -> PrincipalInfo
    "tokens",  # token hash -> principal name
    "tokenowners",  # principal\0 token hash -> b""
    "meta",  # environment-wide bookkeeping
)


class Dbs:
    """Handles of the named sub-databases."""

    records: Any
    index: Any
    log: Any
    typemeta: Any
    acctmeta: Any
    modtime: Any
    blobmeta: Any
    blobexp: Any
    blobdata: Any
    blobholders: Any
    accounts: Any
    principals: Any
    tokens: Any
    tokenowners: Any
    meta: Any

    def __init__(self, env: lmdb.Environment) -> None:
        for name in DB_NAMES:
            setattr(self, name, env.open_db(name.encode(), create=True))


class Handles(NamedTuple):
    env: lmdb.Environment
    dbs: Dbs
    #: Changes whenever open transactions of this process were invalidated.
    generation: int


_LIVE: weakref.WeakSet[LmdbEnv] = weakref.WeakSet()


class LmdbEnv:
    """Process-aware owner of one LMDB environment."""

    def __init__(
        self,
        path: str,
        *,
        map_size: int = DEFAULT_MAP_SIZE,
        max_readers: int = DEFAULT_MAX_READERS,
        sync: bool = True,
        readahead: bool = True,
    ) -> None:
        self.path = path
        self._map_size = map_size
        self._max_readers = max_readers
        self._sync = sync
        self._readahead = readahead
        self._env: lmdb.Environment | None = None
        self._dbs: Dbs | None = None
        self._pid = 0
        self._generation = 0
        self._closed = False
        self._reset_locks()
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise UnusablePath(f"cannot create LMDB data directory {path!r}: {exc}") from exc
        with self._cond:
            self._ensure_open()
        _LIVE.add(self)

    def _reset_locks(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._ops = 0
        self._resizing = False
        self._changed = threading.Condition(threading.Lock())
        self._change_count = 0

    # -- opening -------------------------------------------------------

    def _ensure_open(self) -> None:
        """Open the environment for this process if needed (lock held)."""
        if self._closed:
            raise BackendClosed(f"LMDB backend at {self.path!r} is closed")
        pid = os.getpid()
        if self._env is not None:
            if self._pid == pid:
                return
            raise ForkedWhileBusy(
                f"process forked while LMDB environment {self.path!r} was in use; "
                "open the backend in the child instead"
            )
        self._env, self._dbs = self._open()
        self._pid = pid
        self._generation += 1

    def _open(self) -> tuple[lmdb.Environment, Dbs]:
        try:
            env = lmdb.open(
                self.path,
                map_size=self._map_size,
                max_dbs=len(DB_NAMES) + 8,
                max_readers=self._max_readers,
                lock=True,
                sync=self._sync,
                readahead=self._readahead,
                subdir=True,
                create=True,
            )
        except lmdb.Error as exc:
            raise UnusablePath(f"cannot open LMDB environment at {self.path!r}: {exc}") from exc
        try:
            while True:
                try:
                    dbs = Dbs(env)
                    break
                except lmdb.MapFullError:
                    env.set_mapsize(env.info()["map_size"] * 2)
                except lmdb.MapResizedError:
                    env.set_mapsize(0)
        except lmdb.Error as exc:
            env.close()
            raise UnusablePath(f"cannot open LMDB databases at {self.path!r}: {exc}") from exc
        self._map_size = env.info()["map_size"]
        return env, dbs

    # -- operations ----------------------------------------------------

    @contextmanager
    def op(self) -> Iterator[Handles]:
        """Mark a short piece of LMDB work; no resize happens meanwhile.

        Never hold an operation across a ``yield`` to code outside the
        backend, and never call :meth:`remap` inside one.
        """
        with self._cond:
            while self._resizing:
                self._cond.wait()
            self._ensure_open()
            self._ops += 1
            assert self._env is not None and self._dbs is not None
            handles = Handles(self._env, self._dbs, self._generation)
        try:
            yield handles
        except (lmdb.MapFullError, lmdb.MapResizedError):
            raise
        except lmdb.Error as exc:
            # Disk full, I/O error, corruption: a StorageError for the core.
            raise LmdbStorageError(f"LMDB failure in {self.path!r}: {exc}") from exc
        finally:
            with self._cond:
                self._ops -= 1
                if not self._ops:
                    self._cond.notify_all()

    def remap(self, grow: bool, seen_generation: int) -> None:
        """Grow the map (after MDB_MAP_FULL) or adopt the size another
        process set (after MDB_MAP_RESIZED), once no operation is in flight.

        Does nothing if the map was already remapped since the caller's
        operation began (``seen_generation``): the caller just retries.
        """
        with self._cond:
            while self._resizing:
                self._cond.wait()
            self._ensure_open()
            if self._generation != seen_generation:
                return
            self._resizing = True
            try:
                while self._ops:
                    self._cond.wait()
                env = self._env
                assert env is not None
                env.set_mapsize(env.info()["map_size"] * 2 if grow else 0)
                self._map_size = env.info()["map_size"]
                self._generation += 1
            finally:
                self._resizing = False
                self._cond.notify_all()

    def write(self, fn: Callable[[lmdb.Transaction, Dbs], T]) -> T:
        """Run ``fn`` in one write transaction and commit it.

        ``fn`` may run more than once (after the map grew), so any effect it
        has outside the transaction must be idempotent (the search index's
        is).  Exceptions abort the transaction.
        """
        while True:
            with self.op() as handles:
                try:
                    with handles.env.begin(write=True) as txn:
                        result = fn(txn, handles.dbs)
                except lmdb.MapFullError:
                    grow = True
                except lmdb.MapResizedError:
                    grow = False
                else:
                    return result
            self.remap(grow, handles.generation)

    def read(self, fn: Callable[[lmdb.Transaction, Dbs], T]) -> T:
        """Run ``fn`` in a short read transaction."""
        while True:
            with self.op() as handles:
                try:
                    txn = handles.env.begin()
                except lmdb.MapResizedError:
                    pass
                else:
                    try:
                        return fn(txn, handles.dbs)
                    finally:
                        txn.abort()
            self.remap(False, handles.generation)

    # -- change notification within the process --------------------------

    @property
    def change_count(self) -> int:
        return self._change_count

    def notify_change(self) -> None:
        """Wake this process's waiters after a commit (others poll)."""
        with self._changed:
            self._change_count += 1
            self._changed.notify_all()

    def wait_change(self, seen: int, timeout: float) -> None:
        """Sleep up to ``timeout`` unless a local commit happened after ``seen``."""
        with self._changed:
            self._changed.wait_for(lambda: self._change_count != seen, timeout)

    # -- lifecycle -----------------------------------------------------

    def map_size(self) -> int:
        return self._map_size

    def close(self) -> None:
        with self._cond:
            while self._ops or self._resizing:
                self._cond.wait()
            self._closed = True
            if self._env is not None and self._pid == os.getpid():
                self._env.close()
            self._env = None
            self._dbs = None
        _LIVE.discard(self)

    def _prepare_fork(self) -> None:
        """Before fork: close the environment in the parent if no operation
        is in flight, holding the lock so none starts until after the fork."""
        self._cond.acquire()
        self._cond.wait_for(lambda: not self._ops and not self._resizing, _FORK_WAIT)
        if not self._ops and self._env is not None and self._pid == os.getpid():
            self._env.close()
            self._env = None
            self._dbs = None
            self._generation += 1

    def _after_fork(self, child: bool) -> None:
        if child:
            # Other threads did not survive; a still-open environment is the
            # parent's (busy) one and is refused by _ensure_open.
            self._reset_locks()
        else:
            self._cond.release()


def _before_fork() -> None:
    for env in list(_LIVE):
        env._prepare_fork()


def _after_fork_parent() -> None:
    for env in list(_LIVE):
        env._after_fork(child=False)


def _after_fork_child() -> None:
    for env in list(_LIVE):
        env._after_fork(child=True)


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_parent,
    after_in_child=_after_fork_child,
)
