"""JMAP over WebSocket (RFC 8887), on the same server and port as HTTP.

``GET /jmap/ws`` with ``Upgrade: websocket`` and ``Sec-WebSocket-Protocol:
jmap`` opens a connection on which the client sends text frames, each one
JSON object discriminated by ``@type`` ([ws-4.3-textFrames]):

* ``Request`` (a normal RFC 8620 Request plus an optional ``id``) is run by
  the same :meth:`~jmapcore.api.Core.api` as the HTTP endpoint and answered
  with a ``Response`` carrying ``requestId`` ([ws-4.3.2-request]
  [ws-4.3.3-response]), or with a ``RequestError`` ([ws-4.3.4-requestError]);
* ``WebSocketPushEnable`` / ``WebSocketPushDisable`` turn StateChange pushes
  on and off ([ws-4.3.5.2-enable] [ws-4.3.5.3-disable]); each push carries a
  ``pushState`` to resume from later ([ws-4.3.5.1-stateChange]).

Requests and pushes interleave: small requests run on the event loop (as on
the HTTP endpoint), large ones in a thread while the connection goes on
reading; at most ``maxConcurrentRequests`` run at once per connection, and
the connection stops reading until one finishes (backpressure, not an
unbounded queue).  Pushes come from the worker's shared
:class:`~jmapserver.pushhub.PushHub`, like the EventSource's.

Authentication is on the handshake ([ws-4-handshake]): the
``Authorization`` header, or, for browsers (which cannot set it), the
``access_token`` query parameter from ``POST /jmap/access-token``.  A
handshake that carries ``Origin`` comes from a browser, which may attach
cached HTTP credentials to a cross-site page's connection by itself: such
a handshake must bring an access token ([ws-5-security]).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import falcon
import falcon.asgi
import falcon.errors
import msgspec
from msgspec import UNSET, Struct, UnsetType

from jmapcore.api import Core, HttpResult
from jmapcore.auth import Principal
from jmapcore.errors import ProblemError
from jmapcore.push import PushFeed
from jmapcore.wire import encode

from .eventsource import push_principal
from .pushhub import PushHub, PushStream

log = logging.getLogger(__name__)

WEBSOCKET = "urn:ietf:params:jmap:websocket"
SUBPROTOCOL = "jmap"
WEBSOCKET_PATH = "/jmap/ws"

#: Requests up to this size run on the event loop (as ApiResource does).
INLINE_REQUEST = 64 * 1024

#: RFC 6455 close codes.
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_INTERNAL_ERROR = 1011
#: Falcon's convention for a refused handshake: 3000 + the HTTP status.
CLOSE_UNAUTHORIZED = 3401
CLOSE_BAD_REQUEST = 3400


def websocket_url(base_url: str) -> str:
    """The ``wss://`` (or ``ws://`` for plain HTTP) endpoint under ``base_url``."""
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://"):]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://"):]
    return base + WEBSOCKET_PATH


def websocket_capability(base_url: str) -> dict[str, Any]:
    """[ws-3-capability] the session's ``urn:ietf:params:jmap:websocket``."""
    return {"url": websocket_url(base_url), "supportsPush": True}


class _Envelope(Struct):
    """What every message is read for first: its ``@type`` and ``id``."""

    type: str | UnsetType = msgspec.field(name="@type", default=UNSET)
    id: str | None | UnsetType = UNSET


class _PushEnable(Struct):
    """[ws-4.3.5.2-enable]; ``dataTypes`` null (or absent) means every type."""

    dataTypes: list[str] | None = None
    pushState: str | None | UnsetType = UNSET


_envelope_decoder = msgspec.json.Decoder(_Envelope)
_push_enable_decoder = msgspec.json.Decoder(_PushEnable)


def _spliced(head: dict[str, Any], body: bytes) -> str:
    """``head``'s members followed by those of the JSON object ``body``,
    without decoding ``body`` (a response may be large)."""
    prefix = encode(head)[:-1]  # '{"@type":...' without its closing brace
    rest = body.lstrip()[1:]  # the body's members and its closing brace
    if rest.lstrip()[:1] == b"}":
        return (prefix + b"}").decode("utf-8")
    return (prefix + b"," + rest).decode("utf-8")


def request_error(request_id: str | None, error: ProblemError) -> str:
    """[ws-4.3.4-requestError] a problem as a RequestError message."""
    return _spliced({"@type": "RequestError", "requestId": request_id}, encode(error.to_dict()))


def response_message(request_id: str | None, result: HttpResult) -> str:
    """[ws-4.3.3-response] a core result as a Response (or RequestError) message."""
    if result.status != 200:
        return _spliced({"@type": "RequestError", "requestId": request_id}, result.body)
    head: dict[str, Any] = {"@type": "Response"}
    if request_id is not None:
        head["requestId"] = request_id
    return _spliced(head, result.body)


async def websocket_principal(core: Core, req: falcon.asgi.Request) -> Principal | None:
    """[ws-4-handshake] [ws-5-security] who opens the connection.

    Non-browser clients send ``Authorization``.  A browser handshake (one
    with ``Origin``) must use an ``access_token``: credentials a browser
    attached on its own could come from any site's page.
    """
    if req.get_header("Origin") is None:
        return await push_principal(core, req)
    token = req.get_param("access_token")
    return core.access_tokens.check(token) if token else None


