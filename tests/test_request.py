"""RFC 8620 §3: requests, responses and the three error tiers, in-process."""

from __future__ import annotations

import msgspec
import pytest

from jmapcore.wire import CORE
from tests.conftest import NOTES


def test_echo_batch_and_session_state(alice):
    """[core-4-echo] [core-3.4-responseProps] [core-3.3-sequential]"""
    response = alice.request([["Core/echo", {"a": 1}, "x"], ["Core/echo", {"b": [True, None]}, "y"]])
    assert response["methodResponses"] == [["Core/echo", {"a": 1}, "x"], ["Core/echo", {"b": [True, None]}, "y"]]
    assert response["sessionState"] == alice.core.session_state(alice.principal)
    assert "createdIds" not in response


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"{not json", "notJSON"),
        (b"\xff\xfe{}", "notJSON"),
        (b'{"using": "x", "methodCalls": []}', "notRequest"),
        (b'{"methodCalls": []}', "notRequest"),
        (b'{"using": ["urn:ietf:params:jmap:core"], "methodCalls": [["Core/echo", {}]]}', "notRequest"),
        (b'{"using": ["urn:ietf:params:jmap:core"], "methodCalls": [["Core/echo", [], "c"]]}', "notRequest"),
        (b"[1, 2, 3]", "notRequest"),
        (b'{"using": [], "methodCalls": []}', "notRequest"),
        (b'{"using": ["urn:ietf:params:jmap:core", "urn:x:nope"], "methodCalls": []}', "unknownCapability"),
        (b'{"using": [], "methodCalls": [["Core/echo", {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b'}, "c"]]}', "notJSON"),
    ],
)
def test_request_level_errors(alice, body, kind):
    """[core-3.6.1-notJSON] [core-3.6.1-notRequest] [core-3.6.1-unknownCapability]
    [core-3.3-usingCore] [core-3.6.1-problemJson] [core-8.4-jsonParsing]"""
    status, problem = alice.raw(body)
    assert status == 400
    assert problem["type"] == f"urn:ietf:params:jmap:error:{kind}"
    assert problem["status"] == 400 and problem["detail"]


def test_wrong_content_type_is_not_json(alice):
    status, problem = alice.raw(b'{"using": [], "methodCalls": []}', content_type="text/plain")
    assert (status, problem["type"]) == (400, "urn:ietf:params:jmap:error:notJSON")


def test_limits_calls_and_size(alice):
    """[core-3.6.1-limit] the problem names the limit."""
    calls = [["Core/echo", {}, str(i)] for i in range(alice.core.limits.maxCallsInRequest + 1)]
    status, problem = alice.raw(msgspec.json.encode({"using": [CORE], "methodCalls": calls}))
    assert (status, problem["limit"]) == (400, "maxCallsInRequest")
    big = b'{"using": ["urn:ietf:params:jmap:core"], "methodCalls": [], "pad": "' + b"x" * alice.core.limits.maxSizeRequest + b'"}'
    status, problem = alice.raw(big)
    assert (status, problem["type"], problem["limit"]) == (400, "urn:ietf:params:jmap:error:limit", "maxSizeRequest")


def test_unknown_request_properties_are_ignored(alice):
    """[core-3.3-requestProps]"""
    status, body = alice.raw(b'{"using": ["urn:ietf:params:jmap:core"], "methodCalls": [], "extra": {"x": 1}}')
    assert status == 200 and body["methodResponses"] == []


def test_unknown_method_and_using_gating(alice):
    """[core-3.6.2-types] unknownMethod; [core-3.3-usingGating] a known method
    whose capability is missing from `using` is unknown too."""
    response = alice.request(
        [["Nope/get", {}, "a"], ["Note/get", {"accountId": alice.account_id}, "b"], ["Core/echo", {}, "c"]],
        using=[CORE],
    )
    kinds = [(name, args.get("type"), call) for name, args, call in response["methodResponses"]]
    assert kinds == [("error", "unknownMethod", "a"), ("error", "unknownMethod", "b"), ("Core/echo", None, "c")]


def test_invalid_arguments_names_the_argument(alice):
    """[core-3.9-strictArgs] [core-1.2-idSyntax]"""
    error = alice.error("Note/get", {"accountId": alice.account_id, "ids": [1]})
    assert error["type"] == "invalidArguments" and "$.ids[0]" in error["description"]
    error = alice.error("Note/get", {"accountId": alice.account_id, "bogus": 1})
    assert error["type"] == "invalidArguments" and "bogus" in error["description"]
    error = alice.error("Note/get", {})
    assert error["type"] == "invalidArguments" and "accountId" in error["description"]
    error = alice.error("Note/get", {"accountId": "bad id!"})
    assert error["type"] == "invalidArguments"


