"""Applying one :class:`WriteBatch` inside one write transaction.

Records, index entries, change-log rows, type and account modseqs, blob
reference counts and the modseq's commit time are all written in the same
transaction, so a reader sees all of a batch or none of it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jmapcore.storage import (
    ChangeKind,
    CommitResult,
    IndexSpec,
    Record,
    StateConflict,
    UnknownAccount,
    WriteBatch,
)

from . import blobs, keys
from .codec import (
    AccountMeta,
    LogRow,
    TypeMeta,
    decode_account_meta,
    decode_record,
    decode_type_meta,
    encode,
)
from .env import Dbs

IndexMap = Mapping[str, Sequence[IndexSpec]]

#: Called by :func:`apply_batch` once the preconditions have passed and
#: before anything is written, with ``(txn, dbs, account number, batch)``:
#: a subclass mirrors the batch elsewhere (the Maildir backend's files) while
#: the old records are still readable; raising aborts the whole transaction.
BeforeApply = Callable[[Any, Dbs, int, WriteBatch], None]

_TIME = struct.Struct(">d")


def index_entries(
    num: int, type_name: str, specs: Sequence[IndexSpec], record: Record
) -> dict[bytes, bytes]:
    """Every index entry (key -> value) one record contributes."""
    entries: dict[bytes, bytes] = {}
    record_id = record["id"]
    for spec in specs:
        base = keys.index_base(num, type_name, spec.name)
        for parts in spec.extract(record):
            key, value = keys.index_entry(base, parts, record_id)
            entries[key] = value
    return entries


def update_index(txn: Any, dbs: Dbs, old: dict[bytes, bytes], new: dict[bytes, bytes]) -> None:
    """Write only the difference between a record's old and new entries."""
    for key in old.keys() - new.keys():
        txn.delete(key, db=dbs.index)
    for key, value in new.items():
        if old.get(key) != value:
            txn.put(key, value, db=dbs.index)


def load_account(txn: Any, dbs: Dbs, account_id: str) -> AccountMeta:
    raw = txn.get(account_id.encode(), db=dbs.acctmeta)
    if raw is None:
        raise UnknownAccount(account_id)
    return decode_account_meta(raw)


class _Writer:
    """State of one commit: cached type metas and per-type log sequence."""

    def __init__(self, txn: Any, dbs: Dbs, meta: AccountMeta, indexes: IndexMap) -> None:
        self.txn = txn
        self.dbs = dbs
        self.num = meta.num
        self.modseq = meta.modseq + 1
        self.indexes = indexes
        self.types: dict[str, TypeMeta] = {}
        self.seqs: dict[str, int] = {}

    def type_meta(self, type_name: str) -> TypeMeta:
        meta = self.types.get(type_name)
        if meta is None:
            raw = self.txn.get(keys.type_key(self.num, type_name), db=self.dbs.typemeta)
            meta = TypeMeta() if raw is None else decode_type_meta(raw)
            self.types[type_name] = meta
        return meta

    def log(
        self, type_name: str, kind: ChangeKind, record_id: str, props: tuple[str, ...] | None = None
    ) -> None:
        seq = self.seqs.get(type_name, 0)
        self.seqs[type_name] = seq + 1
        key = keys.log_key(keys.log_prefix(self.num, type_name), self.modseq, seq)
        self.txn.put(key, encode(LogRow(int(kind), record_id, props)), db=self.dbs.log)

    def _old(self, type_name: str, key: bytes) -> tuple[bool, dict[bytes, bytes]]:
        """Whether the record exists, and its index entries if indexed."""
        raw = self.txn.get(key, db=self.dbs.records)
        if raw is None:
            return False, {}
        specs = self.indexes.get(type_name, ())
        if not specs:
            return True, {}
        return True, index_entries(self.num, type_name, specs, decode_record(raw))

    def put(self, type_name: str, record: Record, created: bool, changed: tuple[str, ...] | None = None) -> None:
        record_id = keys.check_id(record.get("id"), "record id")
        key = keys.record_key(keys.record_prefix(self.num, type_name), record_id)
        existed, old_entries = self._old(type_name, key)
        specs = self.indexes.get(type_name, ())
        new_entries = index_entries(self.num, type_name, specs, record) if specs else {}
        self.txn.put(key, encode(record), db=self.dbs.records)
        update_index(self.txn, self.dbs, old_entries, new_entries)
        if not existed:
            self.type_meta(type_name).count += 1
        if created:
            self.log(type_name, ChangeKind.CREATED, record_id)
        else:
            self.log(type_name, ChangeKind.UPDATED, record_id, tuple(changed) if changed else None)

    def destroy(self, type_name: str, record_id: str) -> None:
        keys.check_id(record_id, "record id")
        key = keys.record_key(keys.record_prefix(self.num, type_name), record_id)
        existed, old_entries = self._old(type_name, key)
        if not existed:
            return
        self.txn.delete(key, db=self.dbs.records)
        update_index(self.txn, self.dbs, old_entries, {})
        self.type_meta(type_name).count -= 1
        self.log(type_name, ChangeKind.DESTROYED, record_id)

    def finish(self, account_id: str, meta: AccountMeta, now: float) -> CommitResult:
        touched: dict[str, int] = {}
        for type_name in self.seqs:
            self.type_meta(type_name).modseq = self.modseq
            touched[type_name] = self.modseq
        for type_name, type_meta in self.types.items():
            self.txn.put(
                keys.type_key(self.num, type_name), encode(type_meta), db=self.dbs.typemeta
            )
        meta.modseq = self.modseq
        self.txn.put(account_id.encode(), encode(meta), db=self.dbs.acctmeta)
        self.txn.put(keys.modtime_key(self.num, self.modseq), _TIME.pack(now), db=self.dbs.modtime)
        return CommitResult(self.modseq, touched)


