"""Conformance suite for :mod:`jmapcore.storage` backends.

Every backend, built in or third party, runs the same tests.  In a test
module, define one function-scoped fixture named ``backend`` that returns a
fresh, empty backend (and closes it afterwards), then star-import this
module::

    import pytest
    from jmapcore.testing.backend_conformance import *  # noqa: F403

    @pytest.fixture
    def backend(tmp_path):
        b = open_my_backend(tmp_path)
        yield b
        b.close()

Spec ids from the core checklist appear in brackets where a test pins down
storage behaviour a JMAP rule depends on.
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
from typing import Any

import pytest

from jmapcore.storage import (
    AccountExists,
    AccountInfo,
    Backend,
    ChangesPage,
    CommitResult,
    Destroy,
    Directory,
    IndexSpec,
    LogPosition,
    PrincipalInfo,
    Put,
    SearchDocument,
    Snapshot,
    StateConflict,
    StorageError,
    Touch,
    UnknownAccount,
    WriteBatch,
)

_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,254}$")


# -- helpers (underscored: not exported by the star import) --------------------


def _account(backend: Backend, account_id: str = "A1", owner: str = "alice") -> str:
    backend.directory.create_account(AccountInfo(account_id, f"{account_id}@example", (owner,)))
    return account_id


def _put(
    backend: Backend,
    account: str,
    type_name: str,
    *records: dict[str, Any],
    created: bool = True,
) -> CommitResult:
    return backend.commit(
        WriteBatch(account, puts=[Put(type_name, dict(r), created) for r in records])
    )


def _update(backend: Backend, account: str, type_name: str, *records: dict[str, Any]) -> int:
    return _put(backend, account, type_name, *records, created=False).modseq


def _destroy(backend: Backend, account: str, type_name: str, *ids: str) -> int:
    batch = WriteBatch(account, destroys=[Destroy(type_name, i) for i in ids])
    return backend.commit(batch).modseq


def _modseq(backend: Backend, account: str) -> int:
    with backend.snapshot(account) as snap:
        return snap.modseq()


def _changes(
    backend: Backend, account: str, type_name: str, since: int | LogPosition
) -> ChangesPage:
    position = since if isinstance(since, LogPosition) else LogPosition(since)
    with backend.snapshot(account) as snap:
        return snap.changes(type_name, position, None)


def _progress(position: LogPosition) -> tuple[int, float]:
    """Order of log positions: ``(m, k)`` with ``k > 0`` lies inside modseq
    ``m``, before ``(m, 0)``, which means all of ``m`` was delivered."""
    return (position.modseq, position.offset or math.inf)


def _pages(
    backend: Backend, account: str, type_name: str, since: LogPosition, max_changes: int
) -> list[ChangesPage]:
    pages: list[ChangesPage] = []
    position = since
    while True:
        with backend.snapshot(account) as snap:
            page = snap.changes(type_name, position, max_changes)
        ids = page.created + page.updated + page.destroyed
        assert len(ids) <= max_changes, "[core-5.2-maxChangesPositive] MUST NOT return more"
        assert len(set(ids)) == len(ids)
        pages.append(page)
        if not page.has_more:
            return pages
        assert _progress(page.position) > _progress(position), "a page must make progress"
        position = page.position
        assert len(pages) < 10_000


def _index_by(type_name: str, name: str, prop: str) -> IndexSpec:
    return IndexSpec(type_name, name, lambda r: [(r.get(prop),)] if prop in r else [])


# -- protocol shape ------------------------------------------------------------


def test_backend_implements_protocols(backend: Backend) -> None:
    account = _account(backend)
    assert isinstance(backend, Backend)
    assert isinstance(backend.directory, Directory)
    with backend.snapshot(account) as snap:
        assert isinstance(snap, Snapshot)
        assert snap.account_id == account


# -- accounts and directory ---------------------------------------------------


def test_new_account_starts_empty(backend: Backend) -> None:
    account = _account(backend)
    with backend.snapshot(account) as snap:
        assert snap.modseq() == 0
        assert snap.epoch() == 1
        assert snap.type_modseq("Widget") == 0
        assert snap.low_water("Widget") == 0
        assert snap.count("Widget") == 0
        assert list(snap.ids("Widget")) == []
        assert snap.get("Widget", "w1") is None
        page = snap.changes("Widget", LogPosition(0), None)
    assert (page.created, page.updated, page.destroyed, page.has_more) == ([], [], [], False)
    assert page.position == LogPosition(0)


def test_account_create_get_list_duplicate(backend: Backend) -> None:
    info = AccountInfo("A1", "alice@example", ("alice", "bob"), is_personal=False)
    backend.directory.create_account(info)
    backend.directory.create_account(AccountInfo("B2", "b@example", ("bob",)))
    assert backend.directory.get_account("A1") == info
    assert backend.directory.get_account("nope") is None
    assert sorted(a.account_id for a in backend.directory.list_accounts()) == ["A1", "B2"]
    with pytest.raises(AccountExists):
        backend.directory.create_account(AccountInfo("A1", "again", ("carol",)))
    assert backend.directory.get_account("A1") == info


def test_update_account_replaces_its_metadata(backend: Backend) -> None:
    info = AccountInfo("A1", "alice", ("alice",))
    backend.directory.create_account(info)
    updated = AccountInfo("A1", "alice", ("alice",), addresses=("alice@example.com",))
    backend.directory.update_account(updated)
    assert backend.directory.get_account("A1") == updated
    with pytest.raises(UnknownAccount):
        backend.directory.update_account(AccountInfo("ghost", "g", ("g",)))


def test_unknown_account_is_refused(backend: Backend) -> None:
    with pytest.raises(UnknownAccount):
        with backend.snapshot("ghost"):
            pass
    with pytest.raises(UnknownAccount):
        _put(backend, "ghost", "Widget", {"id": "w1"})
    with pytest.raises(UnknownAccount):
        backend.put_blob("ghost", b"data", None)
    assert issubclass(UnknownAccount, StorageError)


def test_delete_account_removes_everything(backend: Backend) -> None:
    """[core-1.6.2-accountReset] a deleted then re-created account starts empty."""
    backend.register_index(_index_by("Widget", "byColor", "color"))
    account = _account(backend)
    other = _account(backend, "A2")
    _put(backend, account, "Widget", {"id": "w1", "color": "red"})
    _put(backend, other, "Widget", {"id": "w1", "color": "red"})
    blob = backend.put_blob(account, b"shared bytes", "alice")
    backend.put_blob(other, b"shared bytes", "alice")
    backend.directory.delete_account(account)
    assert backend.directory.get_account(account) is None
    with pytest.raises(UnknownAccount):
        with backend.snapshot(account):
            pass
    _account(backend, account)
    with backend.snapshot(account) as snap:
        assert snap.modseq() == 0
        assert snap.get("Widget", "w1") is None
        assert snap.count("Widget") == 0
        assert list(snap.scan_index("Widget", "byColor")) == []
        assert snap.blob_info(blob.blob_id) is None
    with backend.snapshot(other) as snap:
        assert snap.get("Widget", "w1") == {"id": "w1", "color": "red"}
        assert snap.read_blob(blob.blob_id) == b"shared bytes"


def test_principals_round_trip(backend: Backend) -> None:
    directory = backend.directory
    alice = PrincipalInfo("alice", "hash-a", ("A1", "S1"))
    directory.put_principal(alice)
    directory.put_principal(PrincipalInfo("bob", "hash-b", ()))
    assert directory.get_principal("alice") == alice
    assert directory.get_principal("carol") is None
    assert sorted(p.name for p in directory.list_principals()) == ["alice", "bob"]
    changed = PrincipalInfo("alice", "hash-a2", ("A1",))
    directory.put_principal(changed)
    assert directory.get_principal("alice") == changed
    directory.delete_principal("bob")
    assert directory.get_principal("bob") is None
    assert [p.name for p in directory.list_principals()] == ["alice"]


def test_tokens_round_trip(backend: Backend) -> None:
    directory = backend.directory
    directory.put_principal(PrincipalInfo("alice", "h", ()))
    directory.put_principal(PrincipalInfo("bob", "h", ()))
    directory.put_token("t1", "alice")
    directory.put_token("t2", "alice")
    directory.put_token("t3", "bob")
    assert directory.token_principal("t1") == "alice"
    assert directory.token_principal("t3") == "bob"
    assert directory.token_principal("nope") is None
    directory.delete_tokens("alice")
    assert directory.token_principal("t1") is None
    assert directory.token_principal("t2") is None
    assert directory.token_principal("t3") == "bob"


# -- records -------------------------------------------------------------------


def test_commit_put_get(backend: Backend) -> None:
    account = _account(backend)
    records = [{"id": f"w{i}", "n": i, "tags": ["x", None], "f": 1.5} for i in (3, 1, 2)]
    result = _put(backend, account, "Widget", *records)
    assert result.modseq == 1
    assert dict(result.type_modseqs) == {"Widget": 1}
    with backend.snapshot(account) as snap:
        assert snap.get("Widget", "w1") == records[1]
        assert snap.get("Widget", "w9") is None
        assert snap.get("Gadget", "w1") is None, "[core-1.6.3-idScope] ids are per type"
        assert snap.count("Widget") == 3
        assert snap.type_modseq("Widget") == 1


def test_get_many_keeps_order_with_none(backend: Backend) -> None:
    account = _account(backend)
    _put(backend, account, "Widget", {"id": "a"}, {"id": "b"})
    with backend.snapshot(account) as snap:
        got = snap.get_many("Widget", ["b", "zz", "a", "b"])
        assert got == [{"id": "b"}, None, {"id": "a"}, {"id": "b"}]
        assert snap.get_many("Widget", []) == []


def test_ids_ascending_and_count(backend: Backend) -> None:
    account = _account(backend)
    ids = ["m10", "M2", "a-b", "a_b", "z", "A", "m1", "m9"]
    _put(backend, account, "Widget", *({"id": i} for i in ids))
    _put(backend, account, "Gadget", {"id": "g1"})
    with backend.snapshot(account) as snap:
        assert list(snap.ids("Widget")) == sorted(ids)
        assert snap.count("Widget") == len(ids)
        assert list(snap.ids("Gadget")) == ["g1"]


def test_update_and_destroy_keep_count(backend: Backend) -> None:
    account = _account(backend)
    _put(backend, account, "Widget", {"id": "a", "v": 1}, {"id": "b", "v": 1})
    _update(backend, account, "Widget", {"id": "a", "v": 2})
    _destroy(backend, account, "Widget", "b")
    with backend.snapshot(account) as snap:
        assert snap.get("Widget", "a") == {"id": "a", "v": 2}
        assert snap.get("Widget", "b") is None
        assert snap.count("Widget") == 1
        assert list(snap.ids("Widget")) == ["a"]


def test_destroy_missing_is_noop(backend: Backend) -> None:
    account = _account(backend)
    before = _put(backend, account, "Widget", {"id": "a"}).modseq
    _destroy(backend, account, "Widget", "ghost")
    page = _changes(backend, account, "Widget", before)
    assert (page.created, page.updated, page.destroyed) == ([], [], [])
    with backend.snapshot(account) as snap:
        assert snap.count("Widget") == 1


def test_modseq_raised_once_per_commit(backend: Backend) -> None:
    """One modseq per commit whatever it touches; type modseqs follow [core-5.1-response]."""
    account = _account(backend)
    _put(backend, account, "Other", {"id": "o1"})
    batch = WriteBatch(
        account,
        puts=[Put("Widget", {"id": f"w{i}"}, True) for i in range(5)]
        + [Put("Gadget", {"id": "g1"}, True)],
        touches=[Touch("Mailbox", "m1", ("unreadEmails",))],
    )
    result = backend.commit(batch)
    assert result.modseq == 2
    assert dict(result.type_modseqs) == {"Widget": 2, "Gadget": 2, "Mailbox": 2}
    with backend.snapshot(account) as snap:
        assert snap.modseq() == 2
        assert snap.type_modseq("Widget") == 2
        assert snap.type_modseq("Other") == 1
        assert snap.type_modseq("Never") == 0
    assert _update(backend, account, "Widget", {"id": "w1", "x": 1}) == 3
    with backend.snapshot(account) as snap:
        assert (snap.type_modseq("Widget"), snap.type_modseq("Gadget")) == (3, 2)


def test_empty_batch_does_not_bump(backend: Backend) -> None:
    account = _account(backend)
    _put(backend, account, "Widget", {"id": "a"})
    result = backend.commit(WriteBatch(account, expect={"Widget": 1}))
    assert result.modseq == 1
    assert _modseq(backend, account) == 1


def test_expect_conflict_writes_nothing(backend: Backend) -> None:
    """[core-5.3-ifInState] [core-3.6.2-noSideEffects] a failed precondition
    raises StateConflict and leaves everything unchanged."""
    account = _account(backend)
    _put(backend, account, "Widget", {"id": "a"})
    batch = WriteBatch(
        account,
        expect={"Gadget": 0, "Widget": 0},
        puts=[Put("Widget", {"id": "b"}, True)],
        destroys=[Destroy("Widget", "a")],
    )
    with pytest.raises(StateConflict) as caught:
        backend.commit(batch)
    assert (caught.value.type_name, caught.value.expected, caught.value.actual) == ("Widget", 0, 1)
    with backend.snapshot(account) as snap:
        assert snap.modseq() == 1
        assert snap.get("Widget", "b") is None
        assert snap.get("Widget", "a") == {"id": "a"}
        assert snap.count("Widget") == 1
    batch.expect = {"Widget": 1, "Gadget": 0}
    assert backend.commit(batch).modseq == 2


# -- change log ----------------------------------------------------------------


def test_changes_coalesce(backend: Backend) -> None:
    """[core-5.2-coalesce] created+updated -> created; updated+destroyed ->
    destroyed; created+destroyed -> omitted; plain updates and destroys."""
    account = _account(backend)
    base = _put(backend, account, "Widget", *({"id": i} for i in ("u1", "u2", "d1", "keep"))).modseq
    _put(backend, account, "Widget", {"id": "n1"}, {"id": "n2"})
    _update(backend, account, "Widget", {"id": "u1", "v": 1}, {"id": "u2", "v": 1})
    _update(backend, account, "Widget", {"id": "n1", "v": 1}, {"id": "u1", "v": 2})
    _destroy(backend, account, "Widget", "u2", "n2", "d1")
    page = _changes(backend, account, "Widget", base)
    assert page.created == ["n1"]
    assert page.updated == ["u1"]
    assert sorted(page.destroyed) == ["d1", "u2"]
    assert page.has_more is False
    assert page.position == LogPosition(_modseq(backend, account))
    assert page.updated_properties is None


def test_changes_from_current_state_is_empty(backend: Backend) -> None:
    account = _account(backend)
    _put(backend, account, "Widget", {"id": "a"})
    _put(backend, account, "Gadget", {"id": "g"})
    with backend.snapshot(account) as snap:
        page = snap.changes("Widget", LogPosition(snap.type_modseq("Widget")), None)
        assert (page.created, page.updated, page.destroyed, page.has_more) == ([], [], [], False)
        assert page.position.modseq >= snap.type_modseq("Widget")


def test_changes_beyond_current_modseq_raises(backend: Backend) -> None:
    """[core-5.2-cannotCalculate] a state from the future is unknown."""
    account = _account(backend)
    _put(backend, account, "Widget", {"id": "a"})
    with backend.snapshot(account) as snap:
        with pytest.raises(LookupError):
            snap.changes("Widget", LogPosition(snap.modseq() + 1), None)


def test_changes_page_across_modseqs(backend: Backend) -> None:
    """[core-5.2-intermediate] over the limit, pages end at real states."""
    account = _account(backend)
    for commit in range(5):
        _put(backend, account, "Widget", *({"id": f"c{commit}x{i}"} for i in range(3)))
    pages = _pages(backend, account, "Widget", LogPosition(0), 5)
    assert [p.has_more for p in pages][-1] is False
    assert all(p.has_more for p in pages[:-1])
    for page in pages[:-1]:
        assert page.position.offset == 0, "stop at a modseq boundary when possible"
    created = [i for p in pages for i in p.created]
    assert sorted(created) == sorted(f"c{c}x{i}" for c in range(5) for i in range(3))
    assert pages[-1].position == LogPosition(5)


def test_changes_page_inside_one_huge_modseq(backend: Backend) -> None:
    """[core-5.2-intermediate] one commit of 1000 creates still pages, with
    intermediate positions inside it, to the same result as one call."""
    account = _account(backend)
    _put(backend, account, "Widget", {"id": "old"})
    big = _put(backend, account, "Widget", *({"id": f"w{i:04d}"} for i in range(1000))).modseq
    _update(backend, account, "Widget", {"id": "old", "v": 1}, {"id": "w0001", "v": 1})
    whole = _changes(backend, account, "Widget", 1)
    pages = _pages(backend, account, "Widget", LogPosition(1), 100)
    assert len(pages) >= 10
    inside = [p.position for p in pages if p.has_more and p.position.modseq == big]
    assert inside and all(pos.offset > 0 for pos in inside if pos != LogPosition(big))
    created = [i for p in pages for i in p.created]
    updated = {i for p in pages for i in p.updated}
    assert sorted(created) == sorted(whole.created)
    assert len(created) == 1000
    assert updated == {"old", "w0001"}
    assert set(whole.updated) == {"old"}
    assert pages[-1].position == whole.position == LogPosition(big + 1)


def test_changes_paging_simulated_client(backend: Backend) -> None:
    """[core-5.2-intermediate] across pages never "created" for a known id,
    never "updated"/"destroyed" for an unknown one; the cache ends right."""
    rng = random.Random(8620)
    account = _account(backend)
    _put(backend, account, "Widget", *({"id": f"s{i}"} for i in range(6)))
    start = LogPosition(_modseq(backend, account))
    live = {f"s{i}" for i in range(6)}
    serial = 0
    for _commit in range(25):
        batch = WriteBatch(account)
        for _op in range(rng.randint(1, 6)):
            roll = rng.random()
            if roll < 0.4 or not live:
                serial += 1
                new_id = f"n{serial}"
                batch.puts.append(Put("Widget", {"id": new_id}, True))
                live.add(new_id)
            elif roll < 0.7:
                batch.puts.append(
                    Put("Widget", {"id": rng.choice(sorted(live)), "v": serial}, False)
                )
            elif roll < 0.8:
                batch.touches.append(Touch("Widget", rng.choice(sorted(live)), ("v",)))
            else:
                gone = rng.choice(sorted(live))
                batch.destroys.append(Destroy("Widget", gone))
                live.discard(gone)
        backend.commit(batch)
    for max_changes in (1, 2, 3, 7, 1000):
        cache = {f"s{i}" for i in range(6)}
        for page in _pages(backend, account, "Widget", start, max_changes):
            for record_id in page.created:
                assert record_id not in cache
                cache.add(record_id)
            for record_id in page.updated:
                assert record_id in cache
            for record_id in page.destroyed:
                assert record_id in cache
                cache.discard(record_id)
        assert cache == live


def test_updated_properties_from_touches(backend: Backend) -> None:
    account = _account(backend)
    base = _put(backend, account, "Mailbox", {"id": "m1"}, {"id": "m2"}, {"id": "m3"}).modseq
    backend.commit(
        WriteBatch(
            account,
            puts=[Put("Mailbox", {"id": "m4"}, True)],
            touches=[Touch("Mailbox", "m1", ("unreadEmails",)), Touch("Mailbox", "m4", ("x",))],
        )
    )
    backend.commit(
        WriteBatch(
            account,
            touches=[
                Touch("Mailbox", "m1", ("totalEmails",)),
                Touch("Mailbox", "m2", ("unreadEmails",)),
            ],
        )
    )
    page = _changes(backend, account, "Mailbox", base)
    assert page.created == ["m4"]
    assert sorted(page.updated) == ["m1", "m2"]
    assert sorted(page.updated_properties or []) == ["totalEmails", "unreadEmails"]
    _update(backend, account, "Mailbox", {"id": "m2", "name": "renamed"})
    assert _changes(backend, account, "Mailbox", base).updated_properties is None
    after = _modseq(backend, account)
    backend.commit(WriteBatch(account, touches=[Touch("Mailbox", "m3")]))
    page = _changes(backend, account, "Mailbox", after)
    assert page.updated == ["m3"]
    assert page.updated_properties is None, "a touch naming nothing is a full update"


def test_prune_changes_raises_low_water(backend: Backend) -> None:
    """[core-5.2-cannotCalculate] states older than the pruned log are refused;
    current states of every type keep working."""
    account = _account(backend)
    _put(backend, account, "Quiet", {"id": "q"})
    for i in range(2, 6):
        _put(backend, account, "Widget", {"id": f"w{i}"})
    backend.prune_changes(account, 4)
    with backend.snapshot(account) as snap:
        assert 3 <= snap.low_water("Widget") <= 4
        for old in (0, 1, 2):
            with pytest.raises(LookupError):
                snap.changes("Widget", LogPosition(old), None)
        page = snap.changes("Widget", LogPosition(4), None)
        assert page.created == ["w5"]
        quiet = snap.changes("Quiet", LogPosition(snap.type_modseq("Quiet")), None)
        assert (quiet.created, quiet.updated, quiet.destroyed) == ([], [], [])


def test_bump_epoch(backend: Backend) -> None:
    account = _account(backend)
    _put(backend, account, "Widget", {"id": "a"})
    assert backend.bump_epoch(account) == 2
    assert backend.bump_epoch(account) == 3
    with backend.snapshot(account) as snap:
        assert snap.epoch() == 3
        assert snap.modseq() == 1


# -- indexes -----------------------------------------------------------------


def test_index_scan_order_and_reverse(backend: Backend) -> None:
    """Index order is total and stable: key, then id [core-5.5-stableSort]."""
    backend.register_index(_index_by("Widget", "byKey", "k"))
    account = _account(backend)
    values: list[Any] = [
        "b", "a", "", "a\x00b", "a\x01", "é", "z", "日本", -5, -0.5, 0, 3, 2.5, 10**12,
        None, False, True, b"\x00", b"\xff", "a",
    ]  # fmt: skip
    _put(backend, account, "Widget", *({"id": f"w{i:02d}", "k": v} for i, v in enumerate(values)))
    _put(backend, account, "Widget", {"id": "nokey"})
    expected = [
        ((None,), "w14"), ((False,), "w15"), ((True,), "w16"),
        ((-5,), "w08"), ((-0.5,), "w09"), ((0,), "w10"), ((2.5,), "w12"), ((3,), "w11"),
        ((10**12,), "w13"),
        (("",), "w02"), (("a",), "w01"), (("a",), "w19"), (("a\x00b",), "w03"),
        (("a\x01",), "w04"), (("b",), "w00"), (("z",), "w06"), (("é",), "w05"),
        (("日本",), "w07"), ((b"\x00",), "w17"), ((b"\xff",), "w18"),
    ]  # fmt: skip
    with backend.snapshot(account) as snap:
        assert list(snap.scan_index("Widget", "byKey")) == expected
        assert list(snap.scan_index("Widget", "byKey", reverse=True)) == expected[::-1]
        assert list(snap.scan_index("Widget", "byKey", ("a",))) == [
            (("a",), "w01"),
            (("a",), "w19"),
        ]
        assert list(snap.scan_index("Widget", "byKey", ("a",), reverse=True)) == [
            (("a",), "w19"),
            (("a",), "w01"),
        ]
        assert list(snap.scan_index("Widget", "byKey", ("nothing",))) == []


def test_index_multi_key_and_prefix(backend: Backend) -> None:
    """One record may have many keys (one per mailbox); prefixes select a mailbox."""
    backend.register_index(
        IndexSpec(
            "Email",
            "byMailbox",
            lambda r: [(m, r["receivedAt"]) for m in sorted(r["mailboxIds"])],
        )
    )
    account = _account(backend)
    _put(
        backend,
        account,
        "Email",
        {"id": "e1", "mailboxIds": {"inbox": True}, "receivedAt": 30},
        {"id": "e2", "mailboxIds": {"inbox": True, "work": True}, "receivedAt": 10},
        {"id": "e3", "mailboxIds": {"work": True}, "receivedAt": 20},
        {"id": "e4", "mailboxIds": {"inbox2": True}, "receivedAt": 5},
    )
    with backend.snapshot(account) as snap:
        inbox = list(snap.scan_index("Email", "byMailbox", ("inbox",)))
        assert inbox == [(("inbox", 10), "e2"), (("inbox", 30), "e1")]
        newest = [i for _k, i in snap.scan_index("Email", "byMailbox", ("work",), reverse=True)]
        assert newest == ["e3", "e2"]
        assert len(list(snap.scan_index("Email", "byMailbox"))) == 5


def test_index_follows_update_and_destroy(backend: Backend) -> None:
    backend.register_index(_index_by("Widget", "byColor", "color"))
    account = _account(backend)
    _put(backend, account, "Widget", {"id": "a", "color": "red"}, {"id": "b", "color": "red"})
    with backend.snapshot(account) as before:
        _update(backend, account, "Widget", {"id": "a", "color": "blue"})
        _destroy(backend, account, "Widget", "b")
        _put(backend, account, "Widget", {"id": "c", "color": "red"})
        assert [i for _k, i in before.scan_index("Widget", "byColor")] == ["a", "b"]
    with backend.snapshot(account) as snap:
        assert list(snap.scan_index("Widget", "byColor")) == [(("blue",), "a"), (("red",), "c")]
        assert list(snap.scan_index("Widget", "byColor", ("red",))) == [(("red",), "c")]


def test_index_long_keys(backend: Backend) -> None:
    """Keys far longer than a storage engine's key limit keep exact order and prefixes."""
    backend.register_index(IndexSpec("Email", "bySubject", lambda r: [(r["s"], r["n"])]))
    account = _account(backend)
    stem = "x" * 700
    subjects = [stem + "b", stem + "a", stem, "y" * 300, stem + "a" * 50, "short"]
    _put(
        backend,
        account,
        "Email",
        *({"id": f"e{i}", "s": s, "n": i % 2} for i, s in enumerate(subjects)),
    )
    expected = sorted(((s, i % 2), f"e{i}") for i, s in enumerate(subjects))
    with backend.snapshot(account) as snap:
        assert list(snap.scan_index("Email", "bySubject")) == expected
        assert list(snap.scan_index("Email", "bySubject", reverse=True)) == expected[::-1]
        got = [i for _k, i in snap.scan_index("Email", "bySubject", (stem + "a",))]
        assert got == ["e1"]
        assert [i for _k, i in snap.scan_index("Email", "bySubject", (stem,))] == ["e2"]


