"""The search database: tables, connection settings and stored texts.

Tables:

* ``fts`` -- contentless FTS5 table with :data:`SLOTS` text columns; a
  field name is given a column (slot) the first time it is indexed;
* ``docs`` -- FTS rowid <-> (scope, record id), with the *stamp* of the
  write that indexed the document (see :mod:`jmap_fts.index`);
* ``scopes`` -- (account, type) -> number; a document's rowid is
  ``scope << SCOPE_SHIFT | n``, so one account's documents of one type are
  a contiguous rowid range that FTS5 can restrict a query to;
* ``texts`` -- the compressed texts of each document.  A contentless FTS5
  table can only delete a row when given the values it was inserted with
  (``contentless_delete`` needs SQLite 3.43, and Python ships older), so
  they are kept here, compressed, and read only to replace or delete;
* ``fields`` and ``meta`` (schema version, stamp counter).
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Sequence

import msgspec

SCHEMA_VERSION = 1
#: Text columns of the FTS table: distinct field names per database.
SLOTS = 16
COLUMNS = tuple(f"f{slot}" for slot in range(SLOTS))
#: Bits of a rowid below the scope number.
SCOPE_SHIFT = 36
#: Seconds a writer waits for another process's write transaction.
BUSY_TIMEOUT = 30.0
TOKENIZER = "unicode61 remove_diacritics 2"
#: Prefix index: every query word is a prefix query, and two-letter ones
#: would otherwise merge thousands of terms.  On the benchmark (100k
#: documents) it halves the p99 of 1-word queries for +55% index size;
#: adding "3" as well bought little more for another +40%.
PREFIXES = "2"

_DDL = (
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS fields(slot INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
    "CREATE TABLE IF NOT EXISTS scopes("
    " num INTEGER PRIMARY KEY, account TEXT NOT NULL, type TEXT NOT NULL, UNIQUE(account, type))",
    "CREATE TABLE IF NOT EXISTS docs(doc INTEGER PRIMARY KEY, scope INTEGER NOT NULL,"
    " record_id TEXT NOT NULL, stamp INTEGER NOT NULL, UNIQUE(scope, record_id))",
    "CREATE TABLE IF NOT EXISTS texts(doc INTEGER PRIMARY KEY, body BLOB NOT NULL)",
    f"CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5({', '.join(COLUMNS)}, content='',"
    f" columnsize=0, tokenize='{TOKENIZER}', prefix='{PREFIXES}')",
    f"INSERT OR IGNORE INTO meta VALUES ('schema', {SCHEMA_VERSION}), ('stamp', 0)",
)

INSERT_FTS = f"INSERT INTO fts(rowid, {', '.join(COLUMNS)}) VALUES (?{', ?' * SLOTS})"
DELETE_FTS = (
    f"INSERT INTO fts(fts, rowid, {', '.join(COLUMNS)}) VALUES ('delete', ?{', ?' * SLOTS})"
)

Values = list[str | None]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[str | None])


def connect(path: str, sync: bool) -> sqlite3.Connection:
    """Open (creating if needed) the database; autocommit mode, so every
    transaction is explicit."""
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
    )
    try:
        # FULL: a document committed here must survive a power loss that the
        # (synced) LMDB commit after it survives.
        conn.execute(f"PRAGMA synchronous = {'FULL' if sync else 'OFF'}")
        _ensure_schema(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _ensure_schema(conn: sqlite3.Connection) -> None:
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.OperationalError:  # no such table: a new database
        row = None
    if row is None:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _DDL:
                conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    if row[0] != SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"search schema version {row[0]}, expected {SCHEMA_VERSION}: "
            "remove the file and rebuild the search index"
        )


def pack_values(values: Sequence[str | None]) -> bytes:
    """Compress a document's column values (trailing empty slots dropped)."""
    used = len(values)
    while used and values[used - 1] is None:
        used -= 1
    return zlib.compress(_encoder.encode(list(values[:used])))


def unpack_values(body: bytes) -> Values:
    values = _decoder.decode(zlib.decompress(body))
    return values + [None] * (SLOTS - len(values))


def clean(text: str) -> str:
    """Text SQLite can take whole: no NUL (FTS5 would stop there), no lone
    surrogates (not encodable as UTF-8)."""
    if "\0" in text:
        text = text.replace("\0", " ")
    try:
        text.encode()
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode()
    return text
