"""RFC 8620 §5.2 /changes, read from the change log."""

from __future__ import annotations


def _set(client, **arguments):
    return client.call("Note/set", {"accountId": client.account_id, **arguments})


def _changes(client, since, max_changes=None):
    return client.call("Note/changes", {"accountId": client.account_id, "sinceState": since, "maxChanges": max_changes})


def _state(client):
    return client.call("Note/get", {"accountId": client.account_id, "ids": []})["state"]


def test_coalescing(alice):
    """[core-5.2-coalesce] [core-5.2-response]"""
    keep = _set(alice, create={"k": {"title": "keep"}, "u": {"title": "upd"}, "d": {"title": "del"}})["created"]
    since = _state(alice)
    fresh = _set(alice, create={"f": {"title": "fresh"}, "gone": {"title": "gone"}})["created"]
    _set(alice, update={fresh["f"]["id"]: {"body": "x"}, keep["u"]["id"]: {"body": "y"}})
    _set(alice, destroy=[fresh["gone"]["id"], keep["d"]["id"]])
    result = _changes(alice, since)
    assert result["oldState"] == since and result["newState"] == _state(alice)
    assert result["created"] == [fresh["f"]["id"]]
    assert result["updated"] == [keep["u"]["id"]]
    assert result["destroyed"] == [keep["d"]["id"]]
    assert result["hasMoreChanges"] is False
    again = _changes(alice, result["newState"])
    assert (again["created"], again["updated"], again["destroyed"]) == ([], [], [])


def _replay(client, since, max_changes):
    """Follow intermediate states to the end; return all ids seen and the steps."""
    seen: dict[str, set[str]] = {"created": set(), "updated": set(), "destroyed": set()}
    steps = 0
    while True:
        page = _changes(client, since, max_changes)
        count = len(page["created"]) + len(page["updated"]) + len(page["destroyed"])
        assert count <= max_changes, "[core-5.2-maxChangesPositive] never more than maxChanges"
        for kind in seen:
            seen[kind] |= set(page[kind])
        since = page["newState"]
        steps += 1
        assert steps < 1000
        if not page["hasMoreChanges"]:
            return seen, steps, since


def test_paging_across_and_inside_one_large_change(alice):
    """[core-5.2-intermediate] one very large change can still be paged."""
    since = _state(alice)
    big = _set(alice, create={f"c{i}": {"title": f"n{i}"} for i in range(120)})["created"]
    small = _set(alice, create={"s": {"title": "small"}})["created"]
    seen, steps, final = _replay(alice, since, 50)
    assert seen["created"] == {c["id"] for c in big.values()} | {small["s"]["id"]}
    assert steps >= 3
    assert final == _state(alice)


def test_cannot_calculate_changes(alice):
    """[core-5.2-cannotCalculate] garbage, future, pruned and other-epoch states."""
    for bad in ("garbage", "s1-ffffff", "s9-0", ""):
        error = alice.error("Note/changes", {"accountId": alice.account_id, "sinceState": bad})
        assert error["type"] == "cannotCalculateChanges", bad
    old = _state(alice)
    _set(alice, create={"a": {"title": "x"}})
    _set(alice, create={"b": {"title": "y"}})
    backend = alice.core.backend
    with backend.snapshot(alice.account_id) as snap:
        current = snap.modseq()
    backend.prune_changes(alice.account_id, current)
    error = alice.error("Note/changes", {"accountId": alice.account_id, "sinceState": old})
    assert error["type"] == "cannotCalculateChanges"
    recent = _state(alice)
    assert _changes(alice, recent)["created"] == []
    backend.bump_epoch(alice.account_id)
    assert alice.error("Note/changes", {"accountId": alice.account_id, "sinceState": recent})["type"] == "cannotCalculateChanges"


def test_max_changes_must_be_positive(alice):
    """[core-5.2-maxChangesPositive]"""
    for bad in (0, -1):
        error = alice.error("Note/changes", {"accountId": alice.account_id, "sinceState": _state(alice), "maxChanges": bad})
        assert error["type"] == "invalidArguments"


def test_retention_prunes_only_what_is_older_than_30_days(alice):
    """[core-5.2-cannotCalculate] states from the last 30 days keep working;
    older ones (after housekeeping) are cannotCalculateChanges."""
    import time

    old = _state(alice)
    _set(alice, create={"a": {"title": "x"}})
    recent = _state(alice)
    alice.core.maintain(now=time.time())
    assert _changes(alice, old)["created"], "nothing is pruned within the retention period"
    alice.core.maintain(now=time.time() + 31 * 24 * 3600)
    assert alice.error("Note/changes", {"accountId": alice.account_id, "sinceState": old})["type"] == "cannotCalculateChanges"
    assert _changes(alice, recent)["created"] == [], "the current state still answers"
