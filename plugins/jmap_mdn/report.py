"""RFC 8098 message disposition notifications: read one, write one.

Pure functions over octets, no storage: :func:`read_report` turns the
fields of a ``message/disposition-notification`` part into MDN properties,
:func:`build_report` makes the ``multipart/report`` message MDN/send sends.
"""

from __future__ import annotations

import quopri
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime, formataddr, make_msgid
from typing import Any

ACTION_MODES = ("manual-action", "automatic-action")
SENDING_MODES = ("mdn-sent-manually", "mdn-sent-automatically")
TYPES = ("deleted", "dispatched", "displayed", "processed")
#: How RFC 8098 spells the sending modes (they are case-insensitive on the wire).
_SENDING_SPELLING = {"mdn-sent-manually": "MDN-sent-manually", "mdn-sent-automatically": "MDN-sent-automatically"}

REPORT_TYPES = frozenset({"message/disposition-notification", "message/global-disposition-notification"})

#: Fields RFC 8098 §3.2 defines, by lowercase name; any other is an extension field.
_KNOWN = {
    "reporting-ua": "reportingUA",
    "mdn-gateway": "mdnGateway",
    "original-recipient": "originalRecipient",
    "final-recipient": "finalRecipient",
    "original-message-id": "originalMessageId",
    "disposition": "disposition",
    "error": "error",
}
_FIELD = re.compile(rb"^([!-9;-~]+)[ \t]*:(.*)$")
_DISPOSITION = re.compile(
    r"^\s*([A-Za-z-]+)\s*/\s*([A-Za-z-]+)\s*;\s*([A-Za-z-]+)\s*(?:/\s*(.*?))?\s*$"
)
MAX_FIELDS = 200


class NotParsable(ValueError):
    """The part is not an RFC 8098 report this server can read."""


def _fields(body: bytes) -> list[tuple[str, str]]:
    """The header-like fields of a report body (folded lines unfolded; the
    per-message block only: per-recipient blocks are not in RFC 8098)."""
    fields: list[tuple[str, bytes]] = []
    for line in body.replace(b"\r\n", b"\n").split(b"\n"):
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b" " + line.strip())
            continue
        if not line.strip():
            if fields:
                break
            continue
        match = _FIELD.match(line)
        if match is None:
            raise NotParsable(f"not a field: {line[:60]!r}")
        fields.append((match.group(1).decode("ascii"), match.group(2).strip()))
        if len(fields) > MAX_FIELDS:
            raise NotParsable("too many fields")
    return [(name, value.decode("utf-8", "replace")) for name, value in fields]


def _disposition(value: str) -> tuple[dict[str, str], list[str]]:
    """``manual-action/MDN-sent-manually; displayed[/modifier,...]`` -> the
    JMAP Disposition (lowercased, [mdn-2-object]) and the modifiers."""
    match = _DISPOSITION.match(re.sub(r"\([^()]*\)", " ", value))  # drop comments
    if match is None:
        raise NotParsable(f"bad Disposition: {value!r}")
    action, sending, kind = (group.lower() for group in match.group(1, 2, 3))
    if action not in ACTION_MODES or sending not in SENDING_MODES or kind not in TYPES:
        raise NotParsable(f"unknown Disposition values: {value!r}")
    modifiers = [m.strip().lower() for m in (match.group(4) or "").split(",") if m.strip()]
    return {"actionMode": action, "sendingMode": sending, "type": kind}, modifiers


def read_report(body: bytes) -> dict[str, Any]:
    """The MDN properties the report part carries: disposition, reportingUA,
    mdnGateway, originalRecipient, finalRecipient, originalMessageId, error
    and extensionFields.  Raises :class:`NotParsable` when the required
    Disposition or Final-Recipient field is missing or malformed."""
    result: dict[str, Any] = {
        "reportingUA": None,
        "mdnGateway": None,
        "originalRecipient": None,
        "finalRecipient": None,
        "originalMessageId": None,
        "error": None,
        "extensionFields": None,
    }
    errors: list[str] = []
    extensions: dict[str, str] = {}
    disposition = None
    for name, value in _fields(body):
        prop = _KNOWN.get(name.lower())
        if prop == "disposition":
            disposition, _ = _disposition(value)
        elif prop == "error":
            errors.append(value)
        elif prop is not None:
            result[prop] = value
        else:
            extensions[name] = value
    if disposition is None:
        raise NotParsable("no Disposition field")
    if not result["finalRecipient"]:
        raise NotParsable("no Final-Recipient field")
    result["disposition"] = disposition
    result["error"] = errors or None
    result["extensionFields"] = extensions or None
    return result


