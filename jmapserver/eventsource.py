"""Push over EventSource ([core-7.3-sse]) and the access tokens browsers need.

``GET /jmap/eventsource/?types=*&closeafter=no&ping=30`` answers
``text/event-stream``: a ``state`` event with a StateChange whenever a type
the client listens to moves in any of its accounts, each followed by an
``id`` naming the state reached ([core-7.3-eventId]), so that a reconnecting
browser's ``Last-Event-ID`` makes us send what it missed at once.

A browser's ``EventSource`` cannot send ``Authorization``: a client first
``POST``\\ s to ``/jmap/access-token`` (authenticated) and then adds
``&access_token=...`` to the URL.  Such a token lives ten minutes, is only
good for opening push connections, and dies with the password or bearer
token it was issued under.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import falcon
import falcon.asgi

from jmapcore.api import Core
from jmapcore.auth import Principal
from jmapcore.push import PushFeed
from jmapcore.wire import encode

from .credentials import authenticate
from .problems import write_http_problem, write_unauthorized
from .pushhub import PushHub, PushStream

#: [core-7.3-ping] what we clamp ``ping`` to: the RFC asks for a minimum of
#: at most 30 s and a maximum of at least 300 s.
PING_MIN, PING_MAX = 5, 300
#: With no pings asked for, a comment this often notices clients that left
#: (falcon finds a closed connection only when it writes to it).
KEEPALIVE_SECONDS = 60.0


class EventSourceRequestError(ValueError):
    """A query parameter we cannot honour (answered with a 400 problem)."""


def parse_types(value: str | None) -> frozenset[str] | None:
    """[core-7.3-types] ``*`` (or absent): every type; else a comma list."""
    if value is None or value.strip() in ("", "*"):
        return None
    return frozenset(name.strip() for name in value.split(",") if name.strip())


def parse_closeafter(value: str | None) -> bool:
    """[core-7.3-closeafter] True for ``state``."""
    if value is None or value in ("", "no"):
        return False
    if value == "state":
        return True
    raise EventSourceRequestError("closeafter must be 'state' or 'no'.")


def parse_ping(value: str | None) -> int:
    """[core-7.3-ping] the interval used: 0 (none) or clamped to a sane range."""
    if value is None or value == "":
        return 0
    if not value.isdigit() or len(value) > 9:
        raise EventSourceRequestError("ping must be a whole number of seconds.")
    seconds = int(value)
    return 0 if seconds == 0 else min(max(seconds, PING_MIN), PING_MAX)


async def push_principal(core: Core, req: falcon.asgi.Request) -> Principal | None:
    """Who opens a push connection: the ``Authorization`` header, or an
    ``access_token`` query parameter (browsers)."""
    principal = await authenticate(core, req.get_header("Authorization"))
    if principal is not None:
        return principal
    token = req.get_param("access_token")
    return core.access_tokens.check(token) if token else None


class AccessTokenResource:
    """``POST /jmap/access-token``: a short-lived token for push URLs."""

    def __init__(self, core: Core) -> None:
        self.core = core

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        principal = await authenticate(self.core, req.get_header("Authorization"))
        if principal is None:
            return write_unauthorized(resp)
        token, expires = self.core.access_tokens.issue(principal)
        resp.content_type = "application/json"
        resp.set_header("Cache-Control", "no-store")
        resp.data = encode(
            {
                "accessToken": token,
                "expires": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)),
            }
        )

    async def on_options(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.status = 204


class EventSourceResource:
    """[core-7.3-sse] ``GET eventSourceUrl``."""

    def __init__(self, core: Core, hub: PushHub) -> None:
        self.core = core
        self.hub = hub

    async def on_options(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.status = 204

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        principal = await push_principal(self.core, req)
        if principal is None:
            return write_unauthorized(resp)
        try:
            types = parse_types(req.get_param("types"))
            close_after_state = parse_closeafter(req.get_param("closeafter"))
            ping = parse_ping(req.get_param("ping"))
        except EventSourceRequestError as ex:
            return write_http_problem(resp, 400, str(ex))
        feed = PushFeed(self.core, principal, types, since=req.get_header("Last-Event-ID"))
        resp.set_header("Cache-Control", "no-cache, no-store")
        resp.set_header("X-Accel-Buffering", "no")  # a proxy must not sit on the events
        resp.sse = self._events(PushStream(self.hub, feed), ping, close_after_state)

    async def _events(
        self, stream: PushStream, ping: int, close_after_state: bool
    ) -> AsyncIterator[falcon.asgi.SSEvent]:
        try:
            # Open the stream at once (headers and a first line), so a
            # client knows it is subscribed before anything changes.
            yield falcon.asgi.SSEvent(comment="jmap push", retry=5000)
            if stream.feed.resumed:  # [core-7.3-eventId] what it missed
                change = await stream.poll()
                if change is not None:
                    yield _state_event(change, stream.feed.push_state())
                    if close_after_state:
                        return
            wait = float(ping) if ping else KEEPALIVE_SECONDS
            while True:
                change = await stream.next_change(wait)
                if stream.closed:
                    return  # the worker is stopping; the client reconnects elsewhere
                if change is None:
                    if ping:
                        # [core-7.3-ping] no id: a ping must not move Last-Event-ID.
                        yield falcon.asgi.SSEvent(event="ping", data=encode({"interval": ping}))
                    else:
                        yield falcon.asgi.SSEvent(comment="keepalive")
                    continue
                yield _state_event(change, stream.feed.push_state())
                if close_after_state:
                    return
        finally:
            stream.close()


def _state_event(change: dict[str, object], position: str) -> falcon.asgi.SSEvent:
    return falcon.asgi.SSEvent(event="state", data=encode(change), event_id=position)