# -- isolation -----------------------------------------------------------------


def test_snapshot_isolation(backend: Backend) -> None:
    backend.register_index(_index_by("Widget", "byColor", "color"))
    account = _account(backend)
    _put(backend, account, "Widget", {"id": "a", "color": "red"})
    with backend.snapshot(account) as old:
        _put(backend, account, "Widget", {"id": "b", "color": "red"})
        _update(backend, account, "Widget", {"id": "a", "color": "blue"})
        backend.bump_epoch(account)
        assert old.modseq() == 1
        assert old.epoch() == 1
        assert old.type_modseq("Widget") == 1
        assert old.count("Widget") == 1
        assert old.get("Widget", "b") is None
        assert old.get("Widget", "a") == {"id": "a", "color": "red"}
        assert list(old.ids("Widget")) == ["a"]
        assert [i for _k, i in old.scan_index("Widget", "byColor", ("red",))] == ["a"]
        assert old.changes("Widget", LogPosition(1), None).created == []
        with backend.snapshot(account) as new:
            assert new.modseq() == 3
            assert new.count("Widget") == 2
            assert new.changes("Widget", LogPosition(1), None).created == ["b"]


def test_accounts_are_isolated(backend: Backend) -> None:
    """[core-1.6.3-idScope] same ids in two accounts, and account or type ids
    that prefix one another, never bleed."""
    backend.register_index(_index_by("T", "byV", "v"))
    a = _account(backend, "a")
    ab = _account(backend, "ab")
    _put(backend, a, "T", {"id": "x", "v": 1}, {"id": "xy", "v": 2})
    _put(backend, a, "TT", {"id": "x", "v": 3})
    _put(backend, ab, "T", {"id": "x", "v": 9})
    _update(backend, ab, "T", {"id": "x", "v": 10})
    with backend.snapshot(a) as snap:
        assert snap.modseq() == 2
        assert snap.get("T", "x") == {"id": "x", "v": 1}
        assert list(snap.ids("T")) == ["x", "xy"]
        assert snap.count("T") == 2
        assert [k for k, _i in snap.scan_index("T", "byV")] == [(1,), (2,)]
        assert snap.changes("T", LogPosition(0), None).created == ["x", "xy"]
    with backend.snapshot(ab) as snap:
        assert snap.modseq() == 2
        assert list(snap.ids("T")) == ["x"]
        assert list(snap.ids("TT")) == []
        assert list(snap.scan_index("T", "byV")) == [((10,), "x")]
    assert backend.current_modseqs([a, ab]) == {a: 2, ab: 2}