def test_account_errors(alice, bob):
    """[core-5-accountChecks] another user's account is not found."""
    assert alice.error("Note/get", {"accountId": bob.account_id})["type"] == "accountNotFound"
    assert alice.error("Note/get", {"accountId": "nosuch"})["type"] == "accountNotFound"


def test_account_not_supported_and_read_only(alice):
    """[core-2-accountCapabilities] [core-3.6.2-types] accountNotSupportedByMethod, accountReadOnly."""
    plugin = alice.core.registry.plugins[NOTES]
    shared = alice.principal.account_ids[1]
    original = plugin.account_capability
    plugin.account_capability = lambda account: None if account.account_id == shared else {}
    try:
        assert alice.error("Note/get", {"accountId": shared})["type"] == "accountNotSupportedByMethod"
        session = alice.core.session(alice.principal, "http://x")
        assert NOTES not in session["accounts"][shared]["accountCapabilities"]
    finally:
        plugin.account_capability = original
    directory = alice.core.backend.directory
    info = directory.get_account(shared)
    directory.delete_account(shared)
    directory.create_account(type(info)(info.account_id, info.name, info.owners, False, True))
    alice.core._accounts.clear()
    error = alice.error("Note/set", {"accountId": shared, "create": {"a": {"title": "t"}}})
    assert error["type"] == "accountReadOnly"
    assert alice.call("Note/get", {"accountId": shared})["list"] == []


def test_handler_crash_is_server_fail_for_that_call_only(alice, caplog):
    """[core-3.6.2-shape] a raising handler becomes serverFail; the batch goes on, HTTP 200."""
    from jmapcore.registry import Method

    def boom(ctx, args):
        raise RuntimeError("kaput")

    alice.core.registry.methods["Test/boom"] = Method("Test/boom", boom)
    status, body = alice.raw(
        msgspec.json.encode({"using": [CORE], "methodCalls": [["Test/boom", {}, "a"], ["Core/echo", {"ok": 1}, "b"]]})
    )
    assert status == 200
    assert body["methodResponses"][0][0] == "error" and body["methodResponses"][0][1]["type"] == "serverFail"
    assert "kaput" not in body["methodResponses"][0][1]["description"]
    assert body["methodResponses"][1] == ["Core/echo", {"ok": 1}, "b"]
    assert "kaput" in caplog.text


def test_created_ids_in_and_out(alice):
    """[core-3.3-createdIdsIn] seeded entries come back with the new ones;
    a seeded creation id can be referenced."""
    note = alice.call("Note/set", {"accountId": alice.account_id, "create": {"n": {"title": "t"}}})["created"]["n"]
    response = alice.request(
        [
            ["Note/set", {"accountId": alice.account_id, "create": {"child": {"title": "c", "parentId": "#seed"}}}, "0"],
            ["Note/get", {"accountId": alice.account_id, "ids": ["#child"], "properties": ["parentId"]}, "1"],
        ],
        created_ids={"seed": note["id"]},
    )
    child_id = response["methodResponses"][0][1]["created"]["child"]["id"]
    assert response["createdIds"] == {"seed": note["id"], "child": child_id}
    assert response["methodResponses"][1][1]["list"] == [{"id": child_id, "parentId": note["id"]}]


def test_max_concurrent_requests_is_enforced(alice):
    """[core-3.6.1-limit] [core-8.5-limits] the request over maxConcurrentRequests gets 429."""
    import threading

    from jmapcore.registry import Method

    release = threading.Event()
    entered = threading.Semaphore(0)

    def wait(ctx, args):
        entered.release()
        release.wait(timeout=10)
        return {}

    alice.core.registry.methods["Test/wait"] = Method("Test/wait", wait)
    body = msgspec.json.encode({"using": [CORE], "methodCalls": [["Test/wait", {}, "w"]]})
    limit = alice.core.limits.maxConcurrentRequests
    threads = [threading.Thread(target=alice.raw, args=(body,)) for _ in range(limit)]
    for thread in threads:
        thread.start()
    for _ in range(limit):
        assert entered.acquire(timeout=10)
    try:
        status, problem = alice.raw(msgspec.json.encode({"using": [CORE], "methodCalls": []}))
        assert (status, problem["limit"]) == (429, "maxConcurrentRequests")
    finally:
        release.set()
        for thread in threads:
            thread.join(timeout=10)
    assert alice.raw(msgspec.json.encode({"using": [CORE], "methodCalls": []}))[0] == 200
