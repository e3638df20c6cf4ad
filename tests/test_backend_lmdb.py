"""The LMDB backend: the shared conformance suite, plus what only an
on-disk, multi-process backend has to get right (map growth, fork, several
worker processes on one environment)."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from jmapcore.storage import (
    AccountInfo,
    Destroy,
    IndexSpec,
    LogPosition,
    Put,
    SearchDocument,
    StateConflict,
    StorageError,
    WriteBatch,
)
from jmapcore.testing.backend_conformance import *  # noqa: F403

jmap_lmdb = pytest.importorskip("jmap_lmdb")
jmap_fts = pytest.importorskip("jmap_fts")
CommitSearch = pytest.importorskip("jmap_lmdb.search").CommitSearch
LmdbBackend = jmap_lmdb.LmdbBackend
open_backend = jmap_lmdb.open_backend

_FORK = multiprocessing.get_context("fork")
_SMALL_MAP = 64 * 1024


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[LmdbBackend]:
    instance = open_backend(tmp_path / "data")
    yield instance
    instance.close()


def _open_account(path: Path, **options: Any) -> LmdbBackend:
    instance = open_backend(path, **options)
    instance.directory.create_account(AccountInfo("A1", "a1@example", ("alice",)))
    return instance


def _join(process: Any) -> None:
    process.join(30)
    assert process.exitcode == 0


# -- opening -------------------------------------------------------------------


def test_open_creates_directory(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "data"
    instance = open_backend(path)
    try:
        assert (path / "data.mdb").exists()
        assert isinstance(instance, LmdbBackend)
    finally:
        instance.close()


def test_unusable_path_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(jmap_lmdb.UnusablePath) as caught:
        open_backend(blocker / "data")
    assert isinstance(caught.value, StorageError)
    with pytest.raises(TypeError):
        open_backend(tmp_path / "x", colour="blue")


def test_closed_backend_refuses_use(tmp_path: Path) -> None:
    instance = _open_account(tmp_path)
    instance.close()
    with pytest.raises(jmap_lmdb.BackendClosed):
        instance.snapshot("A1")


# -- map growth ----------------------------------------------------------------


def test_map_grows_from_tiny(tmp_path: Path) -> None:
    """MDB_MAP_FULL never reaches the caller: the map grows and the
    transaction is retried."""
    instance = _open_account(tmp_path, map_size=_SMALL_MAP)
    try:
        blob_ids = [
            instance.put_blob("A1", bytes([i]) * 300_000, "alice").blob_id for i in range(8)
        ]
        for n in range(4):
            records = [{"id": f"r{n}x{i}", "pad": "p" * 20_000} for i in range(25)]
            instance.commit(WriteBatch("A1", puts=[Put("Big", r, True) for r in records]))
        with instance.snapshot("A1") as snap:
            assert snap.count("Big") == 100
            assert snap.read_blob(blob_ids[7], 299_990) == bytes([7]) * 10
        assert instance._env.map_size() > 4_000_000
    finally:
        instance.close()
    reopened = open_backend(tmp_path, map_size=_SMALL_MAP)
    try:
        reopened.put_blob("A1", b"z" * 1_000_000, None)
        with reopened.snapshot("A1") as snap:
            assert snap.count("Big") == 100
    finally:
        reopened.close()


def test_open_snapshots_survive_growth(tmp_path: Path) -> None:
    """Growing the map invalidates LMDB read transactions: a snapshot of an
    unchanged account reopens transparently; one whose account changed says so."""
    instance = _open_account(tmp_path, map_size=_SMALL_MAP)
    instance.directory.create_account(AccountInfo("B2", "b2@example", ("bob",)))
    try:
        instance.commit(WriteBatch("A1", puts=[Put("T", {"id": "a"}, True)]))
        quiet = instance.snapshot("A1")
        busy = instance.snapshot("B2")
        assert busy.count("T") == 0
        for i in range(6):
            instance.put_blob("B2", bytes([i]) * 400_000, None)
        instance.commit(WriteBatch("B2", puts=[Put("T", {"id": "b"}, True)]))
        assert instance._env.map_size() > _SMALL_MAP
        assert quiet.get("T", "a") == {"id": "a"}
        assert list(quiet.ids("T")) == ["a"]
        with pytest.raises(jmap_lmdb.SnapshotInvalidated):
            busy.get("T", "b")
        quiet.close()
        busy.close()
    finally:
        instance.close()


def test_threads_write_and_read_while_map_grows(tmp_path: Path) -> None:
    """Resizes wait for in-flight operations of other threads; readers of
    other accounts never notice, writers never see MDB_MAP_FULL."""
    instance = _open_account(tmp_path, map_size=_SMALL_MAP)
    instance.directory.create_account(AccountInfo("R", "r@example", ("bob",)))
    instance.commit(WriteBatch("R", puts=[Put("T", {"id": f"r{i}"}, True) for i in range(50)]))
    errors: list[BaseException] = []
    stop = threading.Event()

    def write(tag: str) -> None:
        try:
            for i in range(15):
                record = {"id": f"{tag}{i}", "pad": tag * 30_000}
                instance.commit(WriteBatch("A1", puts=[Put("T", record, True)]))
        except BaseException as exc:
            errors.append(exc)

    def read() -> None:
        try:
            while not stop.is_set():
                with instance.snapshot("R") as snap:
                    assert len(list(snap.ids("T"))) == 50
                    assert snap.get_many("T", ["r1", "r49"])[1] == {"id": "r49"}
        except BaseException as exc:
            errors.append(exc)

    writers = [threading.Thread(target=write, args=(tag,)) for tag in "abc"]
    reader = threading.Thread(target=read)
    reader.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(30)
    stop.set()
    reader.join(30)
    try:
        assert errors == []
        assert instance._env.map_size() > 1_000_000
        with instance.snapshot("A1") as snap:
            assert snap.count("T") == 45
            assert snap.modseq() == 45
    finally:
        instance.close()


def _grow_in_child(path: str) -> None:
    child = open_backend(path, map_size=_SMALL_MAP)
    for i in range(10):
        child.put_blob("A1", bytes([i]) * 500_000, "child")
    child.commit(WriteBatch("A1", puts=[Put("T", {"id": "from-child"}, True)]))


def test_map_grown_by_another_process(tmp_path: Path) -> None:
    """MDB_MAP_RESIZED (another process grew the map) is absorbed by readers and writers."""
    instance = _open_account(tmp_path, map_size=_SMALL_MAP)
    try:
        with instance.snapshot("A1") as snap:
            assert snap.modseq() == 0
        process = _FORK.Process(target=_grow_in_child, args=(str(tmp_path),))
        process.start()
        _join(process)
        with instance.snapshot("A1") as snap:
            assert snap.get("T", "from-child") == {"id": "from-child"}
        instance.commit(WriteBatch("A1", puts=[Put("T", {"id": "p" * 200}, True)]))
        instance.put_blob("A1", b"y" * 2_000_000, None)
    finally:
        instance.close()


# -- indexes and accounts --------------------------------------------------------


def test_index_registered_later_is_backfilled(tmp_path: Path) -> None:
    first = _open_account(tmp_path)
    first.commit(
        WriteBatch("A1", puts=[Put("T", {"id": f"t{i}", "n": 5 - i}, True) for i in range(5)])
    )
    first.close()
    second = open_backend(tmp_path)
    try:
        second.register_index(IndexSpec("T", "byN", lambda r: [(r["n"],)]))
        with second.snapshot("A1") as snap:
            assert [i for _k, i in snap.scan_index("T", "byN")] == ["t4", "t3", "t2", "t1", "t0"]
        second.commit(WriteBatch("A1", puts=[Put("T", {"id": "t0", "n": 0}, False)]))
        with second.snapshot("A1") as snap:
            assert [k for k, _i in snap.scan_index("T", "byN")][:2] == [(0,), (1,)]
    finally:
        second.close()


def test_longest_names_fit_lmdb_keys(tmp_path: Path) -> None:
    """255-byte account and record ids, 64-byte type and index names and a
    long index key all fit LMDB's 511-byte keys; oversized lookups are absent."""
    account, type_name, index = "a" * 255, "T" * 64, "i" * 64
    record_id = "r" * 255
    instance = open_backend(tmp_path)
    try:
        instance.register_index(IndexSpec(type_name, index, lambda r: [(r["s"], r["n"])]))
        instance.directory.create_account(AccountInfo(account, "long", ("alice",)))
        record = {"id": record_id, "s": "s" * 1000, "n": 1}
        instance.commit(WriteBatch(account, puts=[Put(type_name, record, True)]))
        with instance.snapshot(account) as snap:
            assert snap.get(type_name, record_id) == record
            assert snap.get(type_name, "x" * 600) is None
            assert snap.read_blob("B" * 600) is None
            assert list(snap.scan_index(type_name, index)) == [(("s" * 1000, 1), record_id)]
            assert snap.changes(type_name, LogPosition(0), None).created == [record_id]
        with pytest.raises(ValueError):
            instance.register_index(IndexSpec("T" * 65, "i", lambda r: []))
    finally:
        instance.close()


