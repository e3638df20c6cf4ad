"""A parsed message: the JMAP views of it, computed on demand.

``parse`` only splits headers and finds the MIME tree (offsets, no copies); header
forms, body text and preview are worked out when asked for, so import pays for what
it stores and Email/get for what the client requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .bodyvalues import body_value, preview
from .headerblock import _FIELD
from .headerforms import header_values, parse_header_property
from .partition import partition
from .structure import BodyPart, parse_entity
from .subject import base_subject

_ADDRESS_PROPERTIES = (("sender", "Sender"), ("from", "From"), ("to", "To"), ("cc", "Cc"),
                       ("bcc", "Bcc"), ("replyTo", "Reply-To"))
_ID_PROPERTIES = (("messageId", "Message-ID"), ("inReplyTo", "In-Reply-To"),
                  ("references", "References"))
BODY_PROPERTIES = ("partId", "blobId", "size", "headers", "name", "type", "charset",
                   "disposition", "cid", "language", "location", "subParts")
DEFAULT_BODY_PROPERTIES = ["partId", "blobId", "size", "name", "type", "charset",
                           "disposition", "cid", "language", "location"]


class ParsedEmail:
    """The JMAP Email view of one RFC 5322 message (read-only)."""

    def __init__(self, raw: bytes, body: BodyPart) -> None:
        self.raw = raw
        self.body = body
        self.headers: list[tuple[str, str]] = body.headers
        self._parts: dict[str, BodyPart] | None = None
        self._partition: tuple[list[BodyPart], list[BodyPart], list[BodyPart]] | None = None

    # -- structure --------------------------------------------------------------
    def _split(self) -> tuple[list[BodyPart], list[BodyPart], list[BodyPart]]:
        if self._partition is None:
            self._partition = partition(self.body)
        return self._partition

    @property
    def text_body(self) -> list[BodyPart]:
        return self._split()[0]

    @property
    def html_body(self) -> list[BodyPart]:
        return self._split()[1]

    @property
    def attachments(self) -> list[BodyPart]:
        return self._split()[2]

    def leaves(self) -> list[BodyPart]:
        """Every part with a partId, in partId order."""
        return [part for part in self.body.walk() if part.part_id is not None]

    def part(self, part_id: str) -> BodyPart | None:
        if self._parts is None:
            self._parts = {part.part_id: part for part in self.leaves() if part.part_id}
        return self._parts.get(part_id)

    def part_content(self, part_id: str) -> bytes | None:
        """Decoded octets of a leaf part - the content of its blob."""
        found = self.part(part_id)
        return None if found is None else found.content()[0]

    # -- headers ----------------------------------------------------------------
    def header_value(self, name: str, form: str = "Raw", all: bool = False) -> Any:  # noqa: A002
        """``header:{name}:as{form}[:all]``; ValueError for a form not allowed there."""
        return header_values(self.headers, name, form, all)

    def header_property(self, prop: str) -> Any:
        """Value of a ``header:...`` property string of the Email."""
        name, form, want_all = parse_header_property(prop)
        return header_values(self.headers, name, form, want_all)

    @property
    def subject(self) -> str | None:
        return header_values(self.headers, "Subject", "Text", False)

    @property
    def sent_at(self) -> str | None:
        return header_values(self.headers, "Date", "Date", False)

    @property
    def has_attachment(self) -> bool:
        """[mail-4.1.4-hasAttachment]: an attachment that is not ``inline``; images
        with a Content-ID (referenced from HTML) do not count."""
        for part in self.attachments:
            if part.disposition == "inline":
                continue
            if part.cid and part.disposition is None and part.type.startswith("image/"):
                continue
            return True
        return False

    @property
    def preview(self) -> str:
        """From textBody; from htmlBody when textBody has no text (an empty
        text/plain alternative beside a real HTML one)."""
        return preview(self.text_body) or preview(self.html_body)

    def list_properties(self) -> dict[str, Any]:
        """The header-derived and server-set Email properties, as JMAP values
        ([mail-4.1.3-convenience], [mail-4.1.4-hasAttachment], [mail-4.1.4-preview])."""
        headers = self.headers
        result: dict[str, Any] = {}
        for prop, name in _ID_PROPERTIES:
            result[prop] = header_values(headers, name, "MessageIds", False)
        for prop, name in _ADDRESS_PROPERTIES:
            result[prop] = header_values(headers, name, "Addresses", False)
        result["subject"] = self.subject
        result["sentAt"] = self.sent_at
        result["hasAttachment"] = self.has_attachment
        result["preview"] = self.preview
        return result

    def threading_keys(self) -> tuple[list[str], str]:
        """(message ids from Message-ID, In-Reply-To and References, base subject)."""
        ids: list[str] = []
        seen: set[str] = set()
        for name in ("Message-ID", "In-Reply-To", "References"):
            for found in header_values(self.headers, name, "MessageIds", True):
                for value in found or ():
                    if value not in seen:
                        seen.add(value)
                        ids.append(value)
        return ids, base_subject(self.subject)

    # -- body values ------------------------------------------------------------
    def body_value(self, part_id: str, max_bytes: int = 0) -> dict[str, Any]:
        """EmailBodyValue of a leaf part ([mail-4.1.4-bodyValues]); KeyError if unknown."""
        found = self.part(part_id)
        if found is None:
            raise KeyError(part_id)
        return body_value(found, max_bytes)

    def body_values(self, text: bool, html: bool, all: bool, max_bytes: int = 0  # noqa: A002
                    ) -> dict[str, dict[str, Any]]:
        """bodyValues for the fetch*BodyValues arguments ([mail-4.2-fetchValues]):
        text/* parts of textBody, htmlBody or the whole structure."""
        chosen: list[BodyPart] = []
        if all:
            chosen = self.leaves()
        else:
            if text:
                chosen.extend(self.text_body)
            if html:
                chosen.extend(self.html_body)
        values: dict[str, dict[str, Any]] = {}
        for part in chosen:
            if part.part_id and part.part_id not in values and part.type.startswith("text/"):
                values[part.part_id] = body_value(part, max_bytes)
        return values

    # -- JSON -------------------------------------------------------------------
    def part_json(self, part: BodyPart, properties: list[str] | None,
                  blob_id_for: Callable[[str], str]) -> dict[str, Any]:
        """An EmailBodyPart object with ``properties`` ([mail-4.2-bodyProperties]);
        ``subParts`` recurse with the same list. ValueError on an unknown property."""
        return part_json(part, properties, blob_id_for)


def part_json(part: BodyPart, properties: list[str] | None,
              blob_id_for: Callable[[str], str]) -> dict[str, Any]:
    """See ParsedEmail.part_json (usable for any BodyPart)."""
    if properties is None:
        properties = DEFAULT_BODY_PROPERTIES
    out: dict[str, Any] = {}
    for prop in properties:
        if prop == "partId":
            out[prop] = part.part_id
        elif prop == "blobId":
            out[prop] = blob_id_for(part.part_id) if part.part_id is not None else None
        elif prop == "size":
            out[prop] = part.size
        elif prop == "headers":
            out[prop] = [{"name": name, "value": value} for name, value in part.headers]
        elif prop == "subParts":
            out[prop] = (None if part.sub_parts is None else
                         [part_json(child, properties, blob_id_for) for child in part.sub_parts])
        elif prop in ("name", "type", "charset", "disposition", "cid", "language", "location"):
            value = getattr(part, prop)
            out[prop] = list(value) if isinstance(value, list) else value
        elif prop.startswith("header:"):
            name, form, want_all = parse_header_property(prop)
            out[prop] = header_values(part.headers, name, form, want_all)
        else:
            raise ValueError(f"unknown body property {prop!r}")
    return out


def parse(raw: bytes) -> ParsedEmail:
    """Parse a message; never raises, whatever the octets (best effort, bounded work)."""
    raw = bytes(raw)
    start = 0
    if raw.startswith(b"From ") and _FIELD.match(raw, 0) is None:
        newline = raw.find(b"\n")  # an mbox "From " separator line left in place
        start = len(raw) if newline < 0 else newline + 1
    try:
        body = parse_entity(raw, start, len(raw))
    except Exception:  # pragma: no cover - last resort, none known (fuzzed): keep importing
        body = BodyPart(raw, [], start, start, len(raw))
        body.part_id = "1"
    return ParsedEmail(raw, body)
