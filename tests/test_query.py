"""RFC 8620 §5.5 /query and §5.6 /queryChanges, checked against a brute-force model."""

from __future__ import annotations

import random

import pytest

from jmapcore.testing.querychanges import splice


def _set(client, **arguments):
    return client.call("Note/set", {"accountId": client.account_id, **arguments})


def _query(client, **arguments):
    return client.call("Note/query", {"accountId": client.account_id, **arguments})


@pytest.fixture
def notes(alice):
    titles = ["banana", "Apple", "cherry", "apple", "Éclair", "date", "10 figs", "9 kiwis"]
    created = _set(alice, create={f"c{i}": {"title": t, "isPinned": i % 2 == 0, "body": f"b{i}"} for i, t in enumerate(titles)})
    return {title: created["created"][f"c{i}"]["id"] for i, title in enumerate(titles)}


def test_sort_collations(alice, notes):
    """[core-5.5-comparator] [core-5.5-collation] [core-5.5-stableSort]"""
    ids = _query(alice, sort=[{"property": "title"}])["ids"]
    by_id = {v: k for k, v in notes.items()}
    titles = [by_id[i] for i in ids]
    assert titles[:2] in (["10 figs", "9 kiwis"],)
    assert [t.casefold() for t in titles[2:4]] == ["apple", "apple"]
    # i;unicode-casemap: "Éclair" sorts with the e's, after "date".
    assert titles[-2:] == ["date", "Éclair"]
    numeric = [by_id[i] for i in _query(alice, sort=[{"property": "title", "collation": "i;ascii-numeric"}])["ids"]]
    assert numeric[:2] == ["9 kiwis", "10 figs"]
    desc = _query(alice, sort=[{"property": "title", "isAscending": False}])["ids"]
    assert desc == list(reversed(ids))
    assert _query(alice, sort=[{"property": "title"}])["ids"] == ids


def test_filters(alice, notes):
    """[core-5.5-filterOperator]"""
    pinned = set(_query(alice, filter={"isPinned": True})["ids"])
    assert pinned == {notes[t] for t in ["banana", "cherry", "Éclair", "10 figs"]}
    unpinned = set(_query(alice, filter={"operator": "NOT", "conditions": [{"isPinned": True}]})["ids"])
    assert unpinned == set(notes.values()) - pinned
    either = _query(alice, filter={"operator": "OR", "conditions": [{"text": "apple"}, {"text": "kiwi"}]})["ids"]
    assert set(either) == {notes["Apple"], notes["apple"], notes["9 kiwis"]}
    both = _query(alice, filter={"operator": "AND", "conditions": [{"text": "apple"}, {"isPinned": False}]})["ids"]
    assert set(both) == {notes["Apple"], notes["apple"]}
    pinned_apple = _query(alice, filter={"operator": "AND", "conditions": [{"text": "apple"}, {"isPinned": True}]})
    assert pinned_apple["ids"] == []


def test_paging_anchor_total(alice, notes):
    """[core-5.5-position] [core-5.5-anchor] [core-5.5-limit] [core-5.5-response]"""
    every = _query(alice, sort=[{"property": "title"}])["ids"]
    page = _query(alice, sort=[{"property": "title"}], position=2, limit=3, calculateTotal=True)
    assert (page["ids"], page["position"], page["total"]) == (every[2:5], 2, len(every))
    assert "limit" not in page
    tail = _query(alice, sort=[{"property": "title"}], position=-2)
    assert (tail["ids"], tail["position"]) == (every[-2:], len(every) - 2)
    assert _query(alice, position=-100)["position"] == 0
    assert _query(alice, position=100)["ids"] == []
    anchored = _query(alice, sort=[{"property": "title"}], anchor=every[4], anchorOffset=-1, limit=2)
    assert (anchored["ids"], anchored["position"]) == (every[3:5], 3)
    assert _query(alice, sort=[{"property": "title"}], anchor=every[1], anchorOffset=-5)["position"] == 0
    assert "total" not in _query(alice)


