"""Full-text search for jmapcore backends, on SQLite FTS5.

:class:`SqliteSearchIndex` keeps search documents (see
:class:`jmapcore.storage.SearchDocument`) in one SQLite file that several
worker processes share; the LMDB backend keeps one beside its environment.
Query syntax and matching rules: :mod:`jmapcore.textsearch`.
"""

from __future__ import annotations

from .index import CHUNK, Added, SqliteSearchIndex, match_expression
from .pool import SearchIndexError

__all__ = [
    "CHUNK",
    "FILENAME",
    "Added",
    "SearchIndexError",
    "SqliteSearchIndex",
    "match_expression",
]

#: The index's file name in a data directory.
FILENAME = "search.sqlite3"
