"""Response finishing shared by every endpoint: CORS and gzip.

One middleware with one ``process_response`` (falcon runs it for errors and
unknown paths too), so that a browser client sees
``Access-Control-Allow-Origin`` even on a 401 or a 404.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

import falcon.asgi

ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, Accept, Last-Event-ID"
EXPOSED_HEADERS = "WWW-Authenticate, Content-Disposition, Content-Range, Content-Length"
PREFLIGHT_MAX_AGE = "86400"

#: Bodies smaller than this are not worth a gzip header and a CPU slice.
GZIP_MIN_SIZE = 1024
#: Above this, compression moves off the event loop.
GZIP_THREAD_SIZE = 256 * 1024
_GZIP_LEVEL = 5
_COMPRESSIBLE = ("application/json", "application/problem+json")


def gzip_bytes(data: bytes) -> bytes:
    compressor = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: gzip container
    return compressor.compress(data) + compressor.flush()


def accepts_gzip(header: str | None) -> bool:
    """True when the client lists gzip with a non-zero quality."""
    if not header or "gzip" not in header.lower():
        return False
    for item in header.split(","):
        coding, *params = item.split(";")
        if coding.strip().lower() not in ("gzip", "x-gzip"):
            continue
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False


class ResponseFinisher:
    """Adds CORS headers to every response and gzips large JSON bodies."""

    async def process_response(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        resource: Any,
        req_succeeded: bool,
    ) -> None:
        # Browser clients send credentials in a header, never cookies, so a
        # wildcard origin is safe and needs no ``Vary: Origin``.
        resp.set_header("Access-Control-Allow-Origin", "*")
        if req.method == "OPTIONS":
            resp.set_header("Access-Control-Allow-Methods", ALLOWED_METHODS)
            resp.set_header("Access-Control-Allow-Headers", ALLOWED_HEADERS)
            resp.set_header("Access-Control-Max-Age", PREFLIGHT_MAX_AGE)
            return
        resp.set_header("Access-Control-Expose-Headers", EXPOSED_HEADERS)
        content_type = resp.content_type
        if content_type is None or not content_type.startswith(_COMPRESSIBLE):
            return
        resp.append_header("Vary", "Accept-Encoding")
        data = resp.data
        if (
            data is None
            or len(data) < GZIP_MIN_SIZE
            or resp.status_code == 206
            or not accepts_gzip(req.get_header("Accept-Encoding"))
        ):
            return
        if len(data) > GZIP_THREAD_SIZE:
            resp.data = await asyncio.to_thread(gzip_bytes, data)
        else:
            resp.data = gzip_bytes(data)
        resp.set_header("Content-Encoding", "gzip")
