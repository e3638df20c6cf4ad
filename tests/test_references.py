"""RFC 8620 §3.7 result references, through real requests."""

from __future__ import annotations

import pytest

from jmapcore.references import evaluate_pointer


def _notes(alice, titles):
    create = {f"n{i}": {"title": title} for i, title in enumerate(titles)}
    return alice.call("Note/set", {"accountId": alice.account_id, "create": create})["created"]


def test_query_then_get_by_reference(alice):
    """[core-3.7-hashArg] [core-3.7-jsonPointer] the classic /query → /get chain."""
    created = _notes(alice, ["b", "a", "c"])
    response = alice.request(
        [
            ["Note/query", {"accountId": alice.account_id, "sort": [{"property": "title"}]}, "q"],
            [
                "Note/get",
                {
                    "accountId": alice.account_id,
                    "#ids": {"resultOf": "q", "name": "Note/query", "path": "/ids"},
                    "properties": ["title"],
                },
                "g",
            ],
        ]
    )
    titles = [note["title"] for note in response["methodResponses"][1][1]["list"]]
    assert titles == ["a", "b", "c"]
    assert {note["id"] for note in response["methodResponses"][1][1]["list"]} == {c["id"] for c in created.values()}


def test_star_flattens_arrays(alice):
    """[core-3.7-star] `*` maps over arrays and splices array results."""
    _notes(alice, ["x", "y"])
    response = alice.request(
        [
            ["Note/get", {"accountId": alice.account_id, "properties": ["title"]}, "g"],
            ["Core/echo", {"#titles": {"resultOf": "g", "name": "Note/get", "path": "/list/*/title"}}, "e"],
        ]
    )
    assert sorted(response["methodResponses"][1][1]["titles"]) == ["x", "y"]
    document = {"a": [{"b": [1, 2]}, {"b": [3]}, {"b": 4}], "c~/d": 5}
    assert evaluate_pointer(document, "/a/*/b") == [1, 2, 3, 4]
    assert evaluate_pointer(document, "/c~0~1d") == 5
    assert evaluate_pointer(document, "/a/1/b/0") == 3


@pytest.mark.parametrize(
    ("reference", "why"),
    [
        ({"resultOf": "missing", "name": "Core/echo", "path": "/a"}, "no earlier response"),
        ({"resultOf": "e", "name": "Note/get", "path": "/a"}, "name differs"),
        ({"resultOf": "e", "name": "Core/echo", "path": "/nope"}, "missing member"),
        ({"resultOf": "e", "name": "Core/echo", "path": "a"}, "not a pointer"),
        ({"resultOf": "e", "name": "Core/echo", "path": "/a/5"}, "index out of range"),
        ({"resultOf": "e", "name": "Core/echo"}, "no path"),
        ("not an object", "not a reference"),
    ],
)
def test_bad_references_are_invalid_result_reference(alice, reference, why):
    """[core-3.7-failure] [core-3.7-resolveFirst]"""
    response = alice.request([["Core/echo", {"a": [1]}, "e"], ["Core/echo", {"#x": reference}, "r"]])
    name, args, call_id = response["methodResponses"][1]
    assert (name, args["type"], call_id) == ("error", "invalidResultReference", "r"), why


def test_both_forms_is_invalid_arguments(alice):
    """[core-3.7-bothForms]"""
    response = alice.request(
        [["Core/echo", {"a": 1}, "e"], ["Core/echo", {"x": 1, "#x": {"resultOf": "e", "name": "Core/echo", "path": "/a"}}, "r"]]
    )
    assert response["methodResponses"][1][1]["type"] == "invalidArguments"


def test_first_response_with_the_call_id_wins(alice):
    """[core-3.7-resolveFirst] duplicate call ids: the first one is used."""
    response = alice.request(
        [
            ["Core/echo", {"v": 1}, "dup"],
            ["Core/echo", {"v": 2}, "dup"],
            ["Core/echo", {"#v": {"resultOf": "dup", "name": "Core/echo", "path": "/v"}}, "r"],
        ]
    )
    assert response["methodResponses"][2][1] == {"v": 1}


def test_resolved_value_is_type_checked(alice):
    """A reference resolving to the wrong type is invalidArguments, not a crash."""
    response = alice.request(
        [
            ["Core/echo", {"ids": "not-a-list"}, "e"],
            ["Note/get", {"accountId": alice.account_id, "#ids": {"resultOf": "e", "name": "Core/echo", "path": "/ids"}}, "g"],
        ]
    )
    assert response["methodResponses"][1][1]["type"] == "invalidArguments"
