"""An in-memory backend for plugin tests and embedders' experiments.

It implements the whole storage interface in plain Python with copy-on-write
account versions, so snapshots are isolated without locks.  It is not
persistent and copies a type's record map on every write: use it for tests,
not for mail.  It passes the same conformance suite as the real backends.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec

from ..keycodec import pack
from ..storage import (
    AccountExists,
    AccountInfo,
    BlobInfo,
    ChangeKind,
    ChangesPage,
    CommitResult,
    IndexSpec,
    KeyPart,
    LogPosition,
    PrincipalInfo,
    Record,
    SearchDocument,
    StateConflict,
    UnknownAccount,
    WriteBatch,
)
from ..textsearch import parse_query, term_in, words

#: A search document as stored: field name -> its folded words.
_Words = Mapping[str, tuple[str, ...]]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()


def _copy(record: Record) -> Record:
    return _decoder.decode(_encoder.encode(record))


@dataclass(frozen=True, slots=True)
class _LogRow:
    modseq: int
    id: str
    kind: ChangeKind
    properties: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class _Version:
    """One committed state of an account; never mutated once published."""

    modseq: int = 0
    epoch: int = 1
    type_modseqs: Mapping[str, int] = field(default_factory=dict)
    records: Mapping[str, Mapping[str, Record]] = field(default_factory=dict)
    log: Mapping[str, tuple[_LogRow, ...]] = field(default_factory=dict)
    #: type name -> the highest modseq whose rows were pruned.
    low_water: Mapping[str, int] = field(default_factory=dict)
    blobs: Mapping[str, BlobInfo] = field(default_factory=dict)
    #: (modseq, unix time of its commit), in order.
    commit_times: tuple[tuple[int, float], ...] = ()
    #: type name -> id -> search document.
    search: Mapping[str, Mapping[str, _Words]] = field(default_factory=dict)


def _document_words(doc: SearchDocument) -> _Words:
    return {name: tuple(words(text)) for name, text in doc.fields.items()}


def _with_documents(
    search: Mapping[str, Mapping[str, _Words]], batch: WriteBatch
) -> dict[str, Mapping[str, _Words]]:
    """The search documents after ``batch``: its documents added, those of
    destroyed records removed (destroys come last, as for records)."""
    out = dict(search)
    changed = {d.type_name for d in batch.search} | {d.type_name for d in batch.destroys}
    docs = {name: dict(search.get(name, {})) for name in changed}
    for doc in batch.search:
        docs[doc.type_name][doc.id] = _document_words(doc)
    for destroy in batch.destroys:
        docs[destroy.type_name].pop(destroy.id, None)
    out.update(docs)
    return out


def _term_found(doc: _Words, field: str | None, term_words: list[str], prefix: bool) -> bool:
    texts = doc.values() if field is None else [doc.get(field, ())]
    return any(term_in(term_words, prefix, text) for text in texts)


def coalesce(rows: Sequence[_LogRow]) -> tuple[list[str], list[str], list[str], list[str] | None]:
    """[core-5.2-coalesce] fold log rows into created/updated/destroyed."""
    first: dict[str, ChangeKind] = {}
    last: dict[str, ChangeKind] = {}
    props: dict[str, set[str] | None] = {}
    for row in rows:
        first.setdefault(row.id, row.kind)
        last[row.id] = row.kind
        if row.kind is ChangeKind.UPDATED:
            known = props.get(row.id, set())
            props[row.id] = None if known is None or row.properties is None else known | set(row.properties)
    created, updated, destroyed = [], [], []
    for record_id, kind in last.items():
        if kind is ChangeKind.DESTROYED:
            if first[record_id] is not ChangeKind.CREATED:
                destroyed.append(record_id)
        elif first[record_id] is ChangeKind.CREATED:
            created.append(record_id)
        else:
            updated.append(record_id)
    names: set[str] | None = set()
    for record_id in updated:
        known = props.get(record_id)
        names = None if names is None or known is None else names | known
    return created, updated, destroyed, (sorted(names) if updated and names is not None else None)


class MemorySnapshot:
    def __init__(self, account_id: str, version: _Version, backend: MemoryBackend) -> None:
        self.account_id = account_id
        self._v = version
        self._backend = backend

    def modseq(self) -> int:
        return self._v.modseq

    def epoch(self) -> int:
        return self._v.epoch

    def type_modseq(self, type_name: str) -> int:
        return self._v.type_modseqs.get(type_name, 0)

    def low_water(self, type_name: str) -> int:
        return self._v.low_water.get(type_name, 0)

    def get(self, type_name: str, record_id: str) -> Record | None:
        record = self._v.records.get(type_name, {}).get(record_id)
        return _copy(record) if record is not None else None

    def get_many(self, type_name: str, record_ids: Sequence[str]) -> list[Record | None]:
        return [self.get(type_name, record_id) for record_id in record_ids]

    def count(self, type_name: str) -> int:
        return len(self._v.records.get(type_name, {}))

    def ids(self, type_name: str) -> Iterator[str]:
        return iter(sorted(self._v.records.get(type_name, {})))

    def scan_index(
        self, type_name: str, index: str, prefix: tuple[KeyPart, ...] = (), *, reverse: bool = False
    ) -> Iterator[tuple[tuple[KeyPart, ...], str]]:
        spec = self._backend.indexes[(type_name, index)]
        packed_prefix = pack(prefix)
        entries = [
            (pack((*key, record_id)), key, record_id)
            for record_id, record in self._v.records.get(type_name, {}).items()
            for key in spec.extract(record)
            if pack(key).startswith(packed_prefix)
        ]
        entries.sort(reverse=reverse)
        return iter([(key, record_id) for _, key, record_id in entries])

    def changes(self, type_name: str, since: LogPosition, max_changes: int | None) -> ChangesPage:
        if since.modseq < self.low_water(type_name) or since.modseq > self._v.modseq:
            raise LookupError("state outside the change log")
        rows = _after(self._v.log.get(type_name, ()), since)
        taken, position, has_more = _take(rows, since, max_changes)
        created, updated, destroyed, props = coalesce(taken)
        return ChangesPage(created, updated, destroyed, position, has_more, props)

    def blob_info(self, blob_id: str) -> BlobInfo | None:
        return self._v.blobs.get(blob_id)

    def read_blob(self, blob_id: str, offset: int = 0, length: int | None = None) -> bytes | None:
        if blob_id not in self._v.blobs:
            return None
        data = self._backend.blob_data[blob_id]
        return data[offset:] if length is None else data[offset : offset + length]

    def search(self, type_name: str, field: str | None, query: str) -> set[str]:
        """A scan with the reference matcher of :mod:`jmapcore.textsearch`."""
        terms = [(words(term.text), not term.phrase) for term in parse_query(query)]
        if not terms:
            return set()
        return {
            record_id
            for record_id, doc in self._v.search.get(type_name, {}).items()
            if all(_term_found(doc, field, term_words, prefix) for term_words, prefix in terms)
        }


def _after(rows: Sequence[_LogRow], since: LogPosition) -> list[_LogRow]:
    """Rows after a position: the undelivered tail of its modseq, then later ones."""
    tail = [row for row in rows if row.modseq == since.modseq][since.offset :] if since.offset else []
    return tail + [row for row in rows if row.modseq > since.modseq]


def _take(rows: list[_LogRow], since: LogPosition, max_changes: int | None) -> tuple[list[_LogRow], LogPosition, bool]:
    """[core-5.2-intermediate] whole modseqs while they fit; split one only if it alone is too big."""
    if max_changes is None or len({row.id for row in rows}) <= max_changes:
        return rows, LogPosition(rows[-1].modseq, 0) if rows else since, False
    taken: list[_LogRow] = []
    ids: set[str] = set()
    index = 0
    while index < len(rows):
        modseq = rows[index].modseq
        group = [row for row in rows[index:] if row.modseq == modseq]
        if len(ids | {row.id for row in group}) > max_changes:
            break
        taken += group
        ids |= {row.id for row in group}
        index += len(group)
    if taken:
        return taken, LogPosition(taken[-1].modseq, 0), True
    # One modseq alone holds more than max_changes: page inside it.
    modseq = rows[0].modseq
    already = since.offset if since.modseq == modseq else 0
    part = rows[:max_changes]
    return part, LogPosition(modseq, already + len(part)), True


class _MemoryDirectory:
    def __init__(self, backend: MemoryBackend) -> None:
        self._backend = backend
        self.accounts: dict[str, AccountInfo] = {}
        self.principals: dict[str, PrincipalInfo] = {}
        self.tokens: dict[str, str] = {}

    def create_account(self, account: AccountInfo) -> None:
        with self._backend.lock:
            if account.account_id in self.accounts:
                raise AccountExists(account.account_id)
            self.accounts[account.account_id] = account
            self._backend.versions[account.account_id] = _Version()

    def update_account(self, account: AccountInfo) -> None:
        with self._backend.lock:
            if account.account_id not in self.accounts:
                raise UnknownAccount(account.account_id)
            self.accounts[account.account_id] = account

    def delete_account(self, account_id: str) -> None:
        with self._backend.lock:
            self.accounts.pop(account_id, None)
            self._backend.versions.pop(account_id, None)

    def get_account(self, account_id: str) -> AccountInfo | None:
        return self.accounts.get(account_id)

    def list_accounts(self) -> list[AccountInfo]:
        return list(self.accounts.values())

    def put_principal(self, principal: PrincipalInfo) -> None:
        self.principals[principal.name] = principal

    def get_principal(self, name: str) -> PrincipalInfo | None:
        return self.principals.get(name)

    def delete_principal(self, name: str) -> None:
        self.principals.pop(name, None)

    def list_principals(self) -> list[PrincipalInfo]:
        return list(self.principals.values())

    def put_token(self, token_hash: str, principal: str) -> None:
        self.tokens[token_hash] = principal

    def token_principal(self, token_hash: str) -> str | None:
        return self.tokens.get(token_hash)

    def delete_tokens(self, principal: str) -> None:
        for token_hash in [t for t, p in self.tokens.items() if p == principal]:
            del self.tokens[token_hash]


class MemoryBackend:
    """The storage interface in memory (see the module docstring)."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.versions: dict[str, _Version] = {}
        self.indexes: dict[tuple[str, str], IndexSpec] = {}
        self.blob_data: dict[str, bytes] = {}
        self.directory = _MemoryDirectory(self)

    def register_index(self, spec: IndexSpec) -> None:
        self.indexes[(spec.type_name, spec.name)] = spec

    def _version(self, account_id: str) -> _Version:
        version = self.versions.get(account_id)
        if version is None:
            raise UnknownAccount(account_id)
        return version

    @contextmanager
    def snapshot(self, account_id: str) -> Iterator[MemorySnapshot]:
        yield MemorySnapshot(account_id, self._version(account_id), self)

    def commit(self, batch: WriteBatch) -> CommitResult:
        with self.lock:
            version = self._version(batch.account_id)
            for type_name, expected in batch.expect.items():
                actual = version.type_modseqs.get(type_name, 0)
                if actual != expected:
                    raise StateConflict(type_name, expected, actual)
            if batch.is_empty():
                return CommitResult(version.modseq, {})
            modseq = version.modseq + 1
            records = {name: dict(values) for name, values in version.records.items()}
            log = {name: list(rows) for name, rows in version.log.items()}
            touched: set[str] = set()
            for put in batch.puts:
                records.setdefault(put.type_name, {})[put.record["id"]] = _copy(put.record)
                kind = ChangeKind.CREATED if put.created else ChangeKind.UPDATED
                changed = None if put.created or not put.changed else tuple(put.changed)
                log.setdefault(put.type_name, []).append(_LogRow(modseq, put.record["id"], kind, changed))
                touched.add(put.type_name)
            for destroy in batch.destroys:
                if records.get(destroy.type_name, {}).pop(destroy.id, None) is not None:
                    log.setdefault(destroy.type_name, []).append(
                        _LogRow(modseq, destroy.id, ChangeKind.DESTROYED, None)
                    )
                    touched.add(destroy.type_name)
            for touch in batch.touches:
                log.setdefault(touch.type_name, []).append(
                    _LogRow(modseq, touch.id, ChangeKind.UPDATED, tuple(touch.properties) or None)
                )
                touched.add(touch.type_name)
            blobs = dict(version.blobs)
            for blob_id, delta in batch.blob_refs.items():
                if blob_id in blobs:
                    blobs[blob_id] = replace(blobs[blob_id], refs=max(0, blobs[blob_id].refs + delta))
            type_modseqs = dict(version.type_modseqs) | {name: modseq for name in touched}
            self.versions[batch.account_id] = replace(
                version,
                modseq=modseq,
                type_modseqs=type_modseqs,
                records=records,
                log={name: tuple(rows) for name, rows in log.items()},
                blobs=blobs,
                commit_times=(*version.commit_times, (modseq, time.time())),
                search=_with_documents(version.search, batch),
            )
            self.lock.notify_all()
            return CommitResult(modseq, {name: modseq for name in touched})

    def put_blob(self, account_id: str, data: bytes, uploader: str | None) -> BlobInfo:
        blob_id = "B" + hashlib.sha256(data).hexdigest()[:40]
        with self.lock:
            version = self._version(account_id)
            old = version.blobs.get(blob_id)
            info = BlobInfo(blob_id, len(data), old.refs if old else 0, time.time(), uploader)
            self.blob_data[blob_id] = bytes(data)
            self.versions[account_id] = replace(version, blobs={**version.blobs, blob_id: info})
            return info

    def expire_blobs(self, account_id: str, older_than: float) -> int:
        with self.lock:
            version = self._version(account_id)
            keep = {k: b for k, b in version.blobs.items() if b.refs > 0 or b.uploaded_at >= older_than}
            self.versions[account_id] = replace(version, blobs=keep)
            return len(version.blobs) - len(keep)

    def prune_changes(self, account_id: str, before_modseq: int) -> None:
        with self.lock:
            version = self._version(account_id)
            log = {name: tuple(r for r in rows if r.modseq >= before_modseq) for name, rows in version.log.items()}
            low_water = dict(version.low_water)
            for name, rows in version.log.items():
                pruned = [row.modseq for row in rows if row.modseq < before_modseq]
                if pruned:
                    low_water[name] = max(low_water.get(name, 0), *pruned)
            self.versions[account_id] = replace(version, log=log, low_water=low_water)

    def modseq_before(self, account_id: str, when: float) -> int:
        earlier = [modseq for modseq, at in self._version(account_id).commit_times if at < when]
        return earlier[-1] if earlier else 0

    def rebuild_search(
        self, account_id: str, type_name: str, documents: Iterable[SearchDocument]
    ) -> int:
        docs = list(documents)
        if any(doc.type_name != type_name for doc in docs):
            raise ValueError(f"a document of another type in a {type_name} rebuild")
        with self.lock:
            version = self._version(account_id)
            search = {**version.search, type_name: {d.id: _document_words(d) for d in docs}}
            self.versions[account_id] = replace(version, search=search)
        return len(docs)

    def bump_epoch(self, account_id: str) -> int:
        with self.lock:
            version = self._version(account_id)
            self.versions[account_id] = replace(version, epoch=version.epoch + 1)
            return version.epoch + 1

    def current_modseqs(self, account_ids: Iterable[str]) -> dict[str, int]:
        return {a: self.versions[a].modseq for a in account_ids if a in self.versions}

    def wait_for_change(self, since: Mapping[str, int], timeout: float) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                current = self.current_modseqs(since)
                remaining = deadline - time.monotonic()
                if any(current.get(a, 0) > m for a, m in since.items()) or remaining <= 0:
                    return current
                self.lock.wait(remaining)

    def close(self) -> None:
        pass


def memory_backend(**_: Any) -> MemoryBackend:
    return MemoryBackend()
