"""Identity and EmailSubmission (RFC 8621 §6, §7): the methods in-process
(with the outbound queue's sender driven by hand, a fake transport and a
fake clock), then a real 2-worker server relaying to a real SMTP server
(aiosmtpd) on 127.0.0.1: envelope and octets, the Drafts→Sent move, a 4xx
then success, a 5xx, a canceled delayed send, and a restart."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from jmap_submission import outbound, submission
from jmap_submission.constants import MAX_DELAYED_SEND
from jmap_submission.outbound import Outgoing, Reply, Sender, enqueue, pending_messages

from jmapcore.accounts import add_account, principal_for, set_addresses
from jmapcore.api import Core
from jmapcore.registry import Registry
from jmapcore.testing.client import Client
from jmapcore.testing.memory import MemoryBackend
from tests.support import Running, free_port, jmapcore, serving_alice, start, stop

CORE_URI = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
SUBMISSION = "urn:ietf:params:jmap:submission"
USING = [CORE_URI, MAIL, SUBMISSION]
ALICE = "alice@example.com"


# -- in-process helpers -------------------------------------------------------------------


def make_core(options: dict[str, Any] | None = None, addresses: tuple[str, ...] = (ALICE,)) -> Core:
    core = Core(MemoryBackend(), Registry.from_entry_points(), options=options)
    add_account(core, "alice", "alice-pw", addresses)
    return core


def client_of(core: Core, name: str = "alice") -> Client:
    return Client(core, principal_for(core, name), using=[MAIL, SUBMISSION])


def roles(client: Client) -> dict[str, str]:
    listed = client.call("Mailbox/get", {"accountId": client.account_id})["list"]
    return {m["role"]: m["id"] for m in listed}


def own_identity(client: Client) -> str:
    listed = client.call("Identity/get", {"accountId": client.account_id})["list"]
    return next(i["id"] for i in listed if i["email"] == ALICE and not i["mayDelete"])


def draft(client: Client, **headers: Any) -> dict[str, Any]:
    """An Email/set create of a draft in Drafts (override any property)."""
    values = {
        "mailboxIds": {roles(client)["drafts"]: True},
        "keywords": {"$draft": True, "$seen": True},
        "from": [{"name": "Alice", "email": ALICE}],
        "to": [{"email": "bob@example.org"}],
        "subject": "Hello",
        "textBody": [{"partId": "1", "type": "text/plain"}],
        "bodyValues": {"1": {"value": "Hi Bob"}},
    }
    values.update(headers)
    return {name: value for name, value in values.items() if value is not None}


def create_email(client: Client, **headers: Any) -> str:
    answer = client.call("Email/set", {"accountId": client.account_id, "create": {"d": draft(client, **headers)}})
    assert answer["notCreated"] is None, answer
    return answer["created"]["d"]["id"]


def submit(client: Client, email_id: str, **extra: Any) -> dict[str, Any]:
    values = {"identityId": own_identity(client), "emailId": email_id, **extra}
    return client.call("EmailSubmission/set", {"accountId": client.account_id, "create": {"s": values}})


def refused(client: Client, **headers: Any) -> dict[str, Any]:
    """The SetError of submitting a draft with these properties."""
    extra = headers.pop("submission", {})
    answer = submit(client, create_email(client, **headers), **extra)
    assert answer["created"] is None, answer
    return answer["notCreated"]["s"]


class FakeTransport:
    """Records what would be sent and answers from a script."""

    def __init__(self, *answers: dict[str, Reply] | Reply) -> None:
        self.answers = list(answers)
        self.sent: list[Outgoing] = []

    def __call__(self, messages: Any) -> list[dict[str, Reply]]:
        results = []
        for message in messages:
            self.sent.append(message)
            answer = self.answers.pop(0) if self.answers else Reply(250, "2.0.0 Ok")
            results.append(answer if isinstance(answer, dict) else {r: answer for r in message.recipients})
        return results


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


RELAY = {"submission": {"relay": "127.0.0.1:9"}}


def sender(core: Core, transport: FakeTransport, clock: Clock | None = None) -> Sender:
    return Sender(core, transport=transport, clock=clock or time.time)


# -- capabilities -------------------------------------------------------------------------


def test_capability_only_on_accounts_that_may_send() -> None:
    """[mail-1.3.2-submissionCap] [mail-1.4-perAccount]"""
    core = make_core()
    add_account(core, "reader", "pw")  # no address: cannot send
    session = core.session(principal_for(core, "alice"), "http://x")
    assert session["capabilities"][SUBMISSION] == {}
    account = session["accounts"][principal_for(core, "alice").account_ids[0]]
    cap = account["accountCapabilities"][SUBMISSION]
    assert cap["maxDelayedSend"] == MAX_DELAYED_SEND > 0
    assert cap["submissionExtensions"]["FUTURERELEASE"] == [str(MAX_DELAYED_SEND)]
    assert not {"PIPELINING", "CHUNKING", "STARTTLS"} & set(cap["submissionExtensions"])
    reader = core.session(principal_for(core, "reader"), "http://x")
    assert SUBMISSION not in next(iter(reader["accounts"].values()))["accountCapabilities"]
    error = client_of(core, "reader").error("Identity/get", {"accountId": principal_for(core, "reader").account_ids[0]})
    assert error["type"] == "accountNotSupportedByMethod"


# -- Identity -----------------------------------------------------------------------------


def test_identity_per_address_made_with_the_account_and_on_demand() -> None:
    """[mail-6-props] [mail-6-methods]"""
    core = make_core(addresses=(ALICE, "al@example.net"))
    client = client_of(core)
    got = client.call("Identity/get", {"accountId": client.account_id, "ids": None})
    assert sorted(i["email"] for i in got["list"]) == ["al@example.net", ALICE]
    first = got["list"][0]
    assert set(first) == {"id", "name", "email", "replyTo", "bcc", "textSignature", "htmlSignature", "mayDelete"}
    assert first["mayDelete"] is False and first["replyTo"] is None and first["textSignature"] == ""
    set_addresses(core, "alice", [ALICE, "al@example.net", "new@example.org"])
    core._accounts.clear()  # the account cache: an admin change shows within 5 s
    changes = client.call("Identity/changes", {"accountId": client.account_id, "sinceState": got["state"]})
    assert len(changes["created"]) == 1
    again = client.call("Identity/get", {"accountId": client.account_id, "ids": changes["created"]})
    assert again["list"][0]["email"] == "new@example.org"


def test_identity_set_create_update_destroy() -> None:
    """[mail-6-props] [mail-6-mayDelete] [mail-6.3-forbiddenFrom]"""
    core = make_core()
    client = client_of(core)
    account = client.account_id
    answer = client.call("Identity/set", {"accountId": account, "create": {
        "work": {"name": "Alice at work", "email": ALICE, "replyTo": [{"name": "Desk", "email": "desk@example.com"}],
                 "bcc": [{"email": "archive@example.com"}], "textSignature": "-- \nAlice", "htmlSignature": "<b>Alice</b>"},
        "evil": {"email": "boss@example.com"},
        "noemail": {"name": "x"},
    }})
    assert answer["notCreated"]["evil"]["type"] == "forbiddenFrom"
    assert answer["notCreated"]["noemail"]["type"] == "invalidProperties"
    work = answer["created"]["work"]
    assert work["mayDelete"] is True
    updated = client.call("Identity/set", {"accountId": account, "update": {
        work["id"]: {"name": "Alice (work)"}, own_identity(client): {"email": "other@example.com"}}})
    assert work["id"] in updated["updated"]
    assert updated["notUpdated"][own_identity(client)]["type"] == "invalidProperties"  # email is immutable
    got = client.call("Identity/get", {"accountId": account, "ids": [work["id"]]})["list"][0]
    assert got["name"] == "Alice (work)" and got["bcc"] == [{"email": "archive@example.com"}]
    destroyed = client.call("Identity/set", {"accountId": account, "destroy": [work["id"], own_identity(client)]})
    assert destroyed["destroyed"] == [work["id"]]
    assert destroyed["notDestroyed"][own_identity(client)]["type"] == "forbidden"
    assert client.error("Identity/query", {"accountId": account})["type"] == "unknownMethod"


def test_identity_for_a_wildcard_domain() -> None:
    """[mail-6-props] ``*@domain``: any address at that domain."""
    core = make_core(addresses=("*@example.com",))
    client = client_of(core)
    answer = client.call("Identity/set", {"accountId": client.account_id, "create": {
        "a": {"email": "sales@example.com"}, "b": {"email": "sales@example.org"}}})
    assert answer["created"]["a"]["id"] and answer["notCreated"]["b"]["type"] == "forbiddenFrom"
    email_id = create_email(client, **{"from": [{"email": "sales@example.com"}]})
    wildcard = next(i for i in client.call("Identity/get", {"accountId": client.account_id})["list"]
                    if i["email"] == "*@example.com")
    assert wildcard["email"] == "*@example.com"
    sent = client.call("EmailSubmission/set", {"accountId": client.account_id, "create": {
        "s": {"identityId": wildcard["id"], "emailId": email_id}}})
    assert sent["created"]["s"]["envelope"]["mailFrom"]["email"] == "sales@example.com"


# -- EmailSubmission/set --------------------------------------------------------------------


def test_create_derives_the_envelope_and_queues_the_message() -> None:
    """[mail-7-props] [mail-7-envelopeDerive] [mail-7-sendAt] [mail-7-undoStatus] [mail-7-deliveryStatus]"""
    core = make_core()
    client = client_of(core)
    email_id = create_email(
        client,
        to=[{"email": "bob@example.org"}, {"email": "Carol@Example.net"}],
        cc=[{"email": "carol@example.NET"}],
        bcc=[{"email": "dave@example.org"}],
    )
    before = time.time()
    created = submit(client, email_id)["created"]["s"]
    assert created["envelope"] == {
        "mailFrom": {"email": ALICE, "parameters": None},
        "rcptTo": [{"email": a, "parameters": None} for a in ("bob@example.org", "Carol@Example.net", "dave@example.org")],
    }
    assert created["undoStatus"] == "pending"
    assert created["dsnBlobIds"] == [] and created["mdnBlobIds"] == []
    assert set(created["deliveryStatus"]) == {"bob@example.org", "Carol@Example.net", "dave@example.org"}
    assert created["deliveryStatus"]["bob@example.org"] == {"smtpReply": "", "delivered": "queued", "displayed": "unknown"}
    thread = client.call("Email/get", {"accountId": client.account_id, "ids": [email_id], "properties": ["threadId"]})
    assert created["threadId"] == thread["list"][0]["threadId"]
    assert abs(outbound_seconds(created["sendAt"]) - before) < 5
    got = client.call("EmailSubmission/get", {"accountId": client.account_id, "ids": [created["id"]]})["list"][0]
    assert got["emailId"] == email_id and got["identityId"] == own_identity(client)
    (queued,) = pending_messages(core, client.account_id)
    assert queued["id"] == created["id"] and queued["mailFrom"] == ALICE
    assert b"dave@example.org" not in core.backend.snapshot(client.account_id).__enter__().read_blob(queued["blobId"])


def outbound_seconds(date: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(date.replace("Z", "+00:00")).timestamp()


def test_envelope_uses_sender_and_falls_back_to_the_identity() -> None:
    """[mail-7-envelopeDerive] [mail-7-envelope] Sender before From; an
    address the identity does not cover gives way to the identity's email;
    a given envelope is kept as given (parameters null when absent)."""
    core = make_core(addresses=(ALICE, "team@example.com"))
    client = client_of(core)
    email_id = create_email(client, **{"from": [{"email": "team@example.com"}, {"email": ALICE}],
                                       "sender": [{"email": ALICE}]})
    assert submit(client, email_id)["created"]["s"]["envelope"]["mailFrom"]["email"] == ALICE
    given = submit(client, create_email(client), envelope={
        "mailFrom": {"email": "team@example.com"}, "rcptTo": [{"email": "x@example.org"}]})["created"]["s"]
    assert "envelope" not in given  # as given
    got = client.call("EmailSubmission/get", {"accountId": client.account_id, "ids": [given["id"]]})["list"][0]
    assert got["envelope"]["rcptTo"] == [{"email": "x@example.org", "parameters": None}]


def test_on_success_moves_the_draft_to_sent_in_the_same_request() -> None:
    """[mail-7.5-onSuccess] the implicit Email/set follows with the same call id."""
    core = make_core()
    client = client_of(core)
    boxes = roles(client)
    identity = own_identity(client)
    response = client.request([
        ["Email/set", {"accountId": client.account_id, "create": {"d": draft(client)}}, "0"],
        ["EmailSubmission/set", {
            "accountId": client.account_id,
            "create": {"k1": {"identityId": identity, "emailId": "#d"}},
            "onSuccessUpdateEmail": {"#k1": {
                f"mailboxIds/{boxes['drafts']}": None, f"mailboxIds/{boxes['sent']}": True, "keywords/$draft": None}},
        }, "1"],
    ])["methodResponses"]
    assert [(name, call_id) for name, _, call_id in response] == [
        ("Email/set", "0"), ("EmailSubmission/set", "1"), ("Email/set", "1")]
    email_id = response[0][1]["created"]["d"]["id"]
    assert response[2][1]["updated"] == {email_id: None}
    moved = client.call("Email/get", {"accountId": client.account_id, "ids": [email_id],
                                      "properties": ["mailboxIds", "keywords"]})["list"][0]
    assert moved["mailboxIds"] == {boxes["sent"]: True} and moved["keywords"] == {"$seen": True}
    # destroy, keyed by the submission's id; a failed create does nothing
    other = create_email(client)
    answer = client.request([["EmailSubmission/set", {
        "accountId": client.account_id,
        "create": {"ok": {"identityId": identity, "emailId": other}, "bad": {"identityId": identity, "emailId": "Enope"}},
        "onSuccessDestroyEmail": ["#ok", "#bad"],
    }, "2"]])["methodResponses"]
    assert answer[0][1]["notCreated"]["bad"]["type"] == "invalidProperties"
    assert answer[1][0] == "Email/set" and answer[1][1]["destroyed"] == [other]
    assert pending_messages(core, client.account_id)  # destroying the Email does not cancel [mail-7-autoDestroy]


def test_on_success_without_any_success_makes_no_implicit_call() -> None:
    """[mail-7.5-onSuccess]"""
    core = make_core()
    client = client_of(core)
    answer = client.request([["EmailSubmission/set", {
        "accountId": client.account_id,
        "create": {"k": {"identityId": own_identity(client), "emailId": "Enope"}},
        "onSuccessDestroyEmail": ["#k"],
    }, "a"]])["methodResponses"]
    assert [name for name, _, _ in answer] == ["EmailSubmission/set"]


def test_set_errors_of_a_create() -> None:
    """[mail-7.5-errors] [mail-7.5-send]"""
    core = make_core(options={"submission": {"max_per_hour": 1000}})
    client = client_of(core)
    assert refused(client, **{"from": [{"email": "boss@example.com"}]})["type"] == "forbiddenFrom"
    error = refused(client, **{"from": [{"email": ALICE}, {"email": "x@example.com"}]})
    assert error["type"] == "invalidEmail" and error["properties"] == ["sender"]
    assert refused(client, **{"from": None})["type"] == "invalidEmail"
    assert refused(client, to=None)["type"] == "noRecipients"
    error = refused(client, to=[{"email": f"r{i}@example.org"} for i in range(101)])
    assert error["type"] == "tooManyRecipients" and error["maxRecipients"] == 100
    bad_rcpt = {"mailFrom": {"email": ALICE}, "rcptTo": [{"email": "ok@example.org"}, {"email": "not an address"}]}
    error = refused(client, submission={"envelope": bad_rcpt})
    assert error["type"] == "invalidRecipients" and error["invalidRecipients"] == ["not an address"]
    bad_from = {"mailFrom": {"email": "boss@example.com"}, "rcptTo": [{"email": "b@example.org"}]}
    assert refused(client, submission={"envelope": bad_from})["type"] == "forbiddenMailFrom"
    odd = {"mailFrom": {"email": ALICE, "parameters": {"MT-PRIORITY": "3"}}, "rcptTo": [{"email": "b@example.org"}]}
    assert refused(client, submission={"envelope": odd})["properties"] == ["envelope"]
    assert refused(client, submission={"envelope": {"mailFrom": 3}})["type"] == "invalidProperties"
    unknown = client.call("EmailSubmission/set", {"accountId": client.account_id, "create": {
        "a": {"identityId": own_identity(client), "emailId": "Enope"},
        "b": {"identityId": "Inope", "emailId": create_email(client)},
        "c": {"identityId": own_identity(client), "emailId": create_email(client), "sendAt": "2030-01-01T00:00:00Z"}}})
    assert unknown["notCreated"]["a"]["properties"] == ["emailId"]
    assert unknown["notCreated"]["b"]["properties"] == ["identityId"]
    assert unknown["notCreated"]["c"]["properties"] == ["sendAt"]  # server-set
    assert pending_messages(core, client.account_id) == []


def test_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    """[mail-7.5-errors] tooLarge with maxSize."""
    monkeypatch.setattr(submission, "MAX_SIZE", 300)
    client = client_of(make_core())
    error = refused(client, bodyValues={"1": {"value": "x" * 400}})
    assert error == {"type": "tooLarge", "description": error["description"], "maxSize": 300}


def test_forbidden_to_send_beyond_the_hourly_limit() -> None:
    """[mail-7.5-errors] forbiddenToSend (the operator's max_per_hour)."""
    client = client_of(make_core(options={"submission": {"max_per_hour": 2}}))
    assert submit(client, create_email(client))["created"]
    answer = client.call("EmailSubmission/set", {"accountId": client.account_id, "create": {
        c: {"identityId": own_identity(client), "emailId": create_email(client)} for c in ("a", "b")}})
    assert len(answer["created"]) == 1
    assert next(iter(answer["notCreated"].values()))["type"] == "forbiddenToSend"


def test_an_identity_whose_address_was_removed_cannot_send() -> None:
    """[mail-7.5-errors] forbiddenFrom when the account lost the address."""
    core = make_core(addresses=(ALICE, "old@example.com"))
    client = client_of(core)
    old = next(i["id"] for i in client.call("Identity/get", {"accountId": client.account_id})["list"]
               if i["email"] == "old@example.com")
    email_id = create_email(client, **{"from": [{"email": "old@example.com"}]})
    set_addresses(core, "alice", [ALICE])
    core._accounts.clear()
    answer = client.call("EmailSubmission/set", {"accountId": client.account_id, "create": {
        "s": {"identityId": old, "emailId": email_id}}})
    assert answer["notCreated"]["s"]["type"] == "forbiddenFrom"
    # [mail-6-mayDelete] its Identity may now go
    got = client.call("Identity/get", {"accountId": client.account_id, "ids": [old]})["list"][0]
    assert got["mayDelete"] is True
    assert client.call("Identity/set", {"accountId": client.account_id, "destroy": [old]})["destroyed"] == [old]


def test_delayed_send_and_cancel() -> None:
    """[mail-7-sendAt] [mail-7-undoStatus] FUTURERELEASE within maxDelayedSend;
    only a pending submission can be canceled."""
    core = make_core(options=RELAY)
    client = client_of(core)
    hold = {"mailFrom": {"email": ALICE, "parameters": {"HOLDFOR": "600"}}, "rcptTo": [{"email": "b@example.org"}]}
    created = submit(client, create_email(client), envelope=hold)["created"]["s"]
    assert outbound_seconds(created["sendAt"]) - time.time() > 590
    stored = client.call("EmailSubmission/get", {"accountId": client.account_id, "ids": [created["id"]]})["list"][0]
    assert stored["envelope"] == {"mailFrom": {"email": ALICE, "parameters": {"HOLDFOR": "600"}},
                                  "rcptTo": [{"email": "b@example.org", "parameters": None}]}  # [mail-7-envelope]
    too_long = {"mailFrom": {"email": ALICE, "parameters": {"HOLDFOR": str(MAX_DELAYED_SEND + 1)}},
                "rcptTo": [{"email": "b@example.org"}]}
    assert refused(client, submission={"envelope": too_long})["properties"] == ["envelope"]
    until = {"mailFrom": {"email": ALICE, "parameters": {"HOLDUNTIL": "2099-01-01T00:00:00Z"}},
             "rcptTo": [{"email": "b@example.org"}]}
    assert refused(client, submission={"envelope": until})["properties"] == ["envelope"]
    transport = FakeTransport()
    sender(core, transport).run_once()
    assert transport.sent == []  # not due yet
    account = client.account_id
    wrong = client.call("EmailSubmission/set", {"accountId": account, "update": {created["id"]: {"undoStatus": "final"}}})
    assert wrong["notUpdated"][created["id"]]["type"] == "invalidProperties"
    done = client.call("EmailSubmission/set", {"accountId": account, "update": {created["id"]: {"undoStatus": "canceled"}}})
    assert done["updated"][created["id"]]["deliveryStatus"]["b@example.org"]["delivered"] == "no"
    assert pending_messages(core, account) == []
    again = client.call("EmailSubmission/set", {"accountId": account, "update": {created["id"]: {"undoStatus": "pending"}}})
    assert again["notUpdated"][created["id"]]["type"] == "invalidProperties"
    # sent already: cannotUnsend
    sent = submit(client, create_email(client))["created"]["s"]
    sender(core, transport).run_once()
    late = client.call("EmailSubmission/set", {"accountId": account, "update": {sent["id"]: {"undoStatus": "canceled"}}})
    assert late["notUpdated"][sent["id"]]["type"] == "cannotUnsend"


def test_cancel_loses_to_a_claim() -> None:
    """[mail-7-undoStatus] once a worker holds the message it cannot be canceled."""
    core = make_core(options=RELAY)
    client = client_of(core)
    created = submit(client, create_email(client))["created"]["s"]
    worker = Sender(core, transport=FakeTransport())
    claimed, _ = worker._claim(client.account_id, time.time())
    assert claimed and claimed[0][0]["id"] == created["id"]
    answer = client.call("EmailSubmission/set", {"accountId": client.account_id,
                                                  "update": {created["id"]: {"undoStatus": "canceled"}}})
    assert answer["notUpdated"][created["id"]]["type"] == "cannotUnsend"


def test_destroying_a_submission_does_not_stop_delivery() -> None:
    """[mail-7-autoDestroy]"""
    core = make_core(options=RELAY)
    client = client_of(core)
    created = submit(client, create_email(client))["created"]["s"]
    answer = client.call("EmailSubmission/set", {"accountId": client.account_id, "destroy": [created["id"]]})
    assert answer["destroyed"] == [created["id"]]
    transport = FakeTransport()
    sender(core, transport).run_once()
    assert len(transport.sent) == 1 and pending_messages(core, client.account_id) == []
    gone = client.call("EmailSubmission/get", {"accountId": client.account_id, "ids": [created["id"]]})
    assert gone["notFound"] == [created["id"]]


def test_query_filters_sorts_and_query_changes() -> None:
    """[mail-7.1-methods] [mail-7.3-filter]"""
    core = make_core(options=RELAY)
    client = client_of(core)
    account = client.account_id
    ids = [submit(client, create_email(client))["created"]["s"]["id"] for _ in range(3)]
    state = client.call("EmailSubmission/query", {"accountId": account})["queryState"]
    type_state = client.call("EmailSubmission/get", {"accountId": account, "ids": []})["state"]
    held = {"mailFrom": {"email": ALICE, "parameters": {"HOLDFOR": "3600"}}, "rcptTo": [{"email": "b@example.org"}]}
    later = submit(client, create_email(client), envelope=held)["created"]["s"]
    got = {s["id"]: s for s in client.call("EmailSubmission/get", {"accountId": account})["list"]}

    def query(**args: Any) -> list[str]:
        return client.call("EmailSubmission/query", {"accountId": account, **args})["ids"]

    assert set(query(filter={"undoStatus": "pending"})) == {*ids, later["id"]}
    assert query(filter={"emailIds": [got[ids[1]]["emailId"]]}) == [ids[1]]
    assert query(filter={"threadIds": [got[ids[2]]["threadId"]]}) == [ids[2]]
    assert set(query(filter={"identityIds": [own_identity(client)]})) == set(got)
    assert query(filter={"after": later["sendAt"]}) == [later["id"]]
    assert later["id"] not in query(filter={"before": later["sendAt"]})
    for name in ("sendAt", "sentAt"):
        assert query(sort=[{"property": name, "isAscending": False}])[0] == later["id"]
    by_email = query(sort=[{"property": "emailId"}])
    assert by_email == sorted(got, key=lambda i: got[i]["emailId"])
    assert query(sort=[{"property": "threadId"}]) == sorted(got, key=lambda i: got[i]["threadId"])
    changes = client.call("EmailSubmission/queryChanges", {"accountId": account, "sinceQueryState": state})
    assert [a["id"] for a in changes["added"]] == [later["id"]]
    changed = client.call("EmailSubmission/changes", {"accountId": account, "sinceState": type_state})
    assert changed["created"] == [later["id"]] and changed["updated"] == []


# -- the sender ---------------------------------------------------------------------------


def submission_of(client: Client, submission_id: str) -> dict[str, Any]:
    return client.call("EmailSubmission/get", {"accountId": client.account_id, "ids": [submission_id]})["list"][0]


def test_sender_relays_bcc_stripped_bytes_and_records_the_reply() -> None:
    """[mail-7.5-send] [mail-7-deliveryStatus] relay accepted: delivered
    ``unknown`` (RFC 8621 keeps ``yes`` for a DSN), smtpReply on one line."""
    core = make_core(options=RELAY)
    client = client_of(core)
    email_id = create_email(client, bcc=[{"email": "hidden@example.org"}])
    created = submit(client, email_id)["created"]["s"]
    transport = FakeTransport(Reply(250, "2.0.0 Ok\nqueued as 12345"))
    sender(core, transport).run_once()
    (message,) = transport.sent
    assert message.mail_from == ALICE and message.recipients == ["bob@example.org", "hidden@example.org"]
    assert b"\nBcc:" not in message.data and b"hidden@example.org" not in message.data
    assert b"\r\n" in message.data and b"\n" not in message.data.replace(b"\r\n", b"")
    done = submission_of(client, created["id"])
    assert done["undoStatus"] == "final"
    assert done["deliveryStatus"]["bob@example.org"] == {
        "smtpReply": "250 2.0.0 Ok queued as 12345", "delivered": "unknown", "displayed": "unknown"}
    assert pending_messages(core, client.account_id) == []


def test_sender_retries_temporary_failures_with_backoff_and_records_permanent_ones() -> None:
    """[mail-7-deliveryStatus] 4xx or no answer: retried for those
    recipients only, after a doubling, bounded wait; 5xx: delivered no."""
    core = make_core(options={"submission": {"relay": "127.0.0.1:9", "retry_first": 10, "retry_max": 30,
                                             "give_up_after": 85}})
    client = client_of(core)
    email_id = create_email(client, to=[{"email": "ok@example.org"}, {"email": "later@example.org"},
                                        {"email": "nobody@example.org"}])
    created = submit(client, email_id)["created"]["s"]
    clock = Clock()
    transport = FakeTransport(
        {"ok@example.org": Reply(250, "Ok"), "later@example.org": Reply(451, "4.7.1 Greylisted"),
         "nobody@example.org": Reply(550, "5.1.1 No such user")},
        {"later@example.org": Reply(None, "ConnectionRefusedError: refused")},
        {"later@example.org": Reply(452, "4.2.2 Full")},
        {"later@example.org": Reply(421, "4.3.0 Busy")},
        {"later@example.org": Reply(421, "4.3.0 Busy")},
    )
    worker = sender(core, transport, clock)
    worker.run_once()
    status = submission_of(client, created["id"])["deliveryStatus"]
    assert status["ok@example.org"]["delivered"] == "unknown"
    assert status["nobody@example.org"] == {"smtpReply": "550 5.1.1 No such user", "delivered": "no", "displayed": "unknown"}
    assert status["later@example.org"] == {"smtpReply": "451 4.7.1 Greylisted", "delivered": "queued", "displayed": "unknown"}
    waits = []
    for _ in range(4):
        (queued,) = pending_messages(core, client.account_id)
        waits.append(queued["notBefore"] - clock.now)
        clock.now = queued["notBefore"] - 1
        worker.run_once()
        assert len(transport.sent) == 1 + len(waits) - 1  # not before its time
        clock.now += 1
        worker.run_once()
        assert transport.sent[-1].recipients == ["later@example.org"]
    assert [round(w) for w in waits] == [10, 20, 30, 30]
    # past give_up_after: the last temporary failure is final
    status = submission_of(client, created["id"])["deliveryStatus"]["later@example.org"]
    assert status == {"smtpReply": "421 4.3.0 Busy", "delivered": "no", "displayed": "unknown"}
    assert pending_messages(core, client.account_id) == []


def test_enqueue_contract_for_other_senders() -> None:
    """outbound.enqueue: a message for the relay outside any EmailSubmission."""
    core = make_core(options=RELAY)
    account = principal_for(core, "alice").account_ids[0]
    raw = b"From: alice@example.com\nTo: bob@example.org\nBcc: x@example.org\nSubject: Auto\n\nAway\n"
    queue_id = enqueue(core, account, "", ["bob@example.org"], raw)
    assert [q["id"] for q in pending_messages(core, account)] == [queue_id]
    with pytest.raises(ValueError):
        enqueue(core, account, "", [], raw)
    with pytest.raises(ValueError):
        enqueue(core, account, "", ["not an address"], raw)
    transport = FakeTransport()
    sender(core, transport).run_once()
    (message,) = transport.sent
    assert message.mail_from == "" and message.recipients == ["bob@example.org"]
    assert b"Bcc" not in message.data and message.data.startswith(b"Date: ")
    assert pending_messages(core, account) == []


def test_exactly_one_of_two_workers_sends_each_message() -> None:
    """The lease: two senders over one store, running at once, send every
    message once; a claimed message is not claimed again."""
    core = make_core(options=RELAY)
    client = client_of(core)
    ids = {submit(client, create_email(client))["created"]["s"]["id"] for _ in range(12)}
    first = Sender(core, transport=FakeTransport())
    claimed, _ = first._claim(client.account_id, time.time())
    assert claimed and len(claimed[0]) == 12
    assert Sender(core, transport=FakeTransport())._claim(client.account_id, time.time())[0] == ()
    first._send(client.account_id, *claimed)
    ids |= {submit(client, create_email(client))["created"]["s"]["id"] for _ in range(20)}

    class Slow(FakeTransport):
        def __call__(self, messages: Any) -> list[dict[str, Reply]]:
            time.sleep(0.01)
            return super().__call__(messages)

    transports = [Slow(), Slow()]
    workers = [sender(core, t) for t in transports]

    def run(worker: Sender) -> None:
        for _ in range(20):
            worker.run_once()

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    sent = [m.record_id for t in [first.transport, *transports] for m in t.sent]  # type: ignore[attr-defined]
    assert sorted(sent) == sorted(ids)
    assert pending_messages(core, client.account_id) == []


def test_starttls_and_auth_against_aiosmtpd(tmp_path: Path) -> None:
    """smtp_starttls and smtp_username/password: the transport upgrades the
    connection, then authenticates, and the relay accepts the message."""
    from aiosmtpd.smtp import AuthResult

    from tests.support import make_certificate

    cert, key = make_certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        logins.append((data.login, data.password))
        return AuthResult(success=data.login == b"jmap" and data.password == b"s3cret")

    handler = RelayHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, tls_context=server_tls,
                            require_starttls=True, authenticator=authenticator, auth_required=True)
    controller.start()
    try:
        relay = outbound.smtp_transport(outbound.RelaySettings(
            host="127.0.0.1", port=port, starttls=True, username="jmap", password="s3cret",
            cafile=str(cert), timeout=5))
        message = Outgoing("q", ALICE, {}, ["bob@example.org"], b"Subject: Secure\r\n\r\nx\r\n")
        (ok,) = relay([message])
        assert ok["bob@example.org"].ok and logins == [(b"jmap", b"s3cret")]
        assert with_subject(handler.wait_for(1), "Secure")
        plain = outbound.smtp_transport(outbound.RelaySettings(host="127.0.0.1", port=port, timeout=5))
        (refused_plain,) = plain([message])  # the relay insists on STARTTLS first
        assert not refused_plain["bob@example.org"].ok
    finally:
        controller.stop()