# -- blobs -------------------------------------------------------------------


def test_blob_put_dedup_and_read(backend: Backend) -> None:
    """[core-6-blobImmutable] [core-1.2-idSyntax] content-addressed ids;
    [core-6.1-uploaderOnly] the uploader is recorded."""
    account = _account(backend)
    data = bytes(range(256)) * 40
    info = backend.put_blob(account, data, "alice")
    assert _ID.match(info.blob_id)
    assert (info.size, info.refs, info.uploader) == (len(data), 0, "alice")
    assert abs(info.uploaded_at - time.time()) < 60
    again = backend.put_blob(account, data, "alice")
    assert again.blob_id == info.blob_id
    assert again.uploaded_at >= info.uploaded_at
    other = backend.put_blob(account, data + b"!", "alice")
    assert other.blob_id != info.blob_id
    empty = backend.put_blob(account, b"", None)
    assert _ID.match(empty.blob_id) and empty.size == 0
    with backend.snapshot(account) as snap:
        assert snap.blob_info(info.blob_id) == again
        assert snap.read_blob(info.blob_id) == data
        assert snap.read_blob(info.blob_id, 100, 50) == data[100:150]
        assert snap.read_blob(info.blob_id, 10_000) == data[10_000:]
        assert snap.read_blob(info.blob_id, 10_230, 100) == data[10_230:]
        assert snap.read_blob(info.blob_id, 20_000) == b""
        assert snap.read_blob(empty.blob_id) == b""
        assert snap.read_blob("Bnothere") is None
        assert snap.blob_info("Bnothere") is None


