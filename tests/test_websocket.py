"""JMAP over WebSocket (RFC 8887) against the real server: ``jmapcore
serve`` with two workers on 127.0.0.1, spoken to with the ``websockets``
library's client and httpx."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from jmapcore.wire import CORE
from tests.support import Running, serving_alice

websockets = pytest.importorskip("websockets")
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402
from websockets.sync.client import ClientConnection, connect  # noqa: E402

pytestmark = pytest.mark.server

MAIL = "urn:ietf:params:jmap:mail"
WEBSOCKET = "urn:ietf:params:jmap:websocket"
AUTH = "Basic " + base64.b64encode(b"alice:alice-pw").decode()
#: A change reaches every worker within a second ([issue 5]); allow slack
#: for a loaded machine.
PUSH_WAIT = 10.0
#: Small enough to exceed cheaply, larger than the thread-hop size (64 KiB).
MAX_SIZE_REQUEST = 300_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("ws-server")
    config = root / "jmapcore.toml"
    config.write_text(f"[limits]\nmaxSizeRequest = {MAX_SIZE_REQUEST}\n")
    with serving_alice(root, extra=["--config", str(config)]) as running:
        yield running


@pytest.fixture
def client(server: Running) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, auth=("alice", "alice-pw"), timeout=10) as http:
        yield http


def ws_url(server: Running) -> str:
    return server.url.replace("http://", "ws://") + "/jmap/ws"


def open_ws(server: Running, **kwargs: Any) -> ClientConnection:
    kwargs.setdefault("subprotocols", ["jmap"])
    kwargs.setdefault("additional_headers", {"Authorization": AUTH})
    return connect(ws_url(server), open_timeout=10, close_timeout=5, **kwargs)


def receive(ws: ClientConnection, timeout: float = PUSH_WAIT) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=timeout))


def receive_type(ws: ClientConnection, kind: str, timeout: float = PUSH_WAIT) -> dict[str, Any]:
    """The next message of ``kind``, skipping others, within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {kind} within {timeout} s"
        message = receive(ws, remaining)
        if message["@type"] == kind:
            return message


def echo(ws: ClientConnection, request_id: str) -> dict[str, Any]:
    """A round trip: when its Response arrives, every earlier message was handled."""
    ws.send(json.dumps({
        "@type": "Request", "id": request_id, "using": [CORE],
        "methodCalls": [["Core/echo", {"n": request_id}, "c"]],
    }))
    return receive_type(ws, "Response")


def create_mailbox(client: httpx.Client, account_id: str, name: str) -> str:
    """A change made over HTTP (any worker); the new Mailbox state."""
    response = client.post("/jmap/api/", json={
        "using": [CORE, MAIL],
        "methodCalls": [["Mailbox/set", {"accountId": account_id, "create": {"m": {"name": name}}}, "s"]],
    })
    assert response.status_code == 200, response.text
    [[name_, arguments, _]] = response.json()["methodResponses"]
    assert name_ == "Mailbox/set" and "m" in arguments["created"], arguments
    return arguments["newState"]


def test_session_advertises_websocket(server: Running, client: httpx.Client) -> None:
    """[ws-3-capability] url (ws:// on a plain-HTTP server) and supportsPush."""
    session = client.get("/.well-known/jmap").json()
    assert session["capabilities"][WEBSOCKET] == {
        "url": f"ws://127.0.0.1:{server.port}/jmap/ws",
        "supportsPush": True,
    }


def test_websocket_url_follows_the_base_url() -> None:
    """[ws-3-capability] wss:// for an HTTPS server, under its base path."""
    from jmapserver.websocket import websocket_capability, websocket_url

    assert websocket_url("https://mail.example/base/") == "wss://mail.example/base/jmap/ws"
    assert websocket_url("http://127.0.0.1:8080") == "ws://127.0.0.1:8080/jmap/ws"
    assert websocket_capability("https://mail.example") == {
        "url": "wss://mail.example/jmap/ws", "supportsPush": True,
    }


def test_messages_are_spliced_around_the_core_bytes() -> None:
    """[ws-4.3.3-response] [ws-4.3.4-requestError] the envelope members come
    first; the core's body is not decoded."""
    from jmapcore.api import HttpResult
    from jmapserver.websocket import response_message

    ok = response_message("r", HttpResult(200, b'{"methodResponses":[],"sessionState":"s"}'))
    assert json.loads(ok) == {"@type": "Response", "requestId": "r", "methodResponses": [], "sessionState": "s"}
    assert "requestId" not in json.loads(response_message(None, HttpResult(200, b"{}")))
    failed = json.loads(response_message(None, HttpResult(400, b'{"type":"t","status":400}')))
    assert failed == {"@type": "RequestError", "requestId": None, "type": "t", "status": 400}