def apply_batch(
    txn: Any,
    dbs: Dbs,
    batch: WriteBatch,
    indexes: IndexMap,
    now: float,
    before_apply: BeforeApply | None = None,
) -> CommitResult:
    """Check preconditions, then write the batch; raises before writing anything
    if a precondition fails [core-5.3-ifInState] [core-3.6.2-noSideEffects].

    Order inside the batch: puts, then touches, then destroys, so that
    "created then destroyed in one call" coalesces away and a touch never
    follows the destruction of its record.  ``before_apply`` runs between
    the precondition checks and the first write, so a lost race never
    reaches it.
    """
    meta = load_account(txn, dbs, batch.account_id)
    writer = _Writer(txn, dbs, meta, indexes)
    for type_name, expected in batch.expect.items():
        actual = writer.type_meta(type_name).modseq
        if actual != expected:
            raise StateConflict(type_name, expected, actual)
    if batch.is_empty():
        return CommitResult(meta.modseq, {})
    if before_apply is not None:
        before_apply(txn, dbs, meta.num, batch)
    for put in batch.puts:
        writer.put(put.type_name, put.record, put.created, put.changed)
    for touch in batch.touches:
        keys.check_id(touch.id, "record id")
        writer.log(touch.type_name, ChangeKind.UPDATED, touch.id, tuple(touch.properties) or None)
    for destroy in batch.destroys:
        writer.destroy(destroy.type_name, destroy.id)
    for blob_id, delta in batch.blob_refs.items():
        blobs.add_refs(txn, dbs, meta.num, blob_id, delta)
    return writer.finish(batch.account_id, meta, now)


def modseq_before(txn: Any, dbs: Dbs, num: int, when: float) -> int:
    """The last modseq committed before ``when`` (0 if none)."""
    found = 0
    prefix = keys.account(num)
    with txn.cursor(db=dbs.modtime) as cursor:
        ok = cursor.set_range(prefix)
        while ok:
            key = cursor.key()
            if not key.startswith(prefix) or _TIME.unpack(cursor.value())[0] >= when:
                break
            found = keys.modseq_of_modtime(key)
            ok = cursor.next()
    return found


def backfill_index(txn: Any, dbs: Dbs, spec: IndexSpec) -> None:
    """Build an index for every existing record of its type, in every account."""
    with txn.cursor(db=dbs.acctmeta) as accounts:
        nums = [decode_account_meta(value).num for _key, value in accounts]
    for num in nums:
        prefix = keys.record_prefix(num, spec.type_name)
        entries: dict[bytes, bytes] = {}
        with txn.cursor(db=dbs.records) as cursor:
            ok = cursor.set_range(prefix)
            while ok and cursor.key().startswith(prefix):
                entries.update(
                    index_entries(num, spec.type_name, [spec], decode_record(cursor.value()))
                )
                ok = cursor.next()
        for key, value in entries.items():
            txn.put(key, value, db=dbs.index)
