"""RFC 8620 §5.1 /get and §5.3 /set on the example Note type."""

from __future__ import annotations

import pytest


def _set(client, **arguments):
    return client.call("Note/set", {"accountId": client.account_id, **arguments})


def _get(client, ids=None, properties=None):
    return client.call("Note/get", {"accountId": client.account_id, "ids": ids, "properties": properties})


def _stored(client, note_id):
    with client.core.backend.snapshot(client.account_id) as snap:
        return snap.get("Note", note_id)


def test_create_returns_server_set_and_defaults_and_is_stored(alice):
    """[core-5.3-response] created lists what the client did not send;
    [core-1.2-idAllocation] ids start with a letter."""
    result = _set(alice, create={"a": {"title": "Hello"}})
    created = result["created"]["a"]
    assert set(created) == {"id", "body", "isPinned", "parentId", "updated"}
    assert created["id"][0].isalpha() and not created["id"].isdigit()
    assert (created["body"], created["isPinned"]) == ("", False)
    assert result["oldState"] != result["newState"]
    assert result["updated"] is None and result["notCreated"] is None
    stored = _stored(alice, created["id"])
    assert stored["title"] == "Hello" and stored["updated"] == created["updated"]
    assert _get(alice)["state"] == result["newState"]


def test_get_properties_dedupe_and_not_found(alice):
    """[core-5.1-properties] [core-5.1-dedupe] [core-5.1-response]"""
    note_id = _set(alice, create={"a": {"title": "T", "body": "B"}})["created"]["a"]["id"]
    result = _get(alice, ids=[note_id, note_id, "Nmissing"], properties=["body"])
    assert result["list"] == [{"id": note_id, "body": "B"}]
    assert result["notFound"] == ["Nmissing"]
    assert _get(alice, ids=[])["list"] == [] and _get(alice, ids=[])["notFound"] == []
    error = alice.error("Note/get", {"accountId": alice.account_id, "properties": ["nope"]})
    assert error["type"] == "invalidArguments" and "nope" in error["description"]


def test_get_request_too_large(alice):
    """[core-5.1-requestTooLarge] [core-5.1-idsNull]"""
    limit = alice.core.limits.maxObjectsInGet
    error = alice.error("Note/get", {"accountId": alice.account_id, "ids": [f"N{i}" for i in range(limit + 1)]})
    assert error["type"] == "requestTooLarge"


def test_set_request_too_large(alice):
    """[core-5.3-requestTooLarge] create+update+destroy counted together."""
    limit = alice.core.limits.maxObjectsInSet
    error = alice.error(
        "Note/set",
        {"accountId": alice.account_id, "create": {f"c{i}": {"title": "t"} for i in range(limit)}, "destroy": ["Nx"]},
    )
    assert error["type"] == "requestTooLarge"
    assert _get(alice)["list"] == []


def test_invalid_creates(alice):
    """[core-5.3-createServerSet] [core-5.3-setErrorTypes] [core-5.3-continueOnError]"""
    result = _set(
        alice,
        create={
            "serverSet": {"title": "t", "updated": "2020-01-01T00:00:00Z"},
            "unknown": {"title": "t", "colour": "red"},
            "missing": {"body": "no title"},
            "badType": {"title": 5},
            "validator": {"title": "   "},
            "danglingRef": {"title": "t", "parentId": "Nnothere"},
            "ok": {"title": "fine"},
        },
    )
    errors = result["notCreated"]
    assert errors["serverSet"]["properties"] == ["updated"]
    assert errors["unknown"]["properties"] == ["colour"]
    assert errors["missing"]["properties"] == ["title"]
    assert errors["badType"]["properties"] == ["title"]
    assert errors["validator"]["properties"] == ["title"]
    assert errors["danglingRef"]["properties"] == ["parentId"]
    assert all(error["type"] == "invalidProperties" for error in errors.values())
    assert list(result["created"]) == ["ok"]
    assert [note["title"] for note in _get(alice)["list"]] == ["fine"]


def test_update_patch_semantics(alice):
    """[core-5.3-patchPointer] [core-5.3-patchNull] [core-5.3-patchServerSet]"""
    note = _set(alice, create={"a": {"title": "T", "body": "B", "isPinned": True}})["created"]["a"]
    note_id = note["id"]
    result = _set(alice, update={note_id: {"body": None, "title": "T2", "isPinned": None, "updated": note["updated"]}})
    assert result["updated"] == {note_id: None}
    stored = _stored(alice, note_id)
    assert (stored["title"], stored["body"], stored["isPinned"]) == ("T2", "", False)
    result = _set(
        alice,
        update={note_id: {"updated": "1999-01-01T00:00:00Z"}},
    )
    assert result["notUpdated"][note_id]["type"] == "invalidProperties"
    assert result["notUpdated"][note_id]["properties"] == ["updated"]
    for patch in ({"title/x": "y"}, {"nope": 1}, {"title": 7}):
        error = _set(alice, update={note_id: patch})["notUpdated"][note_id]
        assert error["type"] in ("invalidPatch", "invalidProperties"), patch
    assert _stored(alice, note_id)["title"] == "T2"