def test_handshake_without_credentials_is_refused(server: Running) -> None:
    """[ws-4-handshake] authentication happens on the handshake."""
    for headers in ({}, {"Authorization": "Basic " + base64.b64encode(b"alice:wrong").decode()}):
        with pytest.raises(InvalidStatus) as refused:
            open_ws(server, additional_headers=headers)
        assert refused.value.response.status_code in (401, 403)


def test_browser_handshake_needs_an_access_token(server: Running, client: httpx.Client) -> None:
    """[ws-5-security] a handshake with Origin cannot ride on credentials the
    browser attached by itself; an access token from POST /jmap/access-token works."""
    with pytest.raises(InvalidStatus):
        open_ws(server, origin="https://elsewhere.example")
    token = client.post("/jmap/access-token").json()["accessToken"]
    url = ws_url(server) + "?access_token=" + token
    with connect(url, subprotocols=["jmap"], origin="https://elsewhere.example", open_timeout=10) as ws:
        assert echo(ws, "t1")["requestId"] == "t1"


def test_unknown_websocket_path_is_refused(server: Running) -> None:
    """Only /jmap/ws (and /jmap/ws/) speak WebSocket."""
    url = server.url.replace("http://", "ws://") + "/jmap/nowhere"
    with pytest.raises(InvalidStatus):
        connect(url, subprotocols=["jmap"], additional_headers={"Authorization": AUTH}, open_timeout=10)
    with connect(ws_url(server) + "/", subprotocols=["jmap"], additional_headers={"Authorization": AUTH},
                 open_timeout=10) as ws:
        assert echo(ws, "slash")["requestId"] == "slash"


def test_subprotocol_is_required_and_echoed(server: Running) -> None:
    """[ws-4-handshake] the server echoes ``jmap``; without it, no connection."""
    with open_ws(server) as ws:
        assert ws.subprotocol == "jmap"
    with pytest.raises(InvalidStatus):
        open_ws(server, subprotocols=["chat"])


def test_request_and_response(server: Running) -> None:
    """[ws-4.3.2-request] [ws-4.3.3-response] [ws-4.3-textFrames] requestId
    echoes the id; several requests on one connection, on any worker."""
    with open_ws(server) as ws:
        for n in range(5):
            response = echo(ws, f"r{n}")
            assert response["requestId"] == f"r{n}"
            assert response["methodResponses"] == [["Core/echo", {"n": f"r{n}"}, "c"]]
            assert isinstance(response["sessionState"], str)
        ws.send(json.dumps({"@type": "Request", "using": [CORE], "methodCalls": [["Core/echo", {}, "c"]]}))
        anonymous = receive(ws)
        assert anonymous["@type"] == "Response" and "requestId" not in anonymous


def test_large_request_runs_off_the_loop(server: Running) -> None:
    """[ws-4.3.3-response] a request above the inline size (run in a thread)
    is answered like a small one; a small one after it still gets its answer."""
    with open_ws(server) as ws:
        big = "x" * 100_000
        ws.send(json.dumps({
            "@type": "Request", "id": "big", "using": [CORE],
            "methodCalls": [["Core/echo", {"s": big}, "c"]],
        }))
        ws.send(json.dumps({
            "@type": "Request", "id": "small", "using": [CORE],
            "methodCalls": [["Core/echo", {}, "c"]],
        }))
        answers = {m["requestId"]: m for m in (receive_type(ws, "Response"), receive_type(ws, "Response"))}
        assert answers["big"]["methodResponses"][0][1]["s"] == big
        assert answers["small"]["methodResponses"] == [["Core/echo", {}, "c"]]


def test_request_errors(server: Running) -> None:
    """[ws-4.3.4-requestError] [ws-4.3.1-invalid] notJSON, notRequest,
    unknownCapability; the connection stays usable."""
    with open_ws(server) as ws:
        ws.send("{not json")
        error = receive(ws)
        assert error["@type"] == "RequestError"
        assert error["type"] == "urn:ietf:params:jmap:error:notJSON"
        assert error["status"] == 400 and error["requestId"] is None and error["detail"]

        ws.send(json.dumps({"@type": "Nonsense", "id": "n1"}))
        error = receive(ws)
        assert (error["@type"], error["requestId"]) == ("RequestError", "n1")
        assert error["type"] == "urn:ietf:params:jmap:error:notRequest"

        ws.send(json.dumps([1, 2, 3]))
        assert receive(ws)["type"] == "urn:ietf:params:jmap:error:notRequest"

        ws.send(json.dumps({"@type": "Request", "id": "u1", "using": [CORE, "urn:example:nope"], "methodCalls": []}))
        error = receive(ws)
        assert (error["@type"], error["requestId"]) == ("RequestError", "u1")
        assert error["type"] == "urn:ietf:params:jmap:error:unknownCapability"

        assert echo(ws, "after")["requestId"] == "after"


