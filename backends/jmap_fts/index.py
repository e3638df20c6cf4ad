"""Full-text search documents in one SQLite FTS5 database.

Why SQLite FTS5 and not tantivy: it is in the standard library, and its
WAL mode lets several worker processes write and read one file (writers
take turns, readers never block), where tantivy allows one IndexWriter
per index across all processes.  On ``benchmarks/bench_search.py``
(100,000 documents, 2 cores) its queries were as fast (1-word p50 2.6 ms
vs 4.0 ms), a one-document commit far cheaper (0.5 ms vs 9.7 ms); tantivy
indexed twice as fast in bulk and its index was 4x smaller (64 MB vs
257 MB), which does not outweigh one writer per index.

**Stamps.**  Every write transaction that indexes documents takes the
next value of a counter and stamps its documents with it.  Removal and
clearing can be limited to documents stamped at most some value, which is
how a caller that read the counter at time *t* removes what existed at *t*
without removing a document another process indexed since (a record
destroyed, then re-created with the same id by another worker), and how
:meth:`SqliteSearchIndex.rebuild` runs while writers keep indexing.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import NamedTuple

from jmapcore.storage import SearchDocument
from jmapcore.textsearch import Term, parse_query

from . import schema
from .pool import ConnectionPool

#: Documents indexed or removed per write transaction in bulk operations,
#: so that other writers get their turn.
CHUNK = 500
_ANY_STAMP = (1 << 63) - 1
#: Ids looked up per statement (below SQLite's host-parameter limit).
_LOOKUP = 500

_SEARCH = (
    "SELECT docs.record_id FROM fts CROSS JOIN docs ON docs.doc = fts.rowid"
    " WHERE fts MATCH ? AND fts.rowid BETWEEN ? AND ?"
)


class Added(NamedTuple):
    """What :meth:`SqliteSearchIndex.add` did."""

    stamp: int
    #: (type name, id) of the documents that did not exist before.
    new: list[tuple[str, str]]


def match_expression(terms: Sequence[Term], slot: int | None) -> str:
    """An FTS5 MATCH expression requiring every term.

    Each term becomes one FTS5 string (``"`` doubled), so user input is
    never read as FTS5 syntax; FTS5 tokenizes the string like the indexed
    text, giving a phrase of its words, with ``*`` making the last a prefix.
    """
    column = "" if slot is None else f"{schema.COLUMNS[slot]} : "
    parts = []
    for term in terms:
        quoted = '"' + schema.clean(term.text).replace('"', '""') + '"'
        parts.append(column + quoted + ("" if term.phrase else "*"))
    return " AND ".join(parts)


def _scope_range(scope: int) -> tuple[int, int]:
    low = scope << schema.SCOPE_SHIFT
    return low, low + (1 << schema.SCOPE_SHIFT) - 1


def _chunks(items: Iterable[SearchDocument], size: int) -> Iterator[list[SearchDocument]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class SqliteSearchIndex:
    """Search documents keyed by (account, type, id), in one SQLite file.

    ``account_id`` is an opaque key: the LMDB backend passes the account's
    creation number, so a re-created account never sees its predecessor's
    documents.  Connections are opened lazily, per process (see
    :mod:`jmap_fts.pool`), and may be used from any thread.
    """

    def __init__(self, path: str | os.PathLike[str], *, sync: bool = True) -> None:
        self.path = os.fspath(path)
        parent = os.path.dirname(self.path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        self._pool = ConnectionPool(lambda: schema.connect(self.path, sync), self.path)
        # Scope numbers and field slots are never deleted, so a cache of the
        # committed ones stays valid in every process.
        self._scopes: dict[tuple[str, str], int] = {}
        self._slots: dict[str, int] = {}

    # -- writing -----------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        with self._pool.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def stamp(self) -> int:
        """The stamp of the latest indexing write."""
        with self._pool.connection() as conn:
            return conn.execute("SELECT value FROM meta WHERE key = 'stamp'").fetchone()[0]

    def add(
        self,
        account_id: str,
        documents: Iterable[SearchDocument],
        *,
        keep_newer_than: int | None = None,
    ) -> Added:
        """Index (or replace) documents in one committed transaction.

        With ``keep_newer_than``, a document already stamped above it is
        left alone (used by :meth:`rebuild`).  Raises ValueError when a
        database would need more than :data:`~jmap_fts.schema.SLOTS` field
        names; then nothing is written.
        """
        docs = list(documents)
        if not docs:
            return Added(self.stamp(), [])
        with self._writing() as conn:
            stamp = conn.execute(
                "UPDATE meta SET value = value + 1 WHERE key = 'stamp' RETURNING value"
            ).fetchall()[0][0]
            new = [
                (doc.type_name, doc.id)
                for doc in docs
                if self._put(conn, account_id, doc, stamp, keep_newer_than)
            ]
        return Added(stamp, new)

    def _put(
        self,
        conn: sqlite3.Connection,
        account_id: str,
        doc: SearchDocument,
        stamp: int,
        keep_newer_than: int | None,
    ) -> bool:
        """Index one document; True if it is new."""
        scope = self._scope(conn, account_id, doc.type_name, create=True)
        assert scope is not None
        values: schema.Values = [None] * schema.SLOTS
        for name, text in doc.fields.items():
            slot = self._slot(conn, name, create=True)
            assert slot is not None
            values[slot] = schema.clean(text)
        row = conn.execute(
            "SELECT doc, stamp FROM docs WHERE scope = ? AND record_id = ?", (scope, doc.id)
        ).fetchone()
        body = schema.pack_values(values)
        if row is None:
            low, high = _scope_range(scope)
            last = conn.execute(
                "SELECT max(doc) FROM docs WHERE doc BETWEEN ? AND ?", (low, high)
            ).fetchone()[0]
            rowid = low if last is None else last + 1
            conn.execute(
                "INSERT INTO docs(doc, scope, record_id, stamp) VALUES (?, ?, ?, ?)",
                (rowid, scope, doc.id, stamp),
            )
            conn.execute("INSERT INTO texts(doc, body) VALUES (?, ?)", (rowid, body))
        else:
            rowid, old_stamp = row
            if keep_newer_than is not None and old_stamp > keep_newer_than:
                return False
            self._unindex(conn, rowid)
            conn.execute("UPDATE docs SET stamp = ? WHERE doc = ?", (stamp, rowid))
            conn.execute("UPDATE texts SET body = ? WHERE doc = ?", (body, rowid))
        conn.execute(schema.INSERT_FTS, (rowid, *values))
        return row is None

    def _unindex(self, conn: sqlite3.Connection, rowid: int) -> None:
        """Remove a row's terms from the FTS index (it needs the old values)."""
        body = conn.execute("SELECT body FROM texts WHERE doc = ?", (rowid,)).fetchone()
        if body is not None:
            conn.execute(schema.DELETE_FTS, (rowid, *schema.unpack_values(body[0])))

    def _delete_rows(self, rowids: Sequence[int], max_stamp: int | None) -> int:
        """Delete documents by rowid in one transaction, re-checking stamps."""
        deleted = 0
        with self._writing() as conn:
            for rowid in rowids:
                row = conn.execute("SELECT stamp FROM docs WHERE doc = ?", (rowid,)).fetchone()
                if row is None or (max_stamp is not None and row[0] > max_stamp):
                    continue
                self._unindex(conn, rowid)
                conn.execute("DELETE FROM texts WHERE doc = ?", (rowid,))
                conn.execute("DELETE FROM docs WHERE doc = ?", (rowid,))
                deleted += 1
        return deleted

    def remove(
        self,
        account_id: str,
        type_name: str,
        ids: Iterable[str],
        *,
        max_stamp: int | None = None,
    ) -> int:
        """Remove the documents of ``ids`` (stamped at most ``max_stamp``);
        returns how many were removed.  Writes nothing if none exists."""
        wanted = list(dict.fromkeys(ids))
        with self._pool.connection() as conn:
            scope = self._scope(conn, account_id, type_name, create=False)
            if scope is None:
                return 0
            rowids: list[int] = []
            for start in range(0, len(wanted), _LOOKUP):
                part = wanted[start : start + _LOOKUP]
                marks = ", ".join("?" * len(part))
                rowids += [
                    rowid
                    for rowid, stamp in conn.execute(
                        f"SELECT doc, stamp FROM docs WHERE scope = ? AND record_id IN ({marks})",
                        (scope, *part),
                    )
                    if max_stamp is None or stamp <= max_stamp
                ]
        return sum(
            self._delete_rows(rowids[start : start + CHUNK], max_stamp)
            for start in range(0, len(rowids), CHUNK)
        )

    def clear(self, account_id: str, type_name: str, *, max_stamp: int | None = None) -> int:
        """Remove every document of a type in an account (stamped at most
        ``max_stamp``), a chunk per transaction; returns how many."""
        with self._pool.connection() as conn:
            scope = self._scope(conn, account_id, type_name, create=False)
        if scope is None:
            return 0
        low, high = _scope_range(scope)
        limit = _ANY_STAMP if max_stamp is None else max_stamp
        removed = 0
        after = low - 1
        while True:
            with self._pool.connection() as conn:
                rowids = [
                    row[0]
                    for row in conn.execute(
                        "SELECT doc FROM docs WHERE doc > ? AND doc <= ? AND stamp <= ?"
                        " ORDER BY doc LIMIT ?",
                        (after, high, limit, CHUNK),
                    )
                ]
            if not rowids:
                return removed
            removed += self._delete_rows(rowids, max_stamp)
            after = rowids[-1]

    def delete_account(self, account_id: str) -> int:
        """Remove every document of an account; returns how many."""
        with self._pool.connection() as conn:
            types = [
                row[0]
                for row in conn.execute("SELECT type FROM scopes WHERE account = ?", (account_id,))
            ]
        return sum(self.clear(account_id, type_name) for type_name in types)

    def rebuild(self, account_id: str, type_name: str, documents: Iterable[SearchDocument]) -> int:
        """Make ``documents`` the type's documents; returns how many were given.

        Documents are replaced in place, a chunk per transaction, then those
        not given are removed: a search during a rebuild finds every record
        it found before.  A document indexed by a commit while the rebuild
        runs is kept as the commit wrote it.
        """
        start = self.stamp()
        count = 0
        for chunk in _chunks(documents, CHUNK):
            for doc in chunk:
                if doc.type_name != type_name:
                    raise ValueError(f"a {doc.type_name} document in a {type_name} rebuild")
            self.add(account_id, chunk, keep_newer_than=start)
            count += len(chunk)
        self.clear(account_id, type_name, max_stamp=start)
        return count

    # -- reading -----------------------------------------------------------

    def search(self, account_id: str, type_name: str, field: str | None, query: str) -> set[str]:
        """Ids whose ``field`` (any field when None) matches ``query``, per
        :mod:`jmapcore.textsearch`; a query without words matches nothing."""
        terms = parse_query(query)
        if not terms:
            return set()
        with self._pool.connection() as conn:
            scope = self._scope(conn, account_id, type_name, create=False)
            if scope is None:
                return set()
            slot = None
            if field is not None:
                slot = self._slot(conn, field, create=False)
                if slot is None:
                    return set()
            low, high = _scope_range(scope)
            rows = conn.execute(_SEARCH, (match_expression(terms, slot), low, high))
            return {row[0] for row in rows}

    # -- names -------------------------------------------------------------

    def _scope(
        self, conn: sqlite3.Connection, account_id: str, type_name: str, *, create: bool
    ) -> int | None:
        key = (account_id, type_name)
        num = self._scopes.get(key)
        if num is not None:
            return num
        row = conn.execute("SELECT num FROM scopes WHERE account = ? AND type = ?", key).fetchone()
        if row is not None:
            self._scopes[key] = row[0]
            return row[0]
        if not create:
            return None
        # Not cached: the transaction creating it may still roll back.
        return conn.execute(
            "INSERT INTO scopes(account, type) VALUES (?, ?) RETURNING num", key
        ).fetchall()[0][0]

    def _slot(self, conn: sqlite3.Connection, name: str, *, create: bool) -> int | None:
        slot = self._slots.get(name)
        if slot is not None:
            return slot
        row = conn.execute("SELECT slot FROM fields WHERE name = ?", (name,)).fetchone()
        if row is not None:
            self._slots[name] = row[0]
            return row[0]
        if not create:
            return None
        slot = conn.execute(
            "INSERT INTO fields(slot, name) SELECT coalesce(max(slot) + 1, 0), ? FROM fields"
            " RETURNING slot",
            (name,),
        ).fetchall()[0][0]
        if slot >= schema.SLOTS:
            raise ValueError(f"search field {name!r}: more than {schema.SLOTS} field names")
        return slot

    def close(self) -> None:
        self._pool.close()