def test_patch_pointer_rules():
    """[core-5.3-patchPointer] into arrays, missing parents and prefixes are invalidPatch."""
    from jmapcore.errors import SetError
    from jmapcore.patch import apply_patch

    record = {"id": "x", "map": {"a": {"b": 1}}, "list": [1, 2]}
    assert apply_patch(record, {"map/a/c": 2}, {})["map"] == {"a": {"b": 1, "c": 2}}
    assert apply_patch(record, {"map/a": None}, {})["map"] == {}
    assert record["map"] == {"a": {"b": 1}}, "the stored record is never modified in place"
    assert apply_patch(record, {"map~1x": 1}, {})["map/x"] == 1
    for bad in ({"list/0": 5}, {"map/zz/b": 1}, {"map": {}, "map/a": 1}):
        result = apply_patch(record, bad, {})
        assert isinstance(result, SetError) and result.kind == "invalidPatch", bad


def test_not_found_will_destroy_and_destroy(alice):
    """[core-5.3-notFound] [core-5.3-willDestroy]"""
    note_id = _set(alice, create={"a": {"title": "T"}})["created"]["a"]["id"]
    result = _set(alice, update={note_id: {"title": "x"}, "Nghost": {"title": "y"}}, destroy=[note_id, "Nghost"])
    assert result["notUpdated"][note_id]["type"] == "willDestroy"
    assert result["notUpdated"]["Nghost"]["type"] == "notFound"
    assert result["destroyed"] == [note_id]
    assert result["notDestroyed"]["Nghost"]["type"] == "notFound"
    assert _stored(alice, note_id) is None
    assert _set(alice, destroy=[note_id])["notDestroyed"][note_id]["type"] == "notFound"


def test_if_in_state(alice):
    """[core-5.3-ifInState] a stale state fails the whole call, nothing applied."""
    state = _get(alice)["state"]
    _set(alice, create={"a": {"title": "first"}}, ifInState=state)
    error = alice.error("Note/set", {"accountId": alice.account_id, "ifInState": state, "create": {"b": {"title": "x"}}})
    assert error["type"] == "stateMismatch"
    assert [n["title"] for n in _get(alice)["list"]] == ["first"]


def test_creation_references_in_dependency_order(alice):
    """[core-5.3-selfTypeOrder] [core-5.3-creationRef] [core-5.3-creationKeys] [core-5.3-creationMap]"""
    response = alice.request(
        [
            [
                "Note/set",
                {
                    "accountId": alice.account_id,
                    "create": {
                        "grandchild": {"title": "g", "parentId": "#child"},
                        "child": {"title": "c", "parentId": "#root"},
                        "root": {"title": "r"},
                        "loop1": {"title": "l1", "parentId": "#loop2"},
                        "loop2": {"title": "l2", "parentId": "#loop1"},
                    },
                },
                "0",
            ],
            ["Note/set", {"accountId": alice.account_id, "update": {"#child": {"body": "edited"}}, "destroy": ["#grandchild"]}, "1"],
        ]
    )
    first = response["methodResponses"][0][1]
    ids = {cid: first["created"][cid]["id"] for cid in ("root", "child", "grandchild")}
    assert set(first["notCreated"]) == {"loop1", "loop2"}
    assert _stored(alice, ids["child"])["parentId"] == ids["root"]
    assert _stored(alice, ids["grandchild"]) is None
    second = response["methodResponses"][1][1]
    assert second["updated"] == {ids["child"]: None} and second["destroyed"] == [ids["grandchild"]]
    assert _stored(alice, ids["child"])["body"] == "edited"


def test_unknown_creation_reference(alice):
    result = _set(alice, update={"#nope": {"title": "x"}}, destroy=["#nope"])
    assert result["notUpdated"]["#nope"]["type"] == "notFound"
    assert result["notDestroyed"]["#nope"]["type"] == "notFound"


@pytest.mark.parametrize("count", [1, 40])
def test_state_only_changes_with_data(alice, count):
    """[core-5.1-response] the state changes when data changes, and only then."""
    state = _get(alice)["state"]
    assert _get(alice)["state"] == state
    _set(alice, create={f"c{i}": {"title": "t"} for i in range(count)})
    assert _get(alice)["state"] != state
    state = _get(alice)["state"]
    _set(alice, destroy=["Nnothing"])
    assert _get(alice)["state"] == state