def test_request_limits(server: Running) -> None:
    """[ws-5-security] maxSizeRequest and maxCallsInRequest as over HTTP."""
    with open_ws(server) as ws:
        ws.send(json.dumps({
            "@type": "Request", "id": "huge", "using": [CORE],
            "methodCalls": [["Core/echo", {"s": "x" * MAX_SIZE_REQUEST}, "c"]],
        }))
        error = receive(ws)
        assert error["@type"] == "RequestError" and error["type"] == "urn:ietf:params:jmap:error:limit"
        assert error["limit"] == "maxSizeRequest"
        calls = [["Core/echo", {}, f"c{n}"] for n in range(33)]
        ws.send(json.dumps({"@type": "Request", "id": "many", "using": [CORE], "methodCalls": calls}))
        error = receive(ws)
        assert (error["@type"], error["requestId"]) == ("RequestError", "many")
        assert error["type"] == "urn:ietf:params:jmap:error:limit"
        assert error["limit"] == "maxCallsInRequest"


def test_binary_frame_closes_with_1003(server: Running) -> None:
    """[ws-4.3.1-invalid] binary frames are not JMAP messages."""
    with open_ws(server) as ws:
        ws.send(b"\x00\x01")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=PUSH_WAIT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003


def test_push_enable_change_disable(server: Running, client: httpx.Client) -> None:
    """[ws-4.3.5.2-enable] [ws-4.3.5.1-stateChange] [ws-4.3.5.3-disable]
    a change over HTTP (either worker) reaches the socket as a StateChange
    with a pushState; after WebSocketPushDisable nothing more comes."""
    with open_ws(server) as ws:
        ws.send(json.dumps({"@type": "WebSocketPushEnable", "dataTypes": ["Mailbox"]}))
        echo(ws, "ready")  # the enable is in effect once this is answered
        state = create_mailbox(client, server.account_id, "pushed")
        change = receive_type(ws, "StateChange")
        assert change["changed"][server.account_id]["Mailbox"] == state
        assert set(change["changed"][server.account_id]) == {"Mailbox"}
        assert isinstance(change["pushState"], str) and change["pushState"]

        ws.send(json.dumps({"@type": "WebSocketPushDisable"}))
        echo(ws, "disabled")
        create_mailbox(client, server.account_id, "not pushed")
        deadline = time.monotonic() + 2.0  # longer than a push takes
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                message = receive(ws, remaining)
            except TimeoutError:
                break
            assert message["@type"] != "StateChange", message


def test_push_requests_interleave(server: Running, client: httpx.Client) -> None:
    """[ws-4.3.5.2-enable] with push on, requests are still answered."""
    with open_ws(server) as ws:
        ws.send(json.dumps({"@type": "WebSocketPushEnable", "dataTypes": None}))
        echo(ws, "a")
        create_mailbox(client, server.account_id, "interleaved")
        assert echo(ws, "b")["requestId"] == "b"
        assert "Mailbox" in receive_type(ws, "StateChange")["changed"][server.account_id]


def test_push_state_resumes(server: Running, client: httpx.Client) -> None:
    """[ws-4.3.5.2-enable] [ws-4.3.5.1-stateChange] a new connection that
    enables push with the last pushState it saw gets what it missed at once."""
    with open_ws(server) as ws:
        ws.send(json.dumps({"@type": "WebSocketPushEnable", "dataTypes": None}))
        echo(ws, "ready")
        create_mailbox(client, server.account_id, "seen")
        push_state = receive_type(ws, "StateChange")["pushState"]
    missed = create_mailbox(client, server.account_id, "missed")  # nobody listens
    with open_ws(server) as ws:
        ws.send(json.dumps({"@type": "WebSocketPushEnable", "dataTypes": ["Mailbox"], "pushState": push_state}))
        change = receive_type(ws, "StateChange")
        assert change["changed"][server.account_id] == {"Mailbox": missed}
        assert change["pushState"] != push_state
    # Without a pushState nothing old is sent.
    with open_ws(server) as ws:
        ws.send(json.dumps({"@type": "WebSocketPushEnable", "dataTypes": None}))
        ws.send(json.dumps({"@type": "Request", "id": "q", "using": [CORE], "methodCalls": []}))
        assert receive(ws)["@type"] == "Response"


def test_no_errors_in_the_server_log(server: Running) -> None:
    """Everything above ran without a traceback in either worker (runs last)."""
    text = server.log.read_text()
    assert "Traceback" not in text and "ERROR" not in text, text[-4000:]
