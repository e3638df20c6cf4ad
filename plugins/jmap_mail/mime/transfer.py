"""Content-Transfer-Encoding: naming and decoding, tolerant of the spellings found in
the wild (``7-bit``, ``8bits``, ``quoted printable``, a trailing ``;``).

Decoding uses ``binascii`` (C speed, so a part's size can be computed by decoding it).
Unknown encodings are passed through unchanged and flagged, as RFC 8621 asks.
"""

from __future__ import annotations

import binascii
import re

IDENTITY, BASE64, QUOTED_PRINTABLE, UNKNOWN = "identity", "base64", "quoted-printable", "unknown"

_CLEAN = re.compile(r"[^a-z0-9]")
_NAMES = {
    "": IDENTITY, "7bit": IDENTITY, "7bits": IDENTITY, "8bit": IDENTITY, "8bits": IDENTITY,
    "binary": IDENTITY, "6bit": IDENTITY, "plain": IDENTITY, "none": IDENTITY, "text": IDENTITY,
    "base64": BASE64, "xbase64": BASE64, "b64": BASE64,
    "quotedprintable": QUOTED_PRINTABLE, "qp": QUOTED_PRINTABLE, "quoted": QUOTED_PRINTABLE,
}
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NOT_B64 = bytes(b for b in range(256) if b not in _B64_ALPHABET)
_B64_BLANKS = b" \t\r\n="


def classify(raw_value: str | None) -> str:
    """The CTE family of a Content-Transfer-Encoding Raw value."""
    if raw_value is None:
        return IDENTITY
    value = raw_value.split(";", 1)[0].split("(", 1)[0].strip().lower()
    return _NAMES.get(_CLEAN.sub("", value), UNKNOWN)


def decode_base64(data: bytes) -> tuple[bytes, bool]:
    """Lenient base64: junk and padding ignored, a dangling sixth bit dropped.
    Returns (octets, had_problem)."""
    clean = data.translate(None, _NOT_B64)
    problem = len(clean) % 4 == 1 or bool(data.translate(None, _B64_ALPHABET + _B64_BLANKS))
    if len(clean) % 4 == 1:
        clean = clean[:-1]
    clean += b"=" * (-len(clean) % 4)
    try:
        return binascii.a2b_base64(clean), problem
    except binascii.Error:
        return b"", True


def decode_quoted_printable(data: bytes) -> bytes:
    """Quoted-printable; malformed ``=`` sequences stay literal, soft breaks (CRLF or LF) go."""
    return binascii.a2b_qp(data)


def decode(data: bytes, family: str) -> tuple[bytes, bool]:
    """(decoded octets, encoding problem) for a CTE family."""
    if family == BASE64:
        return decode_base64(data)
    if family == QUOTED_PRINTABLE:
        return decode_quoted_printable(data), False
    return data, family == UNKNOWN


def decoded_prefix(data: bytes, family: str, limit: int) -> bytes:
    """Roughly the first ``limit`` decoded octets, decoding only what is needed
    (for previews of big parts)."""
    if len(data) <= limit:
        return decode(data, family)[0]
    if family == BASE64:
        clean = data[: limit * 2].translate(None, _NOT_B64)
        clean = clean[: len(clean) - len(clean) % 4]
        return decode_base64(clean)[0]
    if family == QUOTED_PRINTABLE:
        chunk = data[:limit]
        cut = chunk.rfind(b"=", len(chunk) - 2)
        return binascii.a2b_qp(chunk[:cut] if cut >= 0 else chunk)
    return data[:limit]