class WebSocketResource:
    """``/jmap/ws``: see the module docstring."""

    def __init__(self, core: Core, hub: PushHub) -> None:
        self.core = core
        self.hub = hub

    async def on_websocket(self, req: falcon.asgi.Request, ws: falcon.asgi.WebSocket) -> None:
        # Closing before accept() refuses the handshake (the client gets a 403).
        principal = await websocket_principal(self.core, req)
        if principal is None:
            await ws.close(CLOSE_UNAUTHORIZED)
            return
        if SUBPROTOCOL not in ws.subprotocols:  # [ws-4-handshake] jmap or nothing
            await ws.close(CLOSE_BAD_REQUEST)
            return
        await ws.accept(subprotocol=SUBPROTOCOL)
        await Connection(self.core, self.hub, principal, ws).run()


class Connection:
    """One open WebSocket: requests in, responses and pushes out."""

    def __init__(
        self, core: Core, hub: PushHub, principal: Principal, ws: falcon.asgi.WebSocket
    ) -> None:
        self.core = core
        self.hub = hub
        self.principal = principal
        self.ws = ws
        self._send_lock = asyncio.Lock()
        #: [ws-5-security] the concurrency limit, applied per connection by
        #: backpressure (the core's own gate counts across connections).
        self._slots = asyncio.Semaphore(max(1, core.limits.maxConcurrentRequests))
        self._requests: set[asyncio.Task[None]] = set()
        self._push: asyncio.Task[None] | None = None

    async def run(self) -> None:
        try:
            while True:
                try:
                    text = await self.ws.receive_text()
                except falcon.errors.PayloadTypeError:
                    # [ws-4.3.1-invalid] binary frames are not JMAP messages.
                    await self.ws.close(CLOSE_UNSUPPORTED_DATA, "JMAP messages are text frames.")
                    return
                await self.handle(text)
        except falcon.errors.WebSocketDisconnected:
            pass
        except Exception:  # never a traceback on the wire; the worker goes on
            log.exception("WebSocket connection failed")
            with contextlib.suppress(Exception):
                await self.ws.close(CLOSE_INTERNAL_ERROR)
        finally:
            await self._stop_push()
            for task in list(self._requests):
                task.cancel()

    async def send(self, message: str) -> None:
        """One whole message at a time; a client that stops reading holds
        the senders here (the transport's buffer is bounded)."""
        async with self._send_lock:
            await self.ws.send_text(message)

    async def handle(self, text: str) -> None:
        """One text message ([ws-4.3-textFrames])."""
        body = text.encode("utf-8")
        cap = self.core.limits.maxSizeRequest
        if len(body) > cap:  # [ws-5-security] the HTTP endpoint's limit
            error = ProblemError.limit("maxSizeRequest", f"The request is larger than {cap} octets.")
            return await self.send(request_error(None, error))
        try:
            envelope = _envelope_decoder.decode(body)
        except msgspec.ValidationError as ex:
            return await self.send(
                request_error(None, ProblemError.not_request(f"Not a JMAP WebSocket message: {ex}."))
            )
        except (msgspec.DecodeError, RecursionError):
            return await self.send(
                request_error(None, ProblemError.not_json("The message is not valid JSON."))
            )
        request_id = envelope.id if isinstance(envelope.id, str) else None
        kind = envelope.type
        if kind == "Request":
            await self._slots.acquire()
            if len(body) <= INLINE_REQUEST:
                try:
                    result = self.core.api(self.principal, body)
                finally:
                    self._slots.release()
                await self.send(response_message(request_id, result))
            else:
                task = asyncio.create_task(self._threaded_request(request_id, body))
                self._requests.add(task)
                task.add_done_callback(self._requests.discard)
        elif kind == "WebSocketPushEnable":
            try:
                enable = _push_enable_decoder.decode(body)
            except msgspec.DecodeError as ex:
                return await self.send(
                    request_error(request_id, ProblemError.not_request(f"Invalid WebSocketPushEnable: {ex}."))
                )
            await self._start_push(enable)
        elif kind == "WebSocketPushDisable":
            await self._stop_push()
        else:
            # [ws-4.3.1-invalid] a message we do not know.
            await self.send(
                request_error(
                    request_id,
                    ProblemError.not_request(
                        "@type must be Request, WebSocketPushEnable or WebSocketPushDisable."
                    ),
                )
            )

    async def _threaded_request(self, request_id: str | None, body: bytes) -> None:
        """A large request, off the event loop; the slot was taken for it."""
        try:
            result = await asyncio.to_thread(self.core.api, self.principal, body)
        finally:
            self._slots.release()
        with contextlib.suppress(falcon.errors.WebSocketDisconnected):
            await self.send(response_message(request_id, result))

    # -- push ([ws-4.3.5.2-enable] [ws-4.3.5.3-disable]) ---------------------

    async def _start_push(self, enable: _PushEnable) -> None:
        """Replace any push in progress.  The feed's starting position is
        read before the next message is, so a change the client makes after
        a later Request's Response is never missed."""
        await self._stop_push()
        since = enable.pushState if isinstance(enable.pushState, str) else None
        feed = await asyncio.to_thread(PushFeed, self.core, self.principal, enable.dataTypes, since)
        stream = PushStream(self.hub, feed)
        self._push = asyncio.create_task(self._pushes(stream))

    async def _stop_push(self) -> None:
        task, self._push = self._push, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _pushes(self, stream: PushStream) -> None:
        """[ws-4.3.5.1-stateChange] StateChange objects with ``pushState``."""
        try:
            if stream.feed.resumed:  # what the client missed, at once
                change = await stream.poll()
                if change is not None:
                    await self._send_change(stream, change)
            while True:
                change = await stream.next_change(None)
                if change is not None:
                    await self._send_change(stream, change)
        except falcon.errors.WebSocketDisconnected:
            pass
        finally:
            stream.close()

    async def _send_change(self, stream: PushStream, change: dict[str, Any]) -> None:
        change["pushState"] = stream.feed.push_state()
        await self.send(encode(change).decode("utf-8"))