def test_blobs_are_per_account(backend: Backend) -> None:
    a1 = _account(backend)
    a2 = _account(backend, "A2")
    info = backend.put_blob(a1, b"private", "alice")
    with backend.snapshot(a2) as snap:
        assert snap.blob_info(info.blob_id) is None
        assert snap.read_blob(info.blob_id) is None
    assert backend.put_blob(a2, b"private", "bob").blob_id == info.blob_id
    assert backend.expire_blobs(a1, time.time() + 60) == 1
    with backend.snapshot(a2) as snap:
        assert snap.read_blob(info.blob_id) == b"private"
        assert snap.blob_info(info.blob_id).uploader == "bob"  # type: ignore[union-attr]
    with backend.snapshot(a1) as snap:
        assert snap.read_blob(info.blob_id) is None


def test_blob_refs_and_expiry(backend: Backend) -> None:
    """[core-6-blobReuse] references counted through batches;
    [core-6-blobLifetime] only unreferenced blobs older than the cut expire."""
    account = _account(backend)
    kept = backend.put_blob(account, b"referenced", "alice")
    loose = backend.put_blob(account, b"loose", "alice")
    backend.commit(
        WriteBatch(
            account,
            puts=[Put("Email", {"id": "e1", "blobId": kept.blob_id}, True)],
            blob_refs={kept.blob_id: 2, "Bunknown": 1},
        )
    )
    with backend.snapshot(account) as snap:
        assert snap.blob_info(kept.blob_id).refs == 2  # type: ignore[union-attr]
    assert backend.expire_blobs(account, loose.uploaded_at - 1) == 0
    assert backend.expire_blobs(account, time.time() + 60) == 1
    with backend.snapshot(account) as snap:
        assert snap.blob_info(loose.blob_id) is None
        assert snap.read_blob(loose.blob_id) is None
        assert snap.read_blob(kept.blob_id) == b"referenced"
    backend.commit(WriteBatch(account, blob_refs={kept.blob_id: -1}))
    assert backend.expire_blobs(account, time.time() + 60) == 0
    backend.commit(WriteBatch(account, blob_refs={kept.blob_id: -5, "Bunknown": -1}))
    with backend.snapshot(account) as snap:
        assert snap.blob_info(kept.blob_id).refs == 0  # type: ignore[union-attr]
    assert backend.expire_blobs(account, time.time() + 60) == 1
    with backend.snapshot(account) as snap:
        assert snap.blob_info(kept.blob_id) is None


