"""The falcon ASGI app: HTTP in, :class:`~jmapcore.api.Core` calls, HTTP out.

No JMAP semantics live here ([DESIGN: the HTTP front]): the core decides
what a request means and the app only authenticates, caps body sizes, moves
bytes and finishes responses (CORS, gzip; see :mod:`.middleware`).

Routes::

    GET  /.well-known/jmap, /jmap/session     the session resource
    POST /jmap/api/                           the API endpoint
    POST /jmap/upload/{accountId}/            blob upload
    GET  /jmap/download/{accountId}/{blobId}/{name}?type=   blob download
    GET  /jmap/eventsource/?types=&closeafter=&ping=   push (see .eventsource)
    POST /jmap/access-token                   a short-lived token for push URLs
    GET  /jmap/ws  (WebSocket, subprotocol jmap)  JMAP over WebSocket (see .websocket)
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from typing import Any
from urllib.parse import unquote

import falcon
import falcon.asgi

from jmapcore.api import Core
from jmapcore.auth import Principal
from jmapcore.errors import ProblemError
from jmapcore.wire import encode

from .bodies import read_capped
from .credentials import authenticate
from .downloads import content_disposition, parse_range, resolve_range, sanitize_type
from .eventsource import AccessTokenResource, EventSourceResource
from .middleware import ResponseFinisher
from .problems import (
    request_too_large,
    server_fail,
    upload_too_large,
    write_http_problem,
    write_problem,
    write_result,
    write_unauthorized,
)
from .pushhub import PushHub
from .websocket import WEBSOCKET, WebSocketResource, websocket_capability

log = logging.getLogger(__name__)

#: API bodies up to this size run on the event loop: the core is fast and a
#: thread hop would cost more than the call ([PERF] the Core/echo target).
INLINE_API_BODY = 64 * 1024

SESSION_CACHE_CONTROL = "no-cache, no-store, must-revalidate"  # [core-2-noCache]
DOWNLOAD_CACHE_CONTROL = "private, immutable, max-age=31536000"  # [core-6.2-download]

_NETLOC = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")


class BaseUrl:
    """Where this server is reachable, for the session's URL templates.

    A fixed ``base_url`` (from the configuration) wins; otherwise the
    request's scheme and Host, or ``X-Forwarded-Proto``/``-Host`` when the
    operator said a trusted proxy sets them (else a client could make the
    session point anywhere).
    """

    def __init__(self, fixed: str | None = None, trust_forwarded: bool = False) -> None:
        self.fixed = fixed.rstrip("/") if fixed else None
        self.trust_forwarded = trust_forwarded

    def __call__(self, req: falcon.asgi.Request) -> str:
        if self.fixed:
            return self.fixed
        scheme, netloc = req.scheme, req.netloc
        if self.trust_forwarded:
            proto = (req.get_header("X-Forwarded-Proto") or "").split(",")[0].strip().lower()
            host = (req.get_header("X-Forwarded-Host") or "").split(",")[0].strip()
            if proto in ("http", "https"):
                scheme = proto
            if host:
                netloc = host
        if not _NETLOC.fullmatch(netloc):
            netloc = "localhost"
        return f"{scheme}://{netloc}{req.root_path}"


class _Endpoint:
    """Shared by the resources: the core, and a CORS preflight answer."""

    def __init__(self, core: Core, base_url: BaseUrl) -> None:
        self.core = core
        self.base_url = base_url

    async def principal(self, req: falcon.asgi.Request) -> Principal | None:
        return await authenticate(self.core, req.get_header("Authorization"))

    async def on_options(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, **params: str
    ) -> None:
        """CORS preflight: no credentials needed; the headers come from the middleware."""
        resp.status = 204


class SessionResource(_Endpoint):
    """[core-2-sessionGet] [core-2.2-wellKnown], with the WebSocket
    capability ([ws-3-capability]): its URL depends on how the client
    reached us, so the front adds it."""

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        principal = await self.principal(req)
        if principal is None:
            return write_unauthorized(resp)
        base = self.base_url(req)
        session = self.core.session(
            principal, base, transport_capabilities={WEBSOCKET: websocket_capability(base)}
        )
        resp.content_type = "application/json"
        resp.data = encode(session)
        resp.set_header("Cache-Control", SESSION_CACHE_CONTROL)


class ApiResource(_Endpoint):
    """[core-3.1-post] one Request in, one Response out."""

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        principal = await self.principal(req)
        if principal is None:
            return write_unauthorized(resp)
        core = self.core
        cap = core.limits.maxSizeRequest
        body = await read_capped(req, cap)
        if body is None:
            return write_problem(resp, request_too_large(cap))
        if len(body) <= INLINE_API_BODY:
            result = core.api(principal, body, req.content_type)
        else:
            result = await asyncio.to_thread(core.api, principal, body, req.content_type)
        write_result(resp, result)


class UploadResource(_Endpoint):
    """[core-6.1-upload]"""

    async def on_post(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, account_id: str
    ) -> None:
        principal = await self.principal(req)
        if principal is None:
            return write_unauthorized(resp)
        cap = self.core.limits.maxSizeUpload
        data = await read_capped(req, cap)
        if data is None:
            return write_problem(resp, upload_too_large(cap))
        result = await asyncio.to_thread(
            self.core.upload, principal, account_id, data, req.content_type
        )
        write_result(resp, result)


def _download_path(req: falcon.asgi.Request) -> tuple[str, str, str] | None:
    """(accountId, blobId, name) from the *raw* path.

    The name is percent-decoded only here, after splitting, so a name that
    contains an encoded ``/`` still reaches us in one piece.
    """
    raw = req.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else req.path
    parts = path.split("?", 1)[0].split("/")
    # ['', 'jmap', 'download', accountId, blobId, name...]
    if len(parts) < 6 or not parts[3] or not parts[4]:
        return None
    account_id, blob_id = unquote(parts[3]), unquote(parts[4])
    name = unquote("/".join(parts[5:]), errors="replace")
    return account_id, blob_id, name


def _fetch(
    core: Core, principal: Principal, account_id: str, blob_id: str, range_header: str | None
) -> tuple[int, bytes, int, tuple[int, int] | None] | None:
    """(status, bytes, full size, served range) of a download, or None (404).

    Runs in a thread: a blob may be large and its read is blocking I/O.
    """
    wanted = parse_range(range_header)
    if wanted is None:
        found = core.download(principal, account_id, blob_id)
        return None if found is None else (200, found[0], found[1], None)
    probe = core.download(principal, account_id, blob_id, 0, 0)
    if probe is None:
        return None
    size = probe[1]
    span = resolve_range(wanted, size)
    if span is None:
        return 416, b"", size, None
    found = core.download(principal, account_id, blob_id, span[0], span[1])
    if found is None:
        return None
    return 206, found[0], size, (span[0], span[0] + len(found[0]) - 1)


class DownloadSink(_Endpoint):
    """[core-6.2-download] a sink, so the name is parsed from the raw path."""

    async def handle(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, **params: Any
    ) -> None:
        if req.method == "OPTIONS":
            return await self.on_options(req, resp)
        if req.method != "GET":
            raise falcon.HTTPMethodNotAllowed(["GET", "OPTIONS"])
        principal = await self.principal(req)
        if principal is None:
            return write_unauthorized(resp)
        parts = _download_path(req)
        if parts is None:
            raise falcon.HTTPNotFound(description="Use /jmap/download/{accountId}/{blobId}/{name}.")
        account_id, blob_id, name = parts
        fetched = await asyncio.to_thread(
            _fetch, self.core, principal, account_id, blob_id, req.get_header("Range")
        )
        if fetched is None:
            return write_problem(
                resp, ProblemError("notFound", 404, "No blob with that id is available to you.")
            )
        status, data, size, span = fetched
        if status == 416:
            write_http_problem(resp, 416, f"The blob is {size} octets long.")
            resp.set_header("Content-Range", f"bytes */{size}")
            return
        resp.status = status
        resp.content_type = sanitize_type(req.get_param("type"))
        resp.data = data
        resp.set_header("Content-Disposition", content_disposition(name))
        resp.set_header("Cache-Control", DOWNLOAD_CACHE_CONTROL)
        resp.set_header("Accept-Ranges", "bytes")
        # APPSEC: the bytes are the uploader's; never let a browser run them as our origin.
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("Content-Security-Policy", "default-src 'none'; sandbox")
        if span is not None:
            resp.set_header("Content-Range", f"bytes {span[0]}-{span[1]}/{size}")


async def _on_http_error(
    req: falcon.asgi.Request,
    resp: falcon.asgi.Response | None,
    ex: falcon.HTTPError,
    params: Any,
    ws: falcon.asgi.WebSocket | None = None,
) -> None:
    """Falcon's own errors (unknown path, wrong verb...) as problem JSON;
    on a WebSocket (``resp`` is None), a close with 3000 + the status."""
    if resp is None:
        if ws is not None:
            await ws.close(3000 + ex.status_code)
        return
    write_http_problem(resp, ex.status_code, ex.description)
    for name, value in (ex.headers or {}).items():
        resp.set_header(name, value)


async def _on_unexpected(
    req: falcon.asgi.Request,
    resp: falcon.asgi.Response | None,
    ex: Exception,
    params: Any,
    ws: falcon.asgi.WebSocket | None = None,
) -> None:
    """Never a traceback on the wire: log it, answer a bare serverFail
    (on a WebSocket, close with 1011)."""
    log.error("unhandled error on %s %s", req.method, req.path, exc_info=ex)
    if resp is None:
        if ws is not None:
            await ws.close(1011)
        return
    write_problem(resp, server_fail())


MAINTENANCE_SECONDS = 3600.0


class _Lifespan:
    """Runs the core's housekeeping hourly in this worker, and closes the
    core when the worker shuts down (ASGI lifespan)."""

    def __init__(self, core: Core, hub: PushHub) -> None:
        self.core = core
        self.hub = hub
        self._task: asyncio.Task[None] | None = None
        self._stopping = threading.Event()
        self._jobs: list[threading.Thread] = []

    def _start_background_jobs(self) -> None:
        """The plugins' long-running jobs, a thread each ([Plugin.background])."""
        for plugin in self.core.registry.plugins.values():
            for job in plugin.background:
                thread = threading.Thread(
                    target=self._run_job, args=(job,), name=f"jmap-job-{plugin.capability}", daemon=True
                )
                thread.start()
                self._jobs.append(thread)

    def _run_job(self, job: Any) -> None:
        try:
            job(self.core, self._stopping)
        except Exception:  # a broken job must not take the worker down
            log.exception("background job %r failed", job)

    async def _maintain(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.core.maintain)
            except Exception:  # housekeeping must never take the worker down
                log.exception("maintenance failed")
            await asyncio.sleep(MAINTENANCE_SECONDS)

    async def process_startup(self, scope: Any, event: Any) -> None:
        self._task = asyncio.create_task(self._maintain())
        self._start_background_jobs()

    async def process_shutdown(self, scope: Any, event: Any) -> None:
        if self._task is not None:
            self._task.cancel()
        self._stopping.set()
        await asyncio.to_thread(self.hub.stop)
        for thread in self._jobs:
            await asyncio.to_thread(thread.join, 5)
        self.core.close()


