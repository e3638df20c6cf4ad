"""Property-based: malformed arguments to the methods of issue 6 (Identity,
EmailSubmission, VacationResponse, Quota, Blob, MDN) always get a JMAP
error, never serverFail or a 5xx ([core-3.6.2-shape], [core-3.6.2-types])."""

from __future__ import annotations

import base64
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jmap_quota.admin import set_quota

from jmapcore import Core
from jmapcore.accounts import add_account, principal_for
from jmapcore.registry import Registry
from jmapcore.testing.client import Client
from jmapcore.testing.memory import MemoryBackend
from jmapcore.wire import CORE
from tests.test_fuzz import json_values

MAIL = "urn:ietf:params:jmap:mail"
SUBMISSION = "urn:ietf:params:jmap:submission"
VACATION = "urn:ietf:params:jmap:vacationresponse"
QUOTA = "urn:ietf:params:jmap:quota"
BLOB = "urn:ietf:params:jmap:blob"
MDN = "urn:ietf:params:jmap:mdn"
USING = [CORE, MAIL, SUBMISSION, VACATION, QUOTA, BLOB, MDN]
ALICE = "alice@example.com"

PROPERTIES = {
    "Identity": ["name", "email", "replyTo", "bcc", "textSignature", "htmlSignature", "mayDelete", "id"],
    "EmailSubmission": ["identityId", "emailId", "envelope", "undoStatus", "sendAt", "threadId", "deliveryStatus",
                        "id", "dsnBlobIds"],
    "VacationResponse": ["isEnabled", "fromDate", "toDate", "subject", "textBody", "htmlBody", "id"],
    "Blob": ["data", "type"],
    "MDN": ["forEmailId", "subject", "textBody", "reportingUA", "includeOriginalMessage", "disposition",
            "finalRecipient", "extensionFields", "mdnGateway", "error"],
}
METHODS = {
    "Identity/get": [], "Identity/changes": [], "Identity/set": ["Identity"],
    "EmailSubmission/get": [], "EmailSubmission/changes": [], "EmailSubmission/query": [],
    "EmailSubmission/queryChanges": [], "EmailSubmission/set": ["EmailSubmission"],
    "VacationResponse/get": [], "VacationResponse/set": ["VacationResponse"],
    "Quota/get": [], "Quota/changes": [], "Quota/query": [], "Quota/queryChanges": [],
    "Blob/upload": ["Blob"], "Blob/get": [], "Blob/lookup": [],
    "MDN/send": ["MDN"], "MDN/parse": [],
}
COMMON_ARGS = ["ids", "properties", "sinceState", "maxChanges", "ifInState", "filter", "sort", "position",
               "anchor", "anchorOffset", "limit", "calculateTotal", "sinceQueryState", "upToId", "offset",
               "length", "typeNames", "blobIds", "identityId", "onSuccessUpdateEmail", "onSuccessDestroyEmail",
               "destroy"]


@pytest.fixture(scope="module")
def world() -> dict[str, Any]:
    core = Core(MemoryBackend(), Registry.from_entry_points())
    add_account(core, "alice", "alice-pw", (ALICE,))
    principal = principal_for(core, "alice")
    client = Client(core, principal, using=USING)
    account = client.account_id
    boxes = {m["role"]: m["id"] for m in client.call("Mailbox/get", {"accountId": account})["list"]}
    identity = client.call("Identity/get", {"accountId": account})["list"][0]["id"]
    raw = (b"From: carol@example.net\r\nTo: alice@example.com\r\nSubject: asks\r\n"
           b"Disposition-Notification-To: carol@example.net\r\nMessage-ID: <f@x>\r\n\r\nhi\r\n")
    uploaded = client.call("Blob/upload", {"accountId": account, "create": {"b": {"data": [
        {"data:asText": raw.decode()}]}}})["created"]["b"]["id"]
    email = client.call("Email/import", {"accountId": account, "emails": {"e": {
        "blobId": uploaded, "mailboxIds": {boxes["inbox"]: True}}}})["created"]["e"]["id"]
    draft = client.call("Email/set", {"accountId": account, "create": {"d": {
        "mailboxIds": {boxes["drafts"]: True}, "from": [{"email": ALICE}], "to": [{"email": "bob@example.org"}],
        "subject": "draft", "textBody": [{"partId": "1", "type": "text/plain"}],
        "bodyValues": {"1": {"value": "hello"}}}}})["created"]["d"]["id"]
    set_quota(core, account, 10_000_000)
    states = {type_name: client.call(f"{type_name}/get", {"accountId": account, "ids": []})["state"]
              for type_name in ("Identity", "EmailSubmission", "Quota")}
    return {"core": core, "principal": principal, "account": account, "identity": identity,
            "email": email, "draft": draft, "blob": uploaded, "drafts": boxes["drafts"], "states": states}