# -- change notification -------------------------------------------------------


def test_current_modseqs(backend: Backend) -> None:
    a1 = _account(backend)
    a2 = _account(backend, "A2")
    _put(backend, a1, "Widget", {"id": "a"})
    _put(backend, a1, "Widget", {"id": "b"})
    assert backend.current_modseqs([a1, a2]) == {a1: 2, a2: 0}


def test_wait_for_change_returns_at_once_if_changed(backend: Backend) -> None:
    """[core-7.1-stateChange] push learns of changes made before it waited."""
    account = _account(backend)
    _put(backend, account, "Widget", {"id": "a"})
    started = time.monotonic()
    assert backend.wait_for_change({account: 0}, 5.0) == {account: 1}
    assert time.monotonic() - started < 1.0


def test_wait_for_change_times_out(backend: Backend) -> None:
    account = _account(backend)
    started = time.monotonic()
    assert backend.wait_for_change({account: 0}, 0.2) == {account: 0}
    elapsed = time.monotonic() - started
    assert 0.15 <= elapsed < 2.0


def test_wait_for_change_wakes_on_commit(backend: Backend) -> None:
    """[core-7.1-stateChange] a commit from another thread wakes a waiter promptly."""
    a1 = _account(backend)
    a2 = _account(backend, "A2")

    def writer() -> None:
        time.sleep(0.05)
        _put(backend, a2, "Widget", {"id": "x"})

    thread = threading.Thread(target=writer)
    started = time.monotonic()
    thread.start()
    try:
        current = backend.wait_for_change({a1: 0, a2: 0}, 5.0)
    finally:
        thread.join()
    assert current[a2] == 1
    assert time.monotonic() - started < 2.0


