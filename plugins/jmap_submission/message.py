"""Reading and preparing the octets of a message about to be sent.

Works on the raw bytes: the header block is read with the standard
library's ``email`` parser (for addresses), and the bytes that leave are the
stored ones with three changes only: ``Bcc`` fields removed
[mail-7.5-send], ``Date`` and ``Message-ID`` added when missing (RFC 5322
wants both; RFC 8621 lets the server alter headers per policy), and line
ends made CRLF for SMTP.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from email import policy
from email.parser import BytesHeaderParser
from email.utils import format_datetime

_PARSER = BytesHeaderParser(policy=policy.default)

#: local@domain, as an SMTP mailbox (no display names, no comments).
_MAILBOX = re.compile(r"[^\s@<>()\[\],;:\\\"]{1,64}@[^\s@<>()\[\],;:\\\"]{1,253}")
_DOMAIN = re.compile(r"(?:[A-Za-z0-9\u0080-\U0010ffff](?:[A-Za-z0-9\u0080-\U0010ffff-]*[A-Za-z0-9\u0080-\U0010ffff])?\.?)+|\[[0-9A-Fa-f:.]+\]")
_EOL = re.compile(rb"\r?\n")


def valid_mailbox(address: str) -> bool:
    """A syntactically usable SMTP mailbox (``local@domain``)."""
    if not _MAILBOX.fullmatch(address):
        return False
    domain = address.rpartition("@")[2]
    return bool(_DOMAIN.fullmatch(domain))


def normalize(address: str) -> str:
    """An address as compared: the domain case-folded (the local part is the
    recipient's to interpret, RFC 5321 §2.4)."""
    local, _, domain = address.strip().rpartition("@")
    return f"{local}@{domain.lower()}"


def header_end(raw: bytes) -> int:
    """Where the header block ends (the index of the empty line's first
    byte), or ``len(raw)`` for a message without a body."""
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    if raw.startswith((b"\r\n", b"\n")):
        return 0
    return min(ends) + (2 if raw[min(ends):min(ends) + 2] == b"\r\n" else 1) if ends else len(raw)


def _field_name(line: bytes) -> bytes:
    return line.split(b":", 1)[0].strip().lower()


def strip_fields(raw: bytes, names: frozenset[bytes]) -> bytes:
    """The message without the header fields named (lower case), their
    continuation lines included; the body untouched."""
    end = header_end(raw)
    kept: list[bytes] = []
    skipping = False
    for line in raw[:end].splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                kept.append(line)
            continue
        skipping = _field_name(line) in names
        if not skipping:
            kept.append(line)
    return b"".join(kept) + raw[end:]


def has_field(raw: bytes, name: bytes) -> bool:
    end = header_end(raw)
    return any(
        _field_name(line) == name
        for line in raw[:end].splitlines()
        if line[:1] not in (b" ", b"\t")
    )


def outgoing(raw: bytes, *, domain: str | None = None, now: datetime | None = None) -> bytes:
    """The octets sent to the relay: no ``Bcc`` [mail-7.5-send], a ``Date``
    and a ``Message-ID`` if there were none, CRLF line ends."""
    data = strip_fields(raw, frozenset({b"bcc"}))
    added = b""
    if not has_field(data, b"date"):
        added += b"Date: " + format_datetime(now or datetime.now(UTC)).encode("ascii") + b"\r\n"
    if not has_field(data, b"message-id"):
        host = domain or "localhost"
        added += f"Message-ID: <{secrets.token_hex(16)}@{host}>\r\n".encode("ascii", "replace")
    return _EOL.sub(b"\r\n", added + data)


class Headers:
    """The address fields of a message's header block."""

    def __init__(self, raw: bytes) -> None:
        self.message = _PARSER.parsebytes(raw[: header_end(raw)] + b"\r\n")

    def count(self, name: str) -> int:
        return sum(1 for key, _ in self.message.raw_items() if key.lower() == name.lower())

    def addresses(self, name: str) -> list[str]:
        """Every address (addr-spec) of every field of that name, groups
        flattened; an unparsable field gives what could be read.  Octets
        that are not UTF-8 become U+FFFD (never an invalid string in a
        SetError's description)."""
        found: list[str] = []
        try:
            values = self.message.get_all(name) or []
        except Exception:  # noqa: BLE001 - the stdlib's parser raises on some junk
            values = []
        for value in values:
            try:
                found.extend(a.addr_spec for a in getattr(value, "addresses", ()) if a.addr_spec)
            except (IndexError, ValueError, TypeError):  # defective header
                continue
        return [a.strip("<>").encode("utf-8", "surrogateescape").decode("utf-8", "replace") for a in found]