def _values(world: dict[str, Any]) -> st.SearchStrategy[Any]:
    known = st.sampled_from([world["account"], world["identity"], world["email"], world["blob"],
                             world["drafts"], world["draft"], "singleton", "storage", ALICE, "#x", 2**53, -1, 10**30,
                             "x" * 5000, {"email": ALICE}, [{"email": ALICE, "parameters": {"HOLDFOR": "9"}}],
                             {"mailFrom": {"email": ALICE}, "rcptTo": [{"email": "b@c"}]},
                             {"data:asText": "a"}, {"blobId": world["blob"], "offset": 2**40}])
    return json_values | known


def _objects(world: dict[str, Any], type_name: str) -> st.SearchStrategy[Any]:
    obj = st.dictionaries(st.sampled_from(PROPERTIES[type_name] + ["keywords/$draft", "x"]), _values(world),
                          max_size=5)
    return st.dictionaries(st.sampled_from(["x", "y", world["identity"], "singleton", world["email"]]),
                           obj | _values(world), max_size=2)


def _bases(world: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Valid arguments for each method, which the test then breaks."""
    identity, email, blob = world["identity"], world["email"], world["blob"]
    envelope = {"mailFrom": {"email": ALICE, "parameters": {"HOLDFOR": "60"}},
                "rcptTo": [{"email": "bob@example.org", "parameters": None}]}
    disposition = {"actionMode": "manual-action", "sendingMode": "mdn-sent-manually", "type": "displayed"}
    return {
        "Identity/get": {"ids": [identity], "properties": ["email", "name"]},
        "Identity/changes": {"sinceState": world["states"]["Identity"], "maxChanges": 5},
        "Identity/set": {"create": {"x": {"name": "W", "email": ALICE, "replyTo": [{"email": "r@example.com"}],
                                          "bcc": None, "textSignature": "s", "htmlSignature": "<b>h</b>"}},
                         "update": {identity: {"name": "N", "bcc": [{"name": "n", "email": "b@example.com"}]}},
                         "ifInState": world["states"]["Identity"]},
        "EmailSubmission/get": {"ids": None, "properties": ["undoStatus", "deliveryStatus"]},
        "EmailSubmission/changes": {"sinceState": world["states"]["EmailSubmission"], "maxChanges": 5},
        "EmailSubmission/query": {"filter": {"identityIds": [identity], "emailIds": [email], "undoStatus": "pending",
                                             "before": "2030-01-01T00:00:00Z", "after": "2020-01-01T00:00:00Z"},
                                  "sort": [{"property": "sendAt", "isAscending": False}], "position": 0, "limit": 5,
                                  "calculateTotal": True},
        "EmailSubmission/queryChanges": {"sinceQueryState": world["states"]["EmailSubmission"],
                                         "filter": {"undoStatus": "final"}, "sort": [{"property": "emailId"}],
                                         "maxChanges": 5, "upToId": email},
        "EmailSubmission/set": {"create": {"x": {"identityId": identity, "emailId": world["draft"],
                                                 "envelope": envelope}},
                                "update": {"S0": {"undoStatus": "canceled"}},
                                "onSuccessUpdateEmail": {"#x": {"keywords/$seen": True}},
                                "onSuccessDestroyEmail": ["#x"]},
        "VacationResponse/get": {"ids": ["singleton"], "properties": ["isEnabled"]},
        "VacationResponse/set": {"update": {"singleton": {"isEnabled": False, "fromDate": "2026-01-01T00:00:00Z",
                                                          "toDate": None, "subject": "s", "textBody": "t",
                                                          "htmlBody": "<p>h</p>"}}},
        "Quota/get": {"ids": ["storage"], "properties": ["used", "hardLimit"]},
        "Quota/changes": {"sinceState": world["states"]["Quota"], "maxChanges": 5},
        "Quota/query": {"filter": {"name": "Mail", "scope": "account", "resourceType": "octets", "type": "Email"},
                        "sort": [{"property": "used"}, {"property": "name"}], "position": 0, "limit": 5},
        "Quota/queryChanges": {"sinceQueryState": world["states"]["Quota"], "sort": [{"property": "name"}]},
        "Blob/upload": {"create": {"x": {"type": "text/plain", "data": [
            {"data:asText": "a"}, {"data:asBase64": "YQ=="}, {"blobId": blob, "offset": 1, "length": 3}]}}},
        "Blob/get": {"ids": [blob], "offset": 1, "length": 5,
                     "properties": ["data", "data:asBase64", "digest:sha-256", "digest:sha", "size"]},
        "Blob/lookup": {"typeNames": ["Email", "Mailbox", "Thread"], "ids": [blob]},
        "MDN/send": {"identityId": identity, "send": {"k": {"forEmailId": email, "disposition": disposition,
                                                            "includeOriginalMessage": True,
                                                            "extensionFields": {"X-A": "b"}}},
                     "onSuccessUpdateEmail": {"#k": {"keywords/$mdnsent": True}}},
        "MDN/parse": {"blobIds": [blob]},
    }


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _break(arguments: Any, path: tuple[Any, ...], replacement: Any, delete: bool) -> None:
    parent = arguments
    for step in path[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement


@st.composite
def calls(draw: Any, world: dict[str, Any]) -> list[Any]:
    """One method call: a valid one with up to three values replaced,
    removed, or an unknown argument added; or arguments made at random."""
    name = draw(st.sampled_from(sorted(METHODS)))
    if draw(st.integers(0, 9)) == 0:
        args: dict[str, Any] = {"accountId": world["account"]}
        for arg in draw(st.lists(st.sampled_from(COMMON_ARGS), max_size=4, unique=True)):
            args[arg] = draw(_values(world))
        for type_name in METHODS[name]:
            key = {"Blob": "create", "MDN": "send"}.get(type_name, draw(st.sampled_from(["create", "update"])))
            args[key] = draw(_objects(world, type_name))
        return [name, args, "c0"]
    args = {"accountId": world["account"], **msgspec.json.decode(msgspec.json.encode(_bases(world)[name]))}
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(args)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        _break(args, path, draw(_values(world)), draw(st.integers(0, 4)) == 0)
    if draw(st.integers(0, 9)) == 0:
        args[draw(st.sampled_from(COMMON_ARGS + ["junk"]))] = draw(_values(world))
    return [name, args, "c0"]


def _check(world: dict[str, Any], body: bytes) -> None:
    result = world["core"].api(world["principal"], body, "application/json")
    assert result.status < 500, result
    decoded = msgspec.json.decode(result.body)
    if result.status == 200:
        for name, args, _ in decoded["methodResponses"]:
            assert not (name == "error" and args["type"] == "serverFail"), (body, args)
            for errors in ("notCreated", "notUpdated", "notDestroyed", "notSent"):
                for error in (args.get(errors) or {}).values():
                    assert error["type"] != "serverFail", (body, args)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_malformed_arguments_to_the_new_methods(world: dict[str, Any], data: Any) -> None:
    batch = data.draw(st.lists(calls(world), min_size=1, max_size=3))
    for index, call in enumerate(batch):
        call[2] = f"c{index}"
    _check(world, msgspec.json.encode({"using": USING, "methodCalls": batch}))


_PIECES = st.sampled_from([b"<a@b>", b"\xff\xfe", b"=?utf-8?q?=C3?=", b"<<>>", b" ", b"\t", b"\r\n ", b"caf\xc3\xa9",
                           b"(comment", b'"', b"@", b"<", b">", b"x" * 90, b";", b",", ALICE.encode(),
                           b"Alice <alice@example.com>", b"bob@example.org", b":", b"\\"])
_FIELDS = [b"From", b"Sender", b"To", b"Cc", b"Bcc", b"Message-ID", b"Subject", b"Disposition-Notification-To",
           b"Reply-To", b"Date", b"Original-Recipient"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.lists(st.tuples(st.sampled_from(_FIELDS), st.lists(_PIECES, max_size=4).map(b"".join)), max_size=10))
def test_malformed_drafts_submitted_and_answered(world: dict[str, Any], fields: list[tuple[bytes, bytes]]) -> None:
    """[mail-7.5-errors] [mdn-2.1-errors] a draft whose header fields are
    junk (8-bit octets, broken encoded-words, unbalanced brackets) gets a
    SetError from EmailSubmission/set and MDN/send, never serverFail, and
    the response is valid JSON (an undecodable octet once reached a
    forbiddenFrom description as a lone surrogate, and encoding failed)."""
    raw = b"".join(name + b": " + value + b"\r\n" for name, value in fields) + b"\r\nbody\r\n"
    client = Client(world["core"], world["principal"], using=USING)
    account = world["account"]
    blob = client.call("Blob/upload", {"accountId": account, "create": {"b": {"data": [
        {"data:asBase64": base64.b64encode(raw).decode()}]}}})["created"]["b"]["id"]
    imported = client.call("Email/import", {"accountId": account, "emails": {"e": {
        "blobId": blob, "mailboxIds": {world["drafts"]: True}, "keywords": {"$draft": True}}}})
    email = (imported["created"] or {}).get("e", {}).get("id", "Enope")
    disposition = {"actionMode": "manual-action", "sendingMode": "mdn-sent-manually", "type": "displayed"}
    _check(world, msgspec.json.encode({"using": USING, "methodCalls": [
        ["EmailSubmission/set", {"accountId": account, "create": {"s": {
            "identityId": world["identity"], "emailId": email}}}, "0"],
        ["MDN/send", {"accountId": account, "identityId": world["identity"],
                      "send": {"k": {"forEmailId": email, "disposition": disposition}},
                      "onSuccessUpdateEmail": {"#k": {"keywords/$mdnsent": True}}}, "1"],
        ["MDN/parse", {"accountId": account, "blobIds": [blob]}, "2"],
        ["Blob/lookup", {"accountId": account, "typeNames": ["Email"], "ids": [blob]}, "3"],
    ]}))
