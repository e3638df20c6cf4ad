"""HTTP authentication: ``Authorization`` header → :class:`Principal`.

[core-8.2-authScheme] Every endpoint requires Basic (user:password, UTF-8)
or Bearer (a token made by ``jmapcore token create``).  Password checks run
scrypt, which takes tens of milliseconds by design, so a cache miss is sent
to a thread; a cached hit is answered on the event loop.
"""

from __future__ import annotations

import asyncio
import binascii

from jmapcore.api import Core
from jmapcore.auth import Principal

_MAX_HEADER = 4096


def parse_basic(value: str) -> tuple[str, str] | None:
    """``user:password`` from the base64 part of a Basic header, or None."""
    try:
        decoded = binascii.a2b_base64(value.strip().encode("ascii"), strict_mode=True)
        text = decoded.decode("utf-8")
    except (ValueError, UnicodeError):
        return None
    user, sep, password = text.partition(":")
    if not sep or not user:
        return None
    return user, password


async def authenticate(core: Core, header: str | None) -> Principal | None:
    """The principal the ``Authorization`` header proves, or None (→ 401)."""
    if not header or len(header) > _MAX_HEADER:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        token = credentials.strip()
        # A token lookup is one hash and one indexed read: cheap enough for the loop.
        return core.authenticator.token(token) if token else None
    if scheme != "basic":
        return None
    pair = parse_basic(credentials)
    if pair is None:
        return None
    authenticator = core.authenticator
    cached = authenticator.peek_password(*pair)
    if cached is not None:
        return cached
    # PERF: scrypt would stall every other request on this worker's loop.
    return await asyncio.to_thread(authenticator.password, *pair)