def test_modseq_before_maps_time_to_modseq(backend: Backend) -> None:
    """[core-5.2-cannotCalculate] retention is stated in days; the backend
    says which modseq was the last before a time."""
    import time

    account = _account(backend)
    assert backend.modseq_before(account, time.time() + 1) == 0
    _put(backend, account, "T", {"id": "a"})
    _put(backend, account, "T", {"id": "b"})
    assert backend.modseq_before(account, 0) == 0
    assert backend.modseq_before(account, time.time() + 1) == 2


# -- full-text search ----------------------------------------------------------


def _doc(record_id: str, type_name: str = "Email", **fields: str) -> SearchDocument:
    return SearchDocument(type_name, record_id, fields)


def _index(backend: Backend, account: str, *docs: SearchDocument) -> CommitResult:
    """Create a record for each document, with the document, in one commit."""
    puts = [Put(doc.type_name, {"id": doc.id}, True) for doc in docs]
    return backend.commit(WriteBatch(account, puts=puts, search=list(docs)))


def _search(
    backend: Backend, account: str, query: str, field: str | None = None, type_name: str = "Email"
) -> set[str]:
    with backend.snapshot(account) as snap:
        return snap.search(type_name, field, query)


def _mail(backend: Backend) -> str:
    account = _account(backend)
    _index(
        backend,
        account,
        _doc(
            "e1",
            subject="Quarterly invoice",
            body="the quick brown fox jumps",
            **{"from": "Alice Liddell <alice@example.com>"},
        ),
        _doc("e2", subject="Lunch?", body="a quick red fox", **{"from": "bob@example.org"}),
        _doc("e3", subject="Réunion à Zürich", body="the lazy dog", to="Carol <carol@x.net>"),
        _doc("e4", subject="fish and chips", body="say \"hi\" now, don't wait"),
    )
    return account