def test_deleting_last_holder_frees_blob_data(tmp_path: Path) -> None:
    instance = _open_account(tmp_path)
    try:
        blob_id = instance.put_blob("A1", b"data" * 1000, None).blob_id

        def stored(txn: Any, dbs: Any) -> bool:
            return txn.get(blob_id.encode(), db=dbs.blobdata) is not None

        assert instance._env.read(stored)
        instance.directory.delete_account("A1")
        assert not instance._env.read(stored)
    finally:
        instance.close()


# -- several processes -----------------------------------------------------------


def _commit_many(instance: LmdbBackend, tag: str, count: int) -> None:
    """Child: inherits the parent's backend object, which must reopen LMDB."""
    for i in range(count):
        instance.commit(WriteBatch("A1", puts=[Put("T", {"id": f"{tag}{i}"}, True)]))
        while True:  # read-modify-write of a shared counter, optimistic
            with instance.snapshot("A1") as snap:
                seen = snap.type_modseq("Counter")
                value = (snap.get("Counter", "c") or {"n": 0})["n"]
            batch = WriteBatch(
                "A1",
                expect={"Counter": seen},
                puts=[Put("Counter", {"id": "c", "n": value + 1}, value == 0)],
            )
            try:
                instance.commit(batch)
                break
            except StateConflict:
                continue


