"""The full-text side of an LMDB commit: keeping the SQLite search index in
step with the records.

LMDB and SQLite cannot commit together, so the order is chosen so that a
crash (or a failure) can only leave *orphan* documents -- documents of no
committed record, which are harmless because callers intersect search
results with the records they read -- and never a committed record without
its document:

1. inside the LMDB write transaction, after the batch was applied (its
   preconditions checked: a :class:`~jmapcore.storage.StateConflict` is
   raised before anything is indexed), the batch's documents are added and
   **committed to SQLite**; then the LMDB transaction commits;
2. **after** the LMDB commit, the documents of destroyed records are removed.

Step 1 runs under LMDB's writer lock, so concurrent writers (threads or
worker processes) index in the same order as they commit.  If the LMDB
commit fails after step 1, documents that did not exist before are removed
again (best effort; a replaced document keeps the new text).  Step 2 removes
only documents indexed no later than this commit (their *stamp*), so it
never removes a document that a later commit indexed for a re-created id.

The index is keyed by the account's creation number, not its id, so a
deleted and re-created account never sees the old account's documents;
they are purged with the rest of the old account's rows.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable

from jmap_fts import SqliteSearchIndex

from jmapcore.storage import StorageError, WriteBatch

_log = logging.getLogger(__name__)


def search_key(num: int) -> str:
    """The search index's account key for an account number."""
    return str(num)


def _by_type(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for type_name, record_id in pairs:
        grouped[type_name].append(record_id)
    return grouped


class CommitSearch:
    """The search work of one commit; see the module docstring for the order."""

    def __init__(self, index: SqliteSearchIndex, batch: WriteBatch) -> None:
        self._index = index
        destroyed = {(d.type_name, d.id) for d in batch.destroys}
        # Puts come before destroys in a batch: a record created and
        # destroyed by one batch ends destroyed, so it gets no document.
        self._documents = [d for d in batch.search if (d.type_name, d.id) not in destroyed]
        self._destroyed = _by_type(destroyed)
        self._key: str | None = None
        self._stamp: int | None = None
        self._new: set[tuple[str, str]] = set()

    def before_commit(self, num: int) -> None:
        """Step 1; runs inside the LMDB write transaction (perhaps more than
        once, when LMDB retries after growing its map: adding is idempotent)."""
        self._key = search_key(num)
        if self._documents:
            added = self._index.add(self._key, self._documents)
            self._stamp = added.stamp
            self._new.update(added.new)
        elif self._destroyed:
            self._stamp = self._index.stamp()

    def after_commit(self) -> None:
        """Step 2: remove destroyed records' documents.  Failures only leave
        orphans, so they are logged, not raised: the commit did happen."""
        if self._key is None:
            return
        for type_name, ids in self._destroyed.items():
            try:
                self._index.remove(self._key, type_name, ids, max_stamp=self._stamp)
            except StorageError:
                _log.exception("search documents of destroyed %s records left behind", type_name)

    def undo(self) -> None:
        """After a failed LMDB commit: remove the documents step 1 created."""
        if self._key is None or not self._new:
            return
        for type_name, ids in _by_type(self._new).items():
            try:
                self._index.remove(self._key, type_name, ids, max_stamp=self._stamp)
            except StorageError:
                _log.exception("orphan %s search documents left after a failed commit", type_name)