def test_search_words_are_all_required(backend: Backend) -> None:
    """[mail-4.4.1-matching] unquoted whitespace splits terms that MUST all be present."""
    account = _mail(backend)
    assert _search(backend, account, "quick fox") == {"e1", "e2"}
    assert _search(backend, account, "fox quick") == {"e1", "e2"}
    assert _search(backend, account, "quick brown") == {"e1"}
    assert _search(backend, account, "quick dog") == set()
    assert _search(backend, account, "  lazy\tdog\n") == {"e3"}
    assert _search(backend, account, "fish and chips") == {"e4"}
    assert _search(backend, account, "fish OR zebra") == set(), "no FTS operators"


def test_search_word_is_a_prefix(backend: Backend) -> None:
    account = _mail(backend)
    assert _search(backend, account, "ali") == {"e1"}
    assert _search(backend, account, "qu") == {"e1", "e2"}
    assert _search(backend, account, "lice") == set(), "a prefix, not a substring"
    assert _search(backend, account, "alice@example.com") == {"e1"}
    assert _search(backend, account, "alice@example.c") == {"e1"}
    assert _search(backend, account, "alice@example.org") == set()
    assert _search(backend, account, "example.com") == {"e1"}
    assert _search(backend, account, "liddell,") == {"e1"}


def test_search_quoted_phrase(backend: Backend) -> None:
    """[mail-4.4.1-matching] quoted text (single or double quotes) is a phrase."""
    account = _mail(backend)
    assert _search(backend, account, '"quick brown"') == {"e1"}
    assert _search(backend, account, "'quick brown'") == {"e1"}
    assert _search(backend, account, '"brown quick"') == set()
    assert _search(backend, account, '"quick fox"') == set()
    assert _search(backend, account, '"quick bro"') == set(), "a phrase matches whole words"
    assert _search(backend, account, '"quick" "fox"') == {"e1", "e2"}
    assert _search(backend, account, '"brown fox" lazy') == set()
    assert _search(backend, account, 'red "quick red fox"') == {"e2"}
    assert _search(backend, account, '"say \\"hi\\" now"') == {"e4"}
    assert _search(backend, account, "'don\\'t wait'") == {"e4"}
    assert _search(backend, account, "don't") == {"e4"}
    assert _search(backend, account, '"jumps') == {"e1"}, "an open quote runs to the end"


def test_search_ignores_case_and_accents(backend: Backend) -> None:
    """[mail-4.4.1-matching] SHOULD be case-insensitive; accents are folded too."""
    account = _mail(backend)
    for query in ("reunion", "RÉUNION", "Reunión", "zurich", "ZÜR", '"réunion a zurich"'):
        assert _search(backend, account, query) == {"e3"}, query
    assert _search(backend, account, "QUICK Fox") == {"e1", "e2"}
    _index(backend, account, _doc("e9", body="Привет мир 日本語"))
    assert _search(backend, account, "ПРИВЕТ") == {"e9"}
    assert _search(backend, account, "日本語") == {"e9"}


def test_search_one_field_or_any(backend: Backend) -> None:
    account = _mail(backend)
    assert _search(backend, account, "invoice", "subject") == {"e1"}
    assert _search(backend, account, "invoice", "body") == set()
    assert _search(backend, account, "alice", "from") == {"e1"}
    assert _search(backend, account, "carol", "to") == {"e3"}
    assert _search(backend, account, "carol", "from") == set()
    assert _search(backend, account, "alice invoice") == {"e1"}, "terms in different fields"
    assert _search(backend, account, "alice invoice", "subject") == set()
    assert _search(backend, account, "quick", "no-such-field") == set()
    assert _search(backend, account, '"invoice the"') == set(), "a phrase stays inside one field"


def test_search_is_per_account_and_type(backend: Backend) -> None:
    a1 = _account(backend)
    a2 = _account(backend, "A2")
    _index(backend, a1, _doc("x1", body="apple"), _doc("x1", "Note", body="banana"))
    _index(backend, a2, _doc("x1", body="cherry"), _doc("x2", body="apple pie"))
    assert _search(backend, a1, "apple") == {"x1"}
    assert _search(backend, a2, "apple") == {"x2"}
    assert _search(backend, a1, "banana") == set()
    assert _search(backend, a1, "banana", type_name="Note") == {"x1"}
    assert _search(backend, a1, "apple", type_name="Note") == set()
    assert _search(backend, a2, "banana", type_name="Note") == set()
    assert _search(backend, a1, "apple", type_name="Never") == set()


def test_search_document_replaced(backend: Backend) -> None:
    account = _account(backend)
    _index(backend, account, _doc("e1", subject="apple", body="one"))
    update = WriteBatch(
        account,
        puts=[Put("Email", {"id": "e1", "v": 2}, False)],
        search=[_doc("e1", subject="banana")],
    )
    backend.commit(update)
    assert _search(backend, account, "apple") == set()
    assert _search(backend, account, "one") == set()
    assert _search(backend, account, "banana") == {"e1"}
    assert _search(backend, account, "banana", "subject") == {"e1"}