def test_processes_commit_concurrently(tmp_path: Path) -> None:
    instance = _open_account(tmp_path)
    try:
        with instance.snapshot("A1") as snap:  # the parent has the environment open
            assert snap.modseq() == 0
        per_child = 20
        children = [
            _FORK.Process(target=_commit_many, args=(instance, tag, per_child)) for tag in "pq"
        ]
        for child in children:
            child.start()
        for child in children:
            _join(child)
        with instance.snapshot("A1") as snap:
            assert snap.modseq() == 4 * per_child
            assert snap.count("T") == 2 * per_child
            assert snap.get("Counter", "c") == {"id": "c", "n": 2 * per_child}
            expected = {f"{tag}{i}" for tag in "pq" for i in range(per_child)}
            assert set(snap.ids("T")) == expected
            assert set(snap.changes("T", LogPosition(0), None).created) == expected
    finally:
        instance.close()


def _wait_then_read(instance: LmdbBackend, conn: Connection) -> None:
    start = instance.current_modseqs(["A1"])
    conn.send("ready")
    began = time.monotonic()
    current = instance.wait_for_change(start, 10.0)
    elapsed = time.monotonic() - began
    with instance.snapshot("A1") as snap:
        conn.send((elapsed, current, snap.get("T", "news")))


def test_other_process_sees_commit_and_wakes(tmp_path: Path) -> None:
    """A reader process sees a writer process's commit, and wait_for_change
    wakes on it across processes (the push path)."""
    instance = _open_account(tmp_path)
    parent_end, child_end = _FORK.Pipe()
    try:
        process = _FORK.Process(target=_wait_then_read, args=(instance, child_end))
        process.start()
        assert parent_end.poll(10) and parent_end.recv() == "ready"
        time.sleep(0.1)
        instance.commit(WriteBatch("A1", puts=[Put("T", {"id": "news", "v": 1}, True)]))
        assert parent_end.poll(10)
        elapsed, current, record = parent_end.recv()
        _join(process)
        assert current == {"A1": 1}
        assert record == {"id": "news", "v": 1}
        assert 0.05 < elapsed < 3.0
    finally:
        instance.close()