def test_query_errors(alice, notes):
    """[core-5.5-errors] [core-5.5-limit]"""
    cases = [
        ({"filter": {"colour": "red"}}, "unsupportedFilter"),
        ({"filter": {"isPinned": "yes"}}, "invalidArguments"),
        ({"filter": {"operator": "XOR", "conditions": []}}, "invalidArguments"),
        ({"filter": {"operator": "AND"}}, "invalidArguments"),
        ({"sort": [{"property": "colour"}]}, "unsupportedSort"),
        ({"sort": [{"property": "title", "collation": "i;klingon"}]}, "unsupportedSort"),
        ({"sort": [{"isAscending": True}]}, "invalidArguments"),
        ({"anchor": "Nnotthere"}, "anchorNotFound"),
        ({"limit": -1}, "invalidArguments"),
    ]
    for arguments, kind in cases:
        error = alice.error("Note/query", {"accountId": alice.account_id, **arguments})
        assert error["type"] == kind, arguments


SORTS = [
    None,
    [{"property": "title"}],
    [{"property": "title", "isAscending": False}],
    [{"property": "isPinned"}, {"property": "title", "isAscending": False}],
    [{"property": "updated", "isAscending": False}],
]
FILTERS = [None, {"isPinned": True}, {"text": "a"}, {"operator": "NOT", "conditions": [{"text": "b"}]}]




@pytest.mark.parametrize("seed", range(3))
def test_query_changes_against_brute_force(alice, seed):
    """[core-5.6-removed] [core-5.6-added] [core-5.6-spliceModel] after random
    creates, updates and destroys, splicing the response into the old results
    gives exactly the new results, for every filter and sort."""
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "abc", "bob", "Alpha"]
    _set(alice, create={f"c{i}": {"title": rng.choice(words), "isPinned": rng.random() < 0.5} for i in range(12)})
    before = {
        (str(f), str(s)): _query(alice, filter=f, sort=s) for f in FILTERS for s in SORTS
    }
    ids = _query(alice)["ids"]
    _set(
        alice,
        create={f"n{i}": {"title": rng.choice(words), "isPinned": rng.random() < 0.5} for i in range(4)},
        update={i: {"title": rng.choice(words)} for i in rng.sample(ids, 3)}
        | {i: {"isPinned": rng.random() < 0.5} for i in rng.sample(ids, 2)},
        destroy=rng.sample(ids, 2),
    )
    _set(alice, update={i: {"body": "touched"} for i in rng.sample(ids, 2)})
    for f in FILTERS:
        for s in SORTS:
            old = before[(str(f), str(s))]
            new = _query(alice, filter=f, sort=s, calculateTotal=True)
            changes = alice.call(
                "Note/queryChanges",
                {"accountId": alice.account_id, "filter": f, "sort": s, "sinceQueryState": old["queryState"], "calculateTotal": True},
            )
            assert changes["newQueryState"] == new["queryState"]
            assert changes["total"] == new["total"]
            assert [a["index"] for a in changes["added"]] == sorted(a["index"] for a in changes["added"])
            assert splice(old["ids"], changes["removed"], changes["added"], new["total"]) == new["ids"], (f, s)


def test_query_changes_up_to_id_and_errors(alice, notes):
    """[core-5.6-upToId] [core-5.6-errors]"""
    sort = [{"property": "title"}]
    old = _query(alice, sort=sort)
    _set(alice, create={"a": {"title": "aaa first"}, "z": {"title": "zzz last"}})
    new = _query(alice, sort=sort)["ids"]
    limited = alice.call(
        "Note/queryChanges",
        {"accountId": alice.account_id, "sort": sort, "sinceQueryState": old["queryState"], "upToId": new[3]},
    )
    assert [a["index"] for a in limited["added"]] == [new.index(limited["added"][0]["id"])] and limited["added"][0]["index"] <= 3
    error = alice.error(
        "Note/queryChanges", {"accountId": alice.account_id, "sort": sort, "sinceQueryState": old["queryState"], "maxChanges": 1}
    )
    assert error["type"] == "tooManyChanges"
    error = alice.error("Note/queryChanges", {"accountId": alice.account_id, "sinceQueryState": "bogus"})
    assert error["type"] == "cannotCalculateChanges"
    unchanged = alice.call("Note/queryChanges", {"accountId": alice.account_id, "sort": sort, "sinceQueryState": _query(alice, sort=sort)["queryState"]})
    assert (unchanged["removed"], unchanged["added"]) == ([], [])