def test_search_documents_go_with_destroyed_records(backend: Backend) -> None:
    """A destroyed record's document goes too; a record created and
    destroyed in one batch never becomes searchable."""
    account = _account(backend)
    _index(backend, account, _doc("e1", body="apple"), _doc("e2", body="apple"))
    _index(backend, account, _doc("e1", "Note", body="apple"))
    _destroy(backend, account, "Email", "e1")
    assert _search(backend, account, "apple") == {"e2"}
    assert _search(backend, account, "apple", type_name="Note") == {"e1"}
    batch = WriteBatch(
        account,
        puts=[Put("Email", {"id": "e3"}, True)],
        destroys=[Destroy("Email", "e3"), Destroy("Email", "e2")],
        search=[_doc("e3", body="apple")],
    )
    backend.commit(batch)
    assert _search(backend, account, "apple") == set()
    _index(backend, account, _doc("e1", body="apple again"))
    assert _search(backend, account, "apple") == {"e1"}, "an id may come back"


def test_search_documents_go_with_the_account(backend: Backend) -> None:
    account = _account(backend)
    _index(backend, account, _doc("e1", body="apple"))
    backend.directory.delete_account(account)
    _account(backend, account)
    assert _search(backend, account, "apple") == set()


def test_search_failed_precondition_indexes_nothing(backend: Backend) -> None:
    """[core-3.6.2-noSideEffects] a StateConflict leaves no searchable document."""
    account = _account(backend)
    _index(backend, account, _doc("e1", body="apple"))
    batch = WriteBatch(
        account,
        expect={"Email": 0},
        puts=[Put("Email", {"id": "e2"}, True), Put("Email", {"id": "e1"}, False)],
        search=[_doc("e2", body="banana"), _doc("e1", body="cherry")],
    )
    with pytest.raises(StateConflict):
        backend.commit(batch)
    assert _search(backend, account, "banana") == set()
    assert _search(backend, account, "cherry") == set()
    assert _search(backend, account, "apple") == {"e1"}


def test_rebuild_search(backend: Backend) -> None:
    a1 = _account(backend)
    a2 = _account(backend, "A2")
    _index(backend, a1, _doc("e1", body="apple"), _doc("e2", body="banana"))
    _index(backend, a1, _doc("n1", "Note", body="apple"))
    _index(backend, a2, _doc("e1", body="apple"))
    modseq = _modseq(backend, a1)
    documents = iter([_doc("e2", body="cherry"), _doc("e3", body="date")])
    assert backend.rebuild_search(a1, "Email", documents) == 2
    assert _search(backend, a1, "apple") == set()
    assert _search(backend, a1, "banana") == set()
    assert _search(backend, a1, "cherry") == {"e2"}
    assert _search(backend, a1, "date") == {"e3"}
    assert _search(backend, a1, "apple", type_name="Note") == {"n1"}
    assert _search(backend, a2, "apple") == {"e1"}
    assert _modseq(backend, a1) == modseq, "a rebuild changes no record"
    big = [_doc(f"m{i}", body=f"word{i} common") for i in range(1200)]
    assert backend.rebuild_search(a1, "Email", big) == 1200
    assert len(_search(backend, a1, "common")) == 1200
    assert _search(backend, a1, "word1199") == {"m1199"}
    assert backend.rebuild_search(a1, "Email", []) == 0
    assert _search(backend, a1, "common") == set()


_HOSTILE = [
    '"', "'", '""', "*", "-", ":", "^", "+", "(", ")", "NEAR(", "NEAR(a b)", "a OR b", "NOT a",
    "a AND", "{subject}: apple", "subject:apple", "body : apple", '"unbalanced apple', "apple\"",
    'app"le', "ap*ple", "\\", '\\"', "\x00", "apple\x00pie", "\ud800apple", "\u200b", "#@!$%&",
    "a" * 100_000, " ".join(["apple"] * 10_000), " ".join(f"w{i}" for i in range(1000)),
    '"' + "apple " * 5000 + '"', "\n\t\r", "ａｐｐｌｅ", "🍎 apple",
]


def test_search_hostile_queries_never_raise(backend: Backend) -> None:
    account = _account(backend)
    _index(backend, account, _doc("e1", subject="apple pie", body="a near or not"), _doc("e2"))
    for query in _HOSTILE:
        for field in (None, "subject", "body"):
            found = _search(backend, account, query, field)
            assert found <= {"e1", "e2"}, ascii(query[:40])
    assert _search(backend, account, '"unbalanced apple') == set()
    assert _search(backend, account, "apple\"") == {"e1"}
    assert _search(backend, account, "subject:apple") == set(), "the words subject, apple"
    assert _search(backend, account, "apple\x00pie") == {"e1"}
    assert _search(backend, account, "🍎 apple") == {"e1"}
    assert _search(backend, account, " ".join(["apple"] * 1000)) == {"e1"}
    too_many = " ".join(f"a{i}" for i in range(100))
    assert _search(backend, account, too_many) == set(), "more than MAX_TERMS terms"


def test_search_blank_query_matches_nothing(backend: Backend) -> None:
    """A query without any word matches nothing (not everything)."""
    account = _mail(backend)
    for query in ("", "   ", "\t\n", "-", "*", '""', "''", '" "', "- * :", "..."):
        assert _search(backend, account, query) == set(), repr(query)
        assert _search(backend, account, query, "subject") == set(), repr(query)


def test_updated_properties_from_puts(backend: Backend) -> None:
    """[core-5.2-response] a Put that names its changed properties is logged
    like a touch, so /changes can report updatedProperties."""
    account = _account(backend)
    base = _put(backend, account, "Mailbox", {"id": "m1", "n": 0}).modseq
    backend.commit(WriteBatch(account, puts=[Put("Mailbox", {"id": "m1", "n": 1}, False, ("n",))]))
    page = _changes(backend, account, "Mailbox", base)
    assert (page.updated, page.updated_properties) == (["m1"], ["n"])
    backend.commit(WriteBatch(account, puts=[Put("Mailbox", {"id": "m1", "n": 2}, False)]))
    assert _changes(backend, account, "Mailbox", base).updated_properties is None


__all__ = [name for name in dir() if name.startswith("test_")]