def create_app(
    core: Core,
    *,
    base_url: str | None = None,
    trust_forwarded: bool = False,
    close_core_on_shutdown: bool = False,
) -> falcon.asgi.App:
    """The ASGI app serving ``core``.

    ``base_url`` fixes the scheme and host of the session's URLs;
    ``trust_forwarded`` honours ``X-Forwarded-Proto``/``-Host`` instead
    (only behind a proxy that sets them).
    """
    hub = PushHub(core.backend)
    middleware: list[Any] = [ResponseFinisher()]
    if close_core_on_shutdown:
        middleware.append(_Lifespan(core, hub))
    app = falcon.asgi.App(middleware=middleware)
    urls = BaseUrl(base_url, trust_forwarded)
    session = SessionResource(core, urls)
    api = ApiResource(core, urls)
    upload = UploadResource(core, urls)
    events = EventSourceResource(core, hub)
    websocket = WebSocketResource(core, hub)
    for path, resource in (
        ("/.well-known/jmap", session),
        ("/jmap/session", session),
        ("/jmap/api/", api),
        ("/jmap/api", api),
        ("/jmap/upload/{account_id}/", upload),
        ("/jmap/upload/{account_id}", upload),
        ("/jmap/eventsource/", events),
        ("/jmap/eventsource", events),
        ("/jmap/access-token", AccessTokenResource(core)),
        ("/jmap/ws", websocket),
        ("/jmap/ws/", websocket),
    ):
        app.add_route(path, resource)
    app.add_sink(DownloadSink(core, urls).handle, r"/jmap/download(?:/|$)")
    app.add_error_handler(Exception, _on_unexpected)
    app.add_error_handler(falcon.HTTPError, _on_http_error)
    return app
