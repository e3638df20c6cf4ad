"""Push over EventSource against the real server (gunicorn, 2 workers, 127.0.0.1).

The listener is a plain HTTP/1.1 client reading ``text/event-stream`` (what
a browser's EventSource does); which worker serves each connection is read
from /proc, so the cross-worker case is checked, not hoped for.
"""

from __future__ import annotations

import time
from base64 import b64encode
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest

from tests.support import EventStream, Running, serving_alice, serving_worker

pytestmark = pytest.mark.server

USER, PASSWORD = "alice", "alice-pw"
BASIC = "Basic " + b64encode(f"{USER}:{PASSWORD}".encode()).decode()
USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with serving_alice(tmp_path_factory.mktemp("push")) as running:
        yield running


def api(server: Running, *calls: list[Any]) -> list[Any]:
    with httpx.Client(base_url=server.url, auth=(USER, PASSWORD), timeout=10) as client:
        answer = client.post("/jmap/api/", json={"using": USING, "methodCalls": list(calls)})
        assert answer.status_code == 200, answer.text
        return answer.json()["methodResponses"]


def make_mailbox(server: Running, name: str) -> str:
    (response,) = api(server, ["Mailbox/set", {"accountId": server.account_id, "create": {"m": {"name": name}}}, "0"])
    return response[1]["newState"]


def mailbox_state(server: Running) -> str:
    (response,) = api(server, ["Mailbox/get", {"accountId": server.account_id, "ids": []}, "0"])
    return response[1]["state"]


def test_change_through_one_worker_reaches_listeners_on_every_worker(server: Running) -> None:
    """[core-7.3-sse] [core-7.1-stateChange] a commit served by one worker
    is pushed to listeners held by both workers (no broker)."""
    streams: list[EventStream] = []
    workers: dict[int, list[EventStream]] = {}
    try:
        for _ in range(30):  # bounded: the kernel spreads connections over the workers
            stream = EventStream(server, BASIC)
            assert stream.response.status == 200
            assert stream.response.getheader("Content-Type").startswith("text/event-stream")
            streams.append(stream)
            workers.setdefault(serving_worker(server, stream.client_port), []).append(stream)
            if len(workers) == 2 and len(streams) >= 4:
                break
        assert len(workers) == 2, "every listener landed on one worker"
        new_state = make_mailbox(server, "Pushed")
        for stream in streams:
            event = stream.next()
            change = msgspec.json.decode(event["data"])
            assert change == {"@type": "StateChange", "changed": {server.account_id: change["changed"][server.account_id]}}
            assert change["changed"][server.account_id]["Mailbox"] == new_state
            assert event["id"]  # [core-7.3-eventId]
    finally:
        for stream in streams:
            stream.close()


def test_closeafter_state_ends_the_response_after_one_event(server: Running) -> None:
    """[core-7.3-closeafter]"""
    stream = EventStream(server, BASIC, "types=*&closeafter=state&ping=0")
    try:
        make_mailbox(server, "Once")
        assert stream.next() is not None
        assert stream.next() is None  # then the response ends
    finally:
        stream.close()


def test_pings_carry_the_interval_used_and_no_event_id(server: Running) -> None:
    """[core-7.3-ping] ``ping=1`` is clamped up to the server's minimum
    (5 s, within the RFC's bounds); a ping has no id."""
    stream = EventStream(server, BASIC, "types=*&closeafter=no&ping=1")
    try:
        ping = stream.next("ping", wait=15)
        assert msgspec.json.decode(ping["data"]) == {"interval": 5}
        assert "id" not in ping
    finally:
        stream.close()


def test_last_event_id_sends_missed_changes_at_once(server: Running) -> None:
    """[core-7.3-eventId] a reconnect with Last-Event-ID gets what changed
    while it was away; without changes it gets nothing."""
    first = EventStream(server, BASIC)
    try:
        make_mailbox(server, "Before")
        seen = first.next()["id"]
    finally:
        first.close()
    missed_state = make_mailbox(server, "While away")
    again = EventStream(server, BASIC, headers={"Authorization": BASIC, "Last-Event-ID": seen})
    try:
        change = msgspec.json.decode(again.next()["data"])
        assert change["changed"][server.account_id]["Mailbox"] == missed_state
        assert again.quiet(1.0)  # and nothing more until something changes
    finally:
        again.close()
    current = EventStream(server, BASIC, headers={"Authorization": BASIC, "Last-Event-ID": "p-not-ours"})
    try:
        assert current.quiet(1.0)  # an id we did not issue: start from now
    finally:
        current.close()


