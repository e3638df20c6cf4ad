"""Per-process SQLite connections that never cross a ``fork()``.

SQLite forbids using a connection opened before a fork in the child (its
locks are per process, its in-memory lock bookkeeping is not).  gunicorn
forks workers, so a pool closes its idle connections in the parent just
before a fork (waiting briefly for borrowed ones), and the child starts
with an empty pool; a connection that was still borrowed is kept
referenced forever in the child, never used or closed there, because
closing it could disturb the parent's locks.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from jmapcore.storage import StorageError

#: How long the fork hook waits for borrowed connections to come back.
_FORK_WAIT = 10.0

#: Connections inherited through a fork: referenced so they are never closed.
_ABANDONED: list[sqlite3.Connection] = []
_LIVE: weakref.WeakSet[ConnectionPool] = weakref.WeakSet()


class SearchIndexError(StorageError):
    """An SQLite failure of the search index (disk full, corruption...)."""


class ConnectionPool:
    """Idle connections of this process to one database, for any thread."""

    def __init__(self, opener: Callable[[], sqlite3.Connection], name: str) -> None:
        self._open = opener
        self._name = name
        self._cond = threading.Condition(threading.Lock())
        self._idle: list[sqlite3.Connection] = []
        self._borrowed: list[sqlite3.Connection] = []
        self._closed = False
        _LIVE.add(self)

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """Borrow a connection; SQLite errors become :class:`SearchIndexError`."""
        conn = self._acquire()
        try:
            yield conn
        except sqlite3.Error as exc:
            raise SearchIndexError(f"search index {self._name!r}: {exc}") from exc
        finally:
            self._release(conn)

    def _acquire(self) -> sqlite3.Connection:
        with self._cond:
            if self._closed:
                raise SearchIndexError(f"search index {self._name!r} is closed")
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            try:
                conn = self._open()
            except sqlite3.Error as exc:
                raise SearchIndexError(f"cannot open search index {self._name!r}: {exc}") from exc
        with self._cond:
            self._borrowed.append(conn)
        return conn

    def _release(self, conn: sqlite3.Connection) -> None:
        with self._cond:
            if conn not in self._borrowed:
                return  # inherited through a fork: abandoned
            self._borrowed.remove(conn)
            self._cond.notify_all()
            if conn.in_transaction:
                conn.rollback()
            if self._closed:
                conn.close()
            else:
                self._idle.append(conn)

    def close(self) -> None:
        """Close idle connections now, borrowed ones when they come back."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # -- fork -------------------------------------------------------------

    def _before_fork(self) -> None:
        self._cond.acquire()
        self._cond.wait_for(lambda: not self._borrowed, _FORK_WAIT)
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _after_fork(self, child: bool) -> None:
        if not child:
            self._cond.release()
            return
        _ABANDONED.extend(self._borrowed)
        self._borrowed = []
        self._cond = threading.Condition(threading.Lock())


def _before_fork() -> None:
    for pool in list(_LIVE):
        pool._before_fork()


def _after_fork_parent() -> None:
    for pool in list(_LIVE):
        pool._after_fork(child=False)


def _after_fork_child() -> None:
    for pool in list(_LIVE):
        pool._after_fork(child=True)


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_parent,
    after_in_child=_after_fork_child,
)
