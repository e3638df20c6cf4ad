"""Reading request bodies without ever holding more than a cap.

A declared ``Content-Length`` over the cap is refused before a byte is read;
a chunked body is read only up to ``cap + 1`` octets, which is enough to know
that it is too large ([core-8.5-limits]).
"""

from __future__ import annotations

import falcon.asgi


async def read_capped(req: falcon.asgi.Request, cap: int) -> bytes | None:
    """The whole body, or None when it is larger than ``cap`` octets."""
    length = req.content_length
    if length is not None and length > cap:
        return None
    if length == 0:
        return b""
    data = await req.stream.read(cap + 1)
    if len(data) > cap:
        return None
    return data