def test_types_parameter_filters_the_pushes(server: Running) -> None:
    """[core-7.3-types] a listener for Email only hears nothing of a Mailbox
    change; one for Mailbox does."""
    emails = EventStream(server, BASIC, "types=Email&closeafter=no&ping=0")
    boxes = EventStream(server, BASIC, "types=Mailbox,Thread&closeafter=no&ping=0")
    try:
        make_mailbox(server, "Filtered")
        change = msgspec.json.decode(boxes.next()["data"])
        assert set(change["changed"][server.account_id]) == {"Mailbox"}
        assert emails.quiet(1.5)
    finally:
        emails.close()
        boxes.close()


def test_access_token_opens_an_event_source_without_a_header(server: Running) -> None:
    """Browsers' EventSource cannot send Authorization: a short-lived token
    from /jmap/access-token goes in the URL; a wrong one is refused."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.post("/jmap/access-token").status_code == 401
        issued = client.post("/jmap/access-token", auth=(USER, PASSWORD))
        assert issued.status_code == 200
        token = issued.json()["accessToken"]
        assert issued.json()["expires"].endswith("Z")
    stream = EventStream(server, BASIC, f"types=*&closeafter=state&ping=0&access_token={token}", headers={})
    try:
        assert stream.response.status == 200
        make_mailbox(server, "Token")
        assert stream.next() is not None
    finally:
        stream.close()
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    refused = EventStream(server, BASIC, f"access_token={forged}", headers={})
    try:
        assert refused.response.status == 401
    finally:
        refused.close()
    # Not a credential for the API.
    with httpx.Client(base_url=server.url, timeout=10) as client:
        session = client.get("/jmap/session", headers={"Authorization": f"Bearer {token}"})
        assert session.status_code == 401


@pytest.mark.parametrize(
    "query", ["closeafter=sometimes", "ping=-1", "ping=soon", "ping=99999999999"]
)
def test_bad_parameters_are_a_problem_not_a_stream(server: Running, query: str) -> None:
    """Unusable parameters get a 400 problem document, never a hung stream."""
    with httpx.Client(base_url=server.url, auth=(USER, PASSWORD), timeout=10) as client:
        answer = client.get(f"/jmap/eventsource/?{query}")
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_event_source_needs_credentials(server: Running) -> None:
    """[core-8.2-authScheme]"""
    stream = EventStream(server, BASIC, headers={})
    try:
        assert stream.response.status == 401
    finally:
        stream.close()


def test_a_burst_of_commits_is_coalesced(server: Running) -> None:
    """[core-7.1-stateChange] 30 commits in a row become a few events (at
    most one per 0.25 s per listener), the last carrying the final state."""
    stream = EventStream(server, BASIC, "types=Mailbox&closeafter=no&ping=0")
    try:
        started = time.monotonic()
        for index in range(30):
            final = make_mailbox(server, f"Burst {index}")
        elapsed = time.monotonic() - started
        events = []
        while True:
            event = stream.next()
            events.append(msgspec.json.decode(event["data"]))
            if events[-1]["changed"][server.account_id]["Mailbox"] == final:
                break
        assert len(events) <= elapsed / 0.25 + 2  # fewer than the commits unless they were slow
        assert stream.quiet(1.0)
    finally:
        stream.close()


@pytest.fixture(scope="module")
def maildir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    maildir = ["--backend", "maildir"]
    with serving_alice(tmp_path_factory.mktemp("push-maildir"), extra=maildir, account_extra=maildir) as running:
        yield running


def test_external_maildir_delivery_is_pushed_with_no_request_made(maildir_server: Running) -> None:
    """[mail-1.5-push] a file another program drops into new/ reaches an
    EventSource listener as Email and EmailDelivery changes, though no
    client makes a request meanwhile (the waiter folds the tree in)."""
    server = maildir_server
    stream = EventStream(server, BASIC, "types=Email,EmailDelivery&closeafter=no&ping=0")
    try:
        inbox = server.data / "maildir" / USER / "new"
        assert inbox.is_dir(), sorted(p.name for p in (server.data / "maildir" / USER).iterdir())
        raw = b"From: a@example.com\r\nTo: alice@example.com\r\nSubject: dropped\r\n\r\nHello\r\n"
        temporary = server.data / "maildir" / USER / "tmp" / "1700000000.P1.bench"
        temporary.write_bytes(raw)
        temporary.rename(inbox / temporary.name)  # how a delivery agent does it
        change = msgspec.json.decode(stream.next()["data"])
        assert set(change["changed"][server.account_id]) == {"Email", "EmailDelivery"}
        (response,) = api(server, ["Email/query", {"accountId": server.account_id}, "0"])
        assert len(response[1]["ids"]) == 1
    finally:
        stream.close()