def test_relay_settings_from_options() -> None:
    settings = outbound.RelaySettings.from_options(
        {"relay": ("smtp.example.com", 587), "starttls": True, "username": "u", "password": "p"})
    assert (settings.host, settings.port, settings.starttls, settings.username) == ("smtp.example.com", 587, True, "u")
    assert outbound.RelaySettings.from_options({"relay": "[::1]:2525"}).port == 2525
    assert not outbound.RelaySettings.from_options(None).configured


# -- a real SMTP server and the real server ----------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes


class RelayHandler:
    """aiosmtpd handler: ``reject*`` recipients get 550, ``later*`` ones a
    451 the first time; everything accepted is kept."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.tries: dict[str, int] = {}
        self.lock = threading.Lock()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        local = address.partition("@")[0]
        with self.lock:
            self.tries[address] = self.tries.get(address, 0) + 1
            tries = self.tries[address]
        if local.startswith("reject"):
            return "550 5.1.1 No such user here"
        if local.startswith("later") and tries == 1:
            return "451 4.7.1 Greylisted, try again"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Ok: queued"

    def wait_for(self, count: int, seconds: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        raise AssertionError(f"the SMTP server got {len(self.messages)} messages, not {count}")


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[RelayHandler, int]]:
    handler = RelayHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def api(server: Running, calls: list[list[Any]]) -> list[list[Any]]:
    answer = httpx.post(f"{server.url}/jmap/api/", json={"using": USING, "methodCalls": calls},
                        auth=("alice", "alice-pw"), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["methodResponses"]


class Remote:
    """The calls the server tests make, over HTTP."""

    def __init__(self, server: Running) -> None:
        self.server = server
        self.account = server.account_id
        listed = api(server, [["Mailbox/get", {"accountId": self.account}, "m"],
                              ["Identity/get", {"accountId": self.account}, "i"]])
        self.boxes = {m["role"]: m["id"] for m in listed[0][1]["list"]}
        self.identity = listed[1][1]["list"][0]["id"]

    def send(self, subject: str, *, envelope: dict[str, Any] | None = None, **headers: Any) -> tuple[str, str]:
        """Create a draft and submit it with the Drafts→Sent move; (emailId, submissionId)."""
        values = {
            "mailboxIds": {self.boxes["drafts"]: True}, "keywords": {"$draft": True},
            "from": [{"email": ALICE}], "to": [{"email": "bob@example.org"}], "subject": subject,
            "textBody": [{"partId": "1", "type": "text/plain"}], "bodyValues": {"1": {"value": f"Body of {subject}"}},
            **headers,
        }
        submission_values: dict[str, Any] = {"identityId": self.identity, "emailId": "#d"}
        if envelope is not None:
            submission_values["envelope"] = envelope
        answer = api(self.server, [
            ["Email/set", {"accountId": self.account, "create": {"d": values}}, "0"],
            ["EmailSubmission/set", {
                "accountId": self.account, "create": {"s": submission_values},
                "onSuccessUpdateEmail": {"#s": {f"mailboxIds/{self.boxes['drafts']}": None,
                                                f"mailboxIds/{self.boxes['sent']}": True, "keywords/$draft": None}},
            }, "1"],
        ])
        assert answer[1][1]["notCreated"] is None, answer
        assert answer[2][0] == "Email/set" and answer[2][1]["notUpdated"] is None, answer
        return answer[0][1]["created"]["d"]["id"], answer[1][1]["created"]["s"]["id"]

    def submission(self, submission_id: str) -> dict[str, Any]:
        return api(self.server, [["EmailSubmission/get", {"accountId": self.account, "ids": [submission_id]}, "g"]])[0][1]["list"][0]

    def settled(self, submission_id: str, seconds: float = 20.0) -> dict[str, Any]:
        """The submission once no recipient is queued any more (bounded wait)."""
        deadline = time.monotonic() + seconds
        while True:
            found = self.submission(submission_id)
            if all(s["delivered"] != "queued" for s in found["deliveryStatus"].values()):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"still queued: {found}")
            time.sleep(0.1)


def with_subject(messages: list[Received], subject: str) -> list[Received]:
    return [m for m in messages if f"Subject: {subject}\r\n".encode() in m.data]


@pytest.mark.server
def test_real_server_relays_to_a_real_smtp_server(tmp_path: Path, smtp: tuple[RelayHandler, int]) -> None:
    """[mail-7.5-send] [mail-7.5-onSuccess] [mail-7-deliveryStatus] [mail-7-undoStatus]
    2 workers, one relay: each message once, envelope and octets as sent,
    Bcc gone, Drafts→Sent, 4xx then success, 5xx recorded, a canceled delayed send."""
    handler, port = smtp
    with serving_alice(tmp_path, extra=["--smtp-relay", f"127.0.0.1:{port}"],
                       account_extra=["--address", ALICE]) as server:
        remote = Remote(server)
        email_id, sub_id = remote.send("First", cc=[{"email": "carol@example.net"}],
                                       bcc=[{"email": "secret@example.org"}])
        done = remote.settled(sub_id)
        (got,) = with_subject(handler.wait_for(1), "First")
        assert got.mail_from == ALICE
        assert sorted(got.rcpt_tos) == ["bob@example.org", "carol@example.net", "secret@example.org"]
        assert b"Bcc:" not in got.data and b"secret@example.org" not in got.data
        assert b"Body of First" in got.data and b"To: bob@example.org" in got.data
        assert done["undoStatus"] == "final"
        assert done["deliveryStatus"]["secret@example.org"]["smtpReply"] == "250 2.0.0 Ok: queued"
        email = api(server, [["Email/get", {"accountId": remote.account, "ids": [email_id],
                                            "properties": ["mailboxIds", "keywords"]}, "e"]])[0][1]["list"][0]
        assert email["mailboxIds"] == {remote.boxes["sent"]: True} and "$draft" not in email["keywords"]

        _, later_id = remote.send("Greylisted", to=[{"email": "later@example.org"}])
        _, reject_id = remote.send("Rejected", to=[{"email": "reject@example.org"}, {"email": "bob@example.org"}])
        rejected = remote.settled(reject_id)["deliveryStatus"]
        assert rejected["reject@example.org"] == {"smtpReply": "550 5.1.1 No such user here", "delivered": "no",
                                                  "displayed": "unknown"}
        assert rejected["bob@example.org"]["delivered"] == "unknown"
        greylisted = remote.settled(later_id)["deliveryStatus"]["later@example.org"]
        assert greylisted["delivered"] == "unknown" and handler.tries["later@example.org"] == 2

        hold = {"mailFrom": {"email": ALICE, "parameters": {"HOLDFOR": "4"}}, "rcptTo": [{"email": "bob@example.org"}]}
        _, held_id = remote.send("Held", envelope=hold)
        assert remote.submission(held_id)["undoStatus"] == "pending"
        canceled = api(server, [["EmailSubmission/set", {
            "accountId": remote.account, "update": {held_id: {"undoStatus": "canceled"}}}, "c"]])[0][1]
        assert held_id in canceled["updated"], canceled
        _, marker_id = remote.send("After", envelope={
            "mailFrom": {"email": ALICE, "parameters": {"HOLDFOR": "5"}}, "rcptTo": [{"email": "bob@example.org"}]})
        remote.settled(marker_id)  # sent after the canceled one was due
        messages = handler.wait_for(4)
        assert with_subject(messages, "Held") == []
        assert remote.submission(held_id)["undoStatus"] == "canceled"
        for subject in ("First", "Greylisted", "Rejected", "After"):
            assert len(with_subject(messages, subject)) == 1, subject  # once, from one worker


@pytest.mark.server
def test_queue_survives_a_restart(tmp_path: Path, smtp: tuple[RelayHandler, int]) -> None:
    """A held message queued before a stop leaves after the next start."""
    handler, port = smtp
    data = tmp_path / "data"
    added = jmapcore("account", "add", "alice", "--password", "alice-pw", "--data", str(data), "--address", ALICE)
    assert added.returncode == 0, added.stderr
    flags = ["--workers", "2", "--smtp-relay", f"127.0.0.1:{port}"]
    server = start("serve", data, tmp_path / "server.log", extra=flags)
    server.account_id = added.stdout.strip()
    try:
        remote = Remote(server)
        _, sub_id = remote.send("Survivor", envelope={
            "mailFrom": {"email": ALICE, "parameters": {"HOLDFOR": "3"}}, "rcptTo": [{"email": "bob@example.org"}]})
    finally:
        stop(server.process)
    listing = jmapcore("queue", "list", "--data", str(data))
    assert listing.returncode == 0, listing.stderr
    header, row = listing.stdout.splitlines()
    assert header.split("\t")[:4] == ["account", "id", "from", "waiting"]
    assert row.split("\t")[:4] == ["alice", sub_id, ALICE, "bob@example.org"]
    time.sleep(max(0.0, 3.5 - 0.5))
    assert with_subject(handler.messages, "Survivor") == []
    server = start("serve", data, tmp_path / "server2.log", extra=flags)
    server.account_id = added.stdout.strip()
    try:
        remote = Remote(server)
        assert remote.settled(sub_id)["deliveryStatus"]["bob@example.org"]["delivered"] == "unknown"
        assert len(with_subject(handler.wait_for(1), "Survivor")) == 1
    finally:
        stop(server.process)


def test_smtp_transport_against_aiosmtpd(smtp: tuple[RelayHandler, int]) -> None:
    """The stdlib transport: one connection, per-recipient replies."""
    handler, port = smtp
    transport = outbound.smtp_transport(outbound.RelaySettings(host="127.0.0.1", port=port))
    results = transport([
        Outgoing("q1", ALICE, {}, ["bob@example.org", "reject-me@example.org"], b"Subject: T1\r\n\r\n.dot\r\n"),
        Outgoing("q2", ALICE, {}, ["reject2@example.org"], b"Subject: T2\r\n\r\nx\r\n"),
    ])
    assert results[0]["bob@example.org"].line == "250 2.0.0 Ok: queued"
    assert results[0]["reject-me@example.org"].permanent
    assert results[1]["reject2@example.org"].code == 550
    (utf8,) = transport([Outgoing("q4", ALICE, {}, ["jörg@example.org"], b"Subject: T4\r\n\r\nx\r\n")])
    assert utf8["jörg@example.org"].ok  # aiosmtpd offers SMTPUTF8, and the transport asks for it
    (got,) = with_subject(handler.wait_for(1), "T1")
    assert got.data.endswith(b"\r\n.dot\r\n")  # dot-stuffing undone by the server
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    down = outbound.smtp_transport(outbound.RelaySettings(host="127.0.0.1", port=closed, timeout=2))
    (result,) = down([Outgoing("q3", ALICE, {}, ["bob@example.org"], b"Subject: T3\r\n\r\nx\r\n")])
    assert result["bob@example.org"].code is None and not result["bob@example.org"].permanent


def test_relay_settings_come_from_the_config_file_and_flags(tmp_path: Path) -> None:
    """smtp_relay (file or --smtp-relay), smtp_starttls, smtp_username and
    smtp_password reach the plugin as Core.options["submission"]."""
    from jmapserver.config import ConfigError, load_settings

    config = tmp_path / "c.toml"
    config.write_text('smtp_relay = "smtp.example.com:587"\nsmtp_starttls = true\n'
                      'smtp_username = "jmap"\nsmtp_password = "s3cret"\n')
    options = load_settings(config, {"smtp_relay": "127.0.0.1:2525"}).plugin_options()["submission"]
    assert options == {"relay": ("127.0.0.1", 2525), "starttls": True, "username": "jmap", "password": "s3cret"}
    settings = outbound.RelaySettings.from_options(options)
    assert (settings.host, settings.port, settings.starttls, settings.password) == ("127.0.0.1", 2525, True, "s3cret")
    config.write_text("smtp_starttls = 1\n")
    with pytest.raises(ConfigError, match="smtp_starttls"):
        load_settings(config, {})


def test_the_whole_flow_on_every_backend(backend: Any) -> None:
    """[mail-7.5-send] [mail-7.5-onSuccess] on memory, LMDB and Maildir: the
    submission, its queue record and the move to Sent; the sender empties
    the queue and releases the octets' blob; a canceled one leaves nothing."""
    core = Core(backend, Registry.from_entry_points(), options=RELAY)
    add_account(core, "alice", "alice-pw", [ALICE])
    client = client_of(core)
    boxes = roles(client)
    email_id = create_email(client, bcc=[{"email": "hidden@example.org"}])
    answer = client.request([["EmailSubmission/set", {
        "accountId": client.account_id,
        "create": {"s": {"identityId": own_identity(client), "emailId": email_id}},
        "onSuccessUpdateEmail": {"#s": {f"mailboxIds/{boxes['drafts']}": None,
                                        f"mailboxIds/{boxes['sent']}": True, "keywords/$draft": None}},
    }, "0"]])["methodResponses"]
    created = answer[0][1]["created"]["s"]
    assert answer[1][1]["updated"] == {email_id: None}
    (queued,) = pending_messages(core, client.account_id)
    with core.backend.snapshot(client.account_id) as snap:
        assert snap.blob_info(queued["blobId"]).refs == 1
    transport = FakeTransport()
    sender(core, transport).run_once()
    assert [m.recipients for m in transport.sent] == [["bob@example.org", "hidden@example.org"]]
    assert b"hidden@" not in transport.sent[0].data
    assert pending_messages(core, client.account_id) == []
    with core.backend.snapshot(client.account_id) as snap:
        info = snap.blob_info(queued["blobId"])
        assert info is None or info.refs == 0
    assert submission_of(client, created["id"])["undoStatus"] == "final"
    hold = {"mailFrom": {"email": ALICE, "parameters": {"HOLDFOR": "60"}}, "rcptTo": [{"email": "b@example.org"}]}
    held = submit(client, create_email(client), envelope=hold)["created"]["s"]
    client.call("EmailSubmission/set", {"accountId": client.account_id, "update": {held["id"]: {"undoStatus": "canceled"}}})
    assert pending_messages(core, client.account_id) == []
    moved = client.call("Email/get", {"accountId": client.account_id, "ids": [email_id], "properties": ["mailboxIds"]})
    assert moved["list"][0]["mailboxIds"] == {boxes["sent"]: True}