# -- writing -------------------------------------------------------------------------


def _header(value: str) -> str:
    """An unstructured header value, RFC 2047-encoded when not ASCII."""
    return value if value.isascii() else Header(value, "utf-8").encode()


def _crlf(text: bytes) -> bytes:
    return re.sub(rb"\r?\n", b"\r\n", text)


def build_report(
    *,
    sender: tuple[str | None, str],
    to: Sequence[str],
    subject: str,
    text: str,
    fields: Sequence[tuple[str, str]],
    original_message_id: str | None,
    original: bytes | None,
    automatic: bool,
) -> tuple[bytes, str]:
    """The ``multipart/report; report-type=disposition-notification`` message
    of RFC 8098 §3 (human-readable text, the report fields, and the original
    message when asked for), and its Message-ID."""
    boundary = "=_mdn_" + secrets.token_hex(12)
    name, address = sender
    domain = address.rpartition("@")[2] or "localhost"
    message_id = make_msgid(domain=domain)
    headers = [
        ("From", formataddr((name or "", address), charset="utf-8")),
        ("To", ", ".join(to)),
        ("Subject", _header(subject)),
        ("Date", format_datetime(datetime.now(UTC))),  # +0000: -0000 means "zone unknown"
        ("Message-ID", message_id),
    ]
    if original_message_id:
        headers += [("In-Reply-To", original_message_id), ("References", original_message_id)]
    if automatic:  # RFC 3834 §5: an automatic response says so
        headers.append(("Auto-Submitted", "auto-replied"))
    headers += [
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/report; report-type=disposition-notification;\r\n boundary="{boundary}"'),
    ]
    report = "".join(f"{field}: {value}\r\n" for field, value in fields).encode("utf-8")
    # RFC 6533: report fields that are not ASCII make it a "global" report.
    report_type = "message/disposition-notification" if report.isascii() else "message/global-disposition-notification"
    parts = [
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        + _crlf(quopri.encodestring(_crlf(text.encode("utf-8")))),
        f"Content-Type: {report_type}\r\n\r\n".encode() + report,
    ]
    if original is not None:
        parts.append(b"Content-Type: message/rfc822\r\n\r\n" + _crlf(original))
    out = bytearray()
    out += "".join(f"{field}: {value}\r\n" for field, value in headers).encode("utf-8")
    out += b"\r\nThis is a message disposition notification (RFC 8098).\r\n"
    for part in parts:
        out += f"\r\n--{boundary}\r\n".encode() + part.rstrip(b"\r\n") + b"\r\n"
    out += f"\r\n--{boundary}--\r\n".encode()
    return bytes(out), message_id


def report_fields(
    *,
    reporting_ua: str | None,
    original_recipient: str | None,
    final_recipient: str,
    original_message_id: str | None,
    disposition: Mapping[str, str],
    extensions: Mapping[str, str] | None,
) -> list[tuple[str, str]]:
    """The fields of the report part, in RFC 8098 §3.1's order."""
    fields: list[tuple[str, str]] = []
    if reporting_ua:
        fields.append(("Reporting-UA", reporting_ua))
    if original_recipient:
        fields.append(("Original-Recipient", original_recipient))
    fields.append(("Final-Recipient", final_recipient))
    if original_message_id:
        fields.append(("Original-Message-ID", original_message_id))
    mode = f"{disposition['actionMode']}/{_SENDING_SPELLING[disposition['sendingMode']]}"
    fields.append(("Disposition", f"{mode}; {disposition['type']}"))
    for name, value in (extensions or {}).items():
        fields.append((name, value))
    return fields
