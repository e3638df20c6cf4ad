"""Splitting a header block into fields, straight from the message octets.

Works on bytes with explicit offsets so a body part's content can later be served
as a byte range of the stored message. Tolerates bare LF, obsolete ``Name :``,
8-bit (RFC 6532) values, NULs, a missing blank line and a missing header block.
"""

from __future__ import annotations

import re

# field-name *WSP ":" value *(line-end WSP continuation); "." never crosses "\n",
# so each line is scanned once (no catastrophic backtracking).
_FIELD = re.compile(rb"([!-9;-~]+)[ \t]*:([^\n]*(?:\n[ \t][^\n]*)*)(?:\n|\Z)")
MAX_FIELDS = 10_000  # per header block; further lines are treated as body

RawField = tuple[str, bytes]


def split_header_block(raw: bytes, start: int, end: int) -> tuple[list[RawField], int]:
    """Fields in [start, end) as (name, raw value octets) and the body's start offset.

    The raw value is everything after the colon up to, not including, the final
    line ending of the field (folds stay in) - the Raw form before decoding.
    """
    fields: list[RawField] = []
    pos = start
    match = _FIELD.match
    while len(fields) < MAX_FIELDS:
        found = match(raw, pos, end)
        if found is None or found.end() == pos:
            break
        value = found.group(2)
        if value.endswith(b"\r"):
            value = value[:-1]
        fields.append((found.group(1).decode("ascii"), value))
        pos = found.end()
    if raw.startswith(b"\r\n", pos, end):
        pos += 2
    elif raw.startswith(b"\n", pos, end):
        pos += 1
    return fields, pos


def raw_text(value: bytes) -> str:
    """The Raw form ([mail-4.1.2.1-raw]): NULs dropped, invalid UTF-8 as U+FFFD."""
    if b"\x00" in value:
        value = value.replace(b"\x00", b"")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("utf-8", "replace")


def decode_fields(fields: list[RawField]) -> list[tuple[str, str]]:
    """(name, Raw form) for each field, in message order ([mail-4.1.3-headers])."""
    return [(name, raw_text(value)) for name, value in fields]


def unfold(value: str) -> str:
    """Remove folding line breaks (CRLF or bare LF followed by WSP keeps the WSP)."""
    if "\n" not in value:
        return value
    return value.replace("\r\n", "").replace("\n", "").replace("\r", "")
