"""Header values for blob downloads ([core-6.2-download]).

Kept apart from the resource so the quoting rules (RFC 6266 / RFC 8187) and
the Range grammar (RFC 9110 §14) can be tested on their own.
"""

from __future__ import annotations

import re
from urllib.parse import quote

DEFAULT_TYPE = "application/octet-stream"

_TOKEN = r"[A-Za-z0-9!#$&^_.+-]+"
_MIME = re.compile(
    rf"{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|\"[^\"\\\x00-\x1f\x7f]*\"))*"
)
_UNSAFE_FALLBACK = re.compile(r'[^\x20-\x7e]|["\\%]')
_RANGE = re.compile(r"bytes[ \t]*=[ \t]*(\d*)[ \t]*-[ \t]*(\d*)[ \t]*")


def sanitize_type(value: str | None) -> str:
    """The ``type`` query parameter if it looks like a media type, else octet-stream.

    APPSEC: the value is echoed into a header, so anything beyond the media
    type grammar (CR, LF, odd characters) falls back to the safe default.
    """
    if value and len(value) <= 255 and _MIME.fullmatch(value):
        return value
    return DEFAULT_TYPE


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback and the exact UTF-8 ``filename*``."""
    name = "".join(ch for ch in name if ch >= " " and ch != "\x7f") or "download"
    fallback = _UNSAFE_FALLBACK.sub("_", name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def parse_range(header: str | None) -> tuple[int | None, int | None] | None:
    """A single ``bytes=first-last`` range as (first, last), or None to ignore it.

    ``(None, n)`` is a suffix range (the last ``n`` octets).  Several ranges
    or a malformed value are ignored and the whole blob is sent, which
    RFC 9110 §14.2 allows.
    """
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:
        return None, int(last)
    start = int(first)
    end = int(last) if last else None
    if end is not None and end < start:
        return None
    return start, end


def resolve_range(wanted: tuple[int | None, int | None], size: int) -> tuple[int, int] | None:
    """(offset, length) of a parsed range within ``size`` octets, or None (→ 416)."""
    first, last = wanted
    if first is None:
        assert last is not None
        if last == 0 or size == 0:
            return None
        length = min(last, size)
        return size - length, length
    if first >= size:
        return None
    end = size - 1 if last is None else min(last, size - 1)
    return first, end - first + 1