# -- full-text search --------------------------------------------------------------


def _email(record_id: str, text: str) -> tuple[Put, SearchDocument]:
    return Put("Email", {"id": record_id}, True), SearchDocument("Email", record_id, {"body": text})


def _index_emails(instance: LmdbBackend, *pairs: tuple[str, str]) -> None:
    puts, docs = zip(*(_email(record_id, text) for record_id, text in pairs), strict=True)
    instance.commit(WriteBatch("A1", puts=list(puts), search=list(docs)))


def _found(instance: LmdbBackend, query: str) -> set[str]:
    with instance.snapshot("A1") as snap:
        return snap.search("Email", None, query)


def _stored_documents(path: Path) -> int:
    with sqlite3.connect(path / jmap_fts.FILENAME) as conn:
        return conn.execute("SELECT count(*) FROM docs").fetchone()[0]


def test_search_index_lives_beside_the_environment(tmp_path: Path) -> None:
    instance = _open_account(tmp_path)
    try:
        _index_emails(instance, ("e1", "apple"))
        with sqlite3.connect(tmp_path / jmap_fts.FILENAME) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert _stored_documents(tmp_path) == 1
    finally:
        instance.close()
    reopened = open_backend(tmp_path)
    try:
        assert _found(reopened, "apple") == {"e1"}
    finally:
        reopened.close()


def test_state_conflict_indexes_nothing(tmp_path: Path) -> None:
    """The precondition is checked before the documents are indexed."""
    instance = _open_account(tmp_path)
    try:
        put, doc = _email("e1", "apple")
        with pytest.raises(StateConflict):
            instance.commit(WriteBatch("A1", expect={"Email": 7}, puts=[put], search=[doc]))
        assert _found(instance, "apple") == set()
        assert _stored_documents(tmp_path) == 0
    finally:
        instance.close()


def test_commit_failing_after_indexing_removes_new_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If LMDB fails after the documents were committed to SQLite, the new
    ones are removed again, and the records committed before keep theirs."""
    instance = _open_account(tmp_path)
    try:
        _index_emails(instance, ("e1", "apple"))
        original = CommitSearch.before_commit

        def then_fail(self: CommitSearch, num: int) -> None:
            original(self, num)
            raise jmap_lmdb.LmdbStorageError("disk full (simulated)")

        monkeypatch.setattr(CommitSearch, "before_commit", then_fail)
        with pytest.raises(jmap_lmdb.LmdbStorageError):
            _index_emails(instance, ("e2", "banana"), ("e3", "banana"))
        monkeypatch.undo()
        assert _found(instance, "banana") == set()
        assert _found(instance, "apple") == {"e1"}
        assert _stored_documents(tmp_path) == 1
        with instance.snapshot("A1") as snap:
            assert snap.get("Email", "e2") is None
    finally:
        instance.close()


def test_too_many_field_names_fail_the_commit(tmp_path: Path) -> None:
    instance = _open_account(tmp_path)
    try:
        fields = {f"field{i}": "apple" for i in range(jmap_fts.schema.SLOTS + 1)}
        batch = WriteBatch(
            "A1",
            puts=[Put("Email", {"id": "e1"}, True)],
            search=[SearchDocument("Email", "e1", fields)],
        )
        with pytest.raises(ValueError):
            instance.commit(batch)
        with instance.snapshot("A1") as snap:
            assert snap.get("Email", "e1") is None
        assert _found(instance, "apple") == set()
    finally:
        instance.close()


def test_removal_spares_a_document_indexed_later(tmp_path: Path) -> None:
    """A destroy's late removal (step 2) must not remove the document a
    later commit indexed for a re-created record with the same id."""
    instance = _open_account(tmp_path)
    try:
        _index_emails(instance, ("e1", "apple"))
        batch = WriteBatch("A1", destroys=[Destroy("Email", "e1")])
        destroy = CommitSearch(instance._search, batch)
        destroy.before_commit(1)  # account number 1; stamps the destroy
        _index_emails(instance, ("e1", "banana"))  # another worker re-creates e1
        destroy.after_commit()
        assert _found(instance, "banana") == {"e1"}
    finally:
        instance.close()


def test_rebuild_keeps_documents_of_concurrent_commits(tmp_path: Path) -> None:
    instance = _open_account(tmp_path)
    try:
        _index_emails(instance, ("e1", "apple"), ("e2", "apple"))

        def documents() -> Iterator[SearchDocument]:
            yield SearchDocument("Email", "e2", {"body": "rebuilt"})
            # Meanwhile, a commit replaces e1's document and indexes e3.
            instance.commit(
                WriteBatch(
                    "A1",
                    puts=[Put("Email", {"id": "e1"}, False), Put("Email", {"id": "e3"}, True)],
                    search=[
                        SearchDocument("Email", "e1", {"body": "newer"}),
                        SearchDocument("Email", "e3", {"body": "fresh"}),
                    ],
                )
            )
            yield SearchDocument("Email", "e1", {"body": "stale"})

        assert instance.rebuild_search("A1", "Email", documents()) == 2
        assert _found(instance, "rebuilt") == {"e2"}
        assert _found(instance, "newer") == {"e1"}
        assert _found(instance, "fresh") == {"e3"}
        assert _found(instance, "stale") == set()
        assert _found(instance, "apple") == set()
    finally:
        instance.close()


def test_deleted_account_documents_are_purged(tmp_path: Path) -> None:
    instance = _open_account(tmp_path)
    try:
        _index_emails(instance, *((f"e{i}", "apple") for i in range(1200)))
        instance.directory.create_account(AccountInfo("B2", "b2@example", ("bob",)))
        put, doc = _email("b1", "apple")
        instance.commit(WriteBatch("B2", puts=[put], search=[doc]))
        instance.directory.delete_account("A1")
        assert _stored_documents(tmp_path) == 1
    finally:
        instance.close()


def _search_in_child(instance: LmdbBackend, conn: Connection) -> None:
    """Child: inherits the parent's backend (and its used search index)."""
    found = _found(instance, "parent")
    _index_emails(instance, ("c1", "from the child"))
    conn.send(found)


def _index_in_child(instance: LmdbBackend, tag: str, count: int) -> None:
    for i in range(count):
        _index_emails(instance, (f"{tag}{i}", f"shared {tag}word{i}"))


def test_processes_share_the_search_index(tmp_path: Path) -> None:
    """Documents one process indexes are found by another, and several
    processes index concurrently (SQLite WAL, one writer at a time)."""
    instance = _open_account(tmp_path)
    parent_end, child_end = _FORK.Pipe()
    try:
        _index_emails(instance, ("p1", "from the parent"))
        assert _found(instance, "parent") == {"p1"}  # the parent's connection is open
        process = _FORK.Process(target=_search_in_child, args=(instance, child_end))
        process.start()
        assert parent_end.poll(30)
        assert parent_end.recv() == {"p1"}
        _join(process)
        assert _found(instance, "child") == {"c1"}
        children = [
            _FORK.Process(target=_index_in_child, args=(instance, tag, 15)) for tag in "xy"
        ]
        for child in children:
            child.start()
        _index_in_child(instance, "z", 15)
        for child in children:
            _join(child)
        assert len(_found(instance, "shared")) == 45
        assert _found(instance, "yword14") == {"y14"}
    finally:
        instance.close()


def test_unknown_search_schema_is_a_storage_error(tmp_path: Path) -> None:
    instance = _open_account(tmp_path)
    assert _found(instance, "apple") == set()  # creates the database
    instance.close()
    with sqlite3.connect(tmp_path / jmap_fts.FILENAME) as conn:
        conn.execute("UPDATE meta SET value = 99 WHERE key = 'schema'")
    reopened = open_backend(tmp_path)
    try:
        with pytest.raises(StorageError):
            _found(reopened, "apple")
    finally:
        reopened.close()
