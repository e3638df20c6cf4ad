"""Email/set create: a JMAP Email object to RFC 5322 octets ([mail-4.6-createRules],
[mail-4.6-generatedHeaders]).

Validation collects every offending property path before failing, so the client
sees all its mistakes at once; blobs are only loaded once the object is valid.
Output is CRLF, lines under 998 octets: 7bit where the text allows it, quoted-printable
for mostly-ASCII text, base64 otherwise; multipart/alternative for text + HTML,
multipart/related for HTML with cid-referenced inline parts, multipart/mixed with
attachments.
"""

from __future__ import annotations

import binascii
import datetime
import re
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .dates import parse_jmap_date
from .headerencode import (
    Atom,
    addresses_atoms,
    content_atoms,
    date_atoms,
    fold,
    grouped_atoms,
    message_id_atoms,
    text_atoms,
    url_atoms,
)
from .headerforms import form_allowed, parse_header_property
from .params import mime_type, parse_content_header


class BuildError(Exception):
    """Why a create cannot become a message: ``kind`` is the SetError type."""

    def __init__(self, kind: str, description: str = "", properties: list[str] | None = None,
                 not_found: list[str] | None = None) -> None:
        super().__init__(description or kind)
        self.kind = kind
        self.properties = properties or []
        self.not_found = not_found or []


# convenience property -> (header name, parsed form)
CONVENIENCE = {
    "sentAt": ("Date", "Date"),
    "from": ("From", "Addresses"),
    "sender": ("Sender", "Addresses"),
    "replyTo": ("Reply-To", "Addresses"),
    "to": ("To", "Addresses"),
    "cc": ("Cc", "Addresses"),
    "bcc": ("Bcc", "Addresses"),
    "subject": ("Subject", "Text"),
    "messageId": ("Message-ID", "MessageIds"),
    "inReplyTo": ("In-Reply-To", "MessageIds"),
    "references": ("References", "MessageIds"),
}
METADATA = frozenset({"mailboxIds", "keywords", "receivedAt"})  # the caller's business
BODY = frozenset({"bodyStructure", "textBody", "htmlBody", "attachments", "bodyValues"})
# The Email properties a part property writes, for duplicate detection.
PART_HEADERS = {"type": "content-type", "charset": "content-type", "disposition": "content-disposition",
                "cid": "content-id", "language": "content-language", "location": "content-location"}
PART_PROPERTIES = frozenset({"partId", "blobId", "size", "name", "type", "charset", "disposition",
                             "cid", "language", "location", "subParts"})
_HEADER_SAFE = re.compile(r"[^\x00\r\n]*")
_ID_SAFE = re.compile(r"[^\s<>()\x00-\x1f\x7f]+")
_EMAIL_SAFE = re.compile(r"[^\s<>,;\x00-\x1f\x7f]+")
_B64_LINE = 57  # raw octets per 76-character base64 line
MAX_LINE = 998  # RFC 5322 §2.1.1, octets without CRLF


class _Invalid(Exception):
    """One invalid property (internal: collected into BuildError)."""


@lru_cache(maxsize=1)
def _local_domain() -> str:
    name = socket.gethostname().lower()
    clean = re.sub(r"[^a-z0-9.-]", "", name).strip(".-")
    return clean if "." in clean else (clean or "localhost") + ".localdomain"


# -- header values per form -------------------------------------------------------------


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise _Invalid
    return value


def _address(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) - {"name", "email"}:
        raise _Invalid
    name = value.get("name")
    if name is not None and not isinstance(name, str):
        raise _Invalid
    email = value.get("email")
    if not isinstance(email, str) or not _EMAIL_SAFE.fullmatch(email):
        raise _Invalid
    return {"name": name, "email": email}


def _group(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) - {"name", "addresses"}:
        raise _Invalid
    name = value.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise _Invalid
    return {"name": name, "addresses": [_address(a) for a in _list(value.get("addresses"))]}


def _fold_long_line(line: str) -> str:
    """Fold a line over 998 octets before whitespace (unfolding restores it)."""
    out: list[str] = []
    while len(line.encode("utf-8", "surrogatepass")) > MAX_LINE:
        room = len(line.encode("utf-8", "surrogatepass")[:900].decode("utf-8", "ignore"))
        cut = max(line.rfind(" ", 1, room), line.rfind("\t", 1, room))
        if cut <= 0:
            raise _Invalid  # one unbreakable run of more than 998 octets
        out.append(line[:cut])
        line = line[cut:]
    out.append(line)
    return "\r\n".join(out)


def _raw_value(value: Any) -> str:
    """A Raw value as given, folds normalised to CRLF; no NUL, no bare line breaks;
    lines over 998 octets folded at whitespace."""
    text = _string(value).replace("\r\n", "\n")
    if "\x00" in text or "\r" in text or re.search(r"\n(?![ \t])", text):
        raise _Invalid
    return "\r\n".join(_fold_long_line(line) for line in text.split("\n"))


def _form_line(name: str, form: str, value: Any) -> str:
    """One header field ``Name: value`` for a value in ``form`` (no final CRLF)."""
    atoms: list[Atom]
    if form == "Raw":
        return f"{name}:{_raw_value(value)}"
    if form == "Text":
        atoms = text_atoms(_string(value))
    elif form == "Addresses":
        atoms = addresses_atoms([_address(a) for a in _list(value)])
    elif form == "GroupedAddresses":
        atoms = grouped_atoms([_group(g) for g in _list(value)])
    elif form == "MessageIds":
        ids = [_string(v) for v in _list(value)]
        if not all(_ID_SAFE.fullmatch(v) for v in ids):
            raise _Invalid
        atoms = message_id_atoms(ids)
    elif form == "Date":
        moment = parse_jmap_date(_string(value))
        if moment is None:
            raise _Invalid
        atoms = date_atoms(moment)
    elif form == "URLs":
        urls = [_string(v) for v in _list(value)]
        if not all(_ID_SAFE.fullmatch(v) for v in urls):
            raise _Invalid
        atoms = url_atoms(urls)
    else:  # pragma: no cover - forms come from parse_header_property
        raise _Invalid
    return fold(name, atoms)


def _header_lines(name: str, form: str, want_all: bool, value: Any) -> list[str]:
    if value is None:
        return []
    if want_all:
        return [_form_line(name, form, item) for item in _list(value) if item is not None]
    return [_form_line(name, form, value)]


class _Headers:
    """Header fields of one entity being built, with duplicate detection by name."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        self.lines: list[str] = []
        self.names: dict[str, str] = {}  # lowercased header name -> property that set it

    def add(self, prop: str, path: str, name: str, form: str, want_all: bool, value: Any) -> None:
        key = name.lower()
        if key in self.names:
            self.errors.append(path)
            return
        self.names[key] = prop
        if not form_allowed(name, form):
            self.errors.append(path)
            return
        try:
            lines = _header_lines(name, form, want_all, value)
        except _Invalid:
            self.errors.append(path)
            return
        if any(len(physical.encode("utf-8", "surrogatepass")) > MAX_LINE
               for line in lines for physical in line.split("\r\n")):
            self.errors.append(path)  # e.g. an address longer than a line may be
            return
        self.lines.extend(lines)

    def add_property(self, prop: str, path: str, value: Any) -> str | None:
        """A ``header:...`` property; returns the lowercased header name (or None)."""
        try:
            name, form, want_all = parse_header_property(prop)
        except ValueError:
            self.errors.append(path)
            return None
        self.add(prop, path, name, form, want_all, value)
        return name.lower()


# -- body parts -------------------------------------------------------------------------


@dataclass
class _Part:
    path: str
    type: str = "text/plain"
    charset: str | None = None
    name: str | None = None
    disposition: str | None = None
    cid: str | None = None
    language: list[str] | None = None
    location: str | None = None
    headers: _Headers | None = None
    value: str | None = None
    blob_id: str | None = None
    children: list[_Part] | None = None
    extra_params: list[tuple[str, str, bool]] = field(default_factory=list)


class _Builder:
    def __init__(self, email: dict[str, Any]) -> None:
        self.email = email
        self.errors: list[str] = []
        self.body_values: dict[str, str] = {}
        self.used_part_ids: set[str] = set()

    def fail(self, path: str) -> None:
        self.errors.append(path)

    # parts ----------------------------------------------------------------------------
    def part(self, value: Any, path: str, default_type: str | None = None) -> _Part:
        part = _Part(path)
        part.headers = _Headers(self.errors)
        if not isinstance(value, dict):
            self.fail(path)
            return part
        header_type = self._part_headers(part, value, path)
        sub_parts = value.get("subParts")
        if sub_parts is not None and default_type is None:
            default_type = "multipart/mixed"
        self._describe(part, value, path, default_type or header_type)
        if part.type.startswith("multipart/"):
            if "content-type" in part.headers.names:  # the boundary must be ours
                self.fail(f"{path}/header:Content-Type")
            for key in ("partId", "blobId", "charset"):
                if value.get(key) is not None:
                    self.fail(f"{path}/{key}")
            if not isinstance(sub_parts, list) or not sub_parts:
                self.fail(f"{path}/subParts")
                sub_parts = []
            part.children = [self.part(child, f"{path}/subParts/{index}")
                             for index, child in enumerate(sub_parts)]
            return part
        if sub_parts is not None:
            self.fail(f"{path}/subParts")
        self._content(part, value, path)
        return part

    def _part_headers(self, part: _Part, value: dict[str, Any], path: str) -> str | None:
        """Collect ``header:*`` properties of a part; returns the type a given
        Content-Type header names. No CTE header, no clash with a typed property."""
        assert part.headers is not None
        header_type = None
        for key, item in value.items():
            if key.startswith("header:"):
                lowered = part.headers.add_property(key, f"{path}/{key}", item)
                if lowered == "content-transfer-encoding":
                    self.fail(f"{path}/{key}")
                elif lowered == "content-type" and isinstance(item, str):
                    header_type = mime_type(parse_content_header(item)[0])
            elif key == "headers" or key not in PART_PROPERTIES:
                self.fail(f"{path}/{key}")
        for prop, header in PART_HEADERS.items():
            if value.get(prop) is not None and header in part.headers.names:
                self.fail(f"{path}/{prop}")
        return header_type

    def _describe(self, part: _Part, value: dict[str, Any], path: str, default_type: str | None) -> None:
        type_ = value.get("type")
        if type_ is None:
            part.type = default_type or ("text/plain" if value.get("blobId") is None
                                         else "application/octet-stream")
        elif isinstance(type_, str) and mime_type(type_.lower()):
            part.type = type_.lower()
        else:
            self.fail(f"{path}/type")
        for prop in ("charset", "name", "disposition", "cid", "location"):
            item = value.get(prop)
            if item is not None and (not isinstance(item, str) or "\x00" in item or "\n" in item):
                self.fail(f"{path}/{prop}")
            elif item is not None:
                setattr(part, prop, item)
        if part.disposition is not None and not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", part.disposition):
            self.fail(f"{path}/disposition")
        if part.cid is not None:
            part.cid = part.cid.strip().strip("<>")
            if not _ID_SAFE.fullmatch(part.cid) or len(part.cid) > 900:
                self.fail(f"{path}/cid")
        language = value.get("language")
        if language is not None:
            if not isinstance(language, list) or not all(
                    isinstance(tag, str) and re.fullmatch(r"[A-Za-z0-9-]+", tag) for tag in language):
                self.fail(f"{path}/language")
            else:
                part.language = language

    def _content(self, part: _Part, value: dict[str, Any], path: str) -> None:
        part_id, blob_id = value.get("partId"), value.get("blobId")
        if (part_id is None) == (blob_id is None):
            self.fail(f"{path}/partId" if part_id is not None else f"{path}/blobId")
            return
        if part_id is not None:
            if not isinstance(part_id, str) or part_id not in self.body_values:
                self.fail(f"{path}/partId")
                return
            for key in ("charset", "size"):
                if key in value:
                    self.fail(f"{path}/{key}")
            self.used_part_ids.add(part_id)
            part.value = self.body_values[part_id]
        else:
            if not isinstance(blob_id, str) or not blob_id:
                self.fail(f"{path}/blobId")
                return
            part.blob_id = blob_id

    def values(self) -> None:
        raw = self.email.get("bodyValues")
        if raw is None:
            return
        if not isinstance(raw, dict):
            self.fail("bodyValues")
            return
        for part_id, body_value in raw.items():
            path = f"bodyValues/{part_id}"
            if not isinstance(body_value, dict) or not isinstance(body_value.get("value"), str):
                self.fail(path)
                continue
            for flag in ("isEncodingProblem", "isTruncated"):
                if body_value.get(flag, False) is not False:
                    self.fail(f"{path}/{flag}")
            if set(body_value) - {"value", "isEncodingProblem", "isTruncated"}:
                self.fail(path)
            self.body_values[part_id] = body_value["value"]

    def body(self) -> _Part:
        email = self.email
        structure = email.get("bodyStructure")
        lists = [key for key in ("textBody", "htmlBody", "attachments") if email.get(key) is not None]
        if structure is not None:
            for key in lists:
                self.fail(key)
            return self.part(structure, "bodyStructure")
        text = self._single(email.get("textBody"), "textBody", "text/plain")
        html = self._single(email.get("htmlBody"), "htmlBody", "text/html")
        attachments: list[_Part] = []
        raw_attachments = email.get("attachments")
        if raw_attachments is not None:
            if not isinstance(raw_attachments, list):
                self.fail("attachments")
            else:
                attachments = [self.part(item, f"attachments/{index}")
                               for index, item in enumerate(raw_attachments)]
        return _assemble(text, html, attachments)

    def _single(self, value: Any, path: str, wanted: str) -> _Part | None:
        if value is None:
            return None
        if not isinstance(value, list) or len(value) != 1:
            self.fail(path)
            return None
        part = self.part(value[0], f"{path}/0", default_type=wanted)
        if part.type != wanted:
            self.fail(f"{path}/0/type")
        return part


def _multipart(subtype: str, children: list[_Part], path: str, **params: str) -> _Part:
    part = _Part(path, type=f"multipart/{subtype}", children=children)
    part.extra_params = [(key, value, False) for key, value in params.items()]
    return part


def _assemble(text: _Part | None, html: _Part | None, attachments: list[_Part]) -> _Part:
    """The conventional tree for textBody/htmlBody/attachments."""
    inline = [a for a in attachments if html is not None and a.cid and a.disposition != "attachment"]
    others = [a for a in attachments if a not in inline]
    html_node = _multipart("related", [html, *inline], "htmlBody", type="text/html") if html and inline else html
    if text is not None and html_node is not None:
        main: _Part | None = _multipart("alternative", [text, html_node], "textBody")
    else:
        main = text or html_node
    if others:
        return _multipart("mixed", ([main] if main else []) + others, "attachments")
    if main is None:
        empty = _Part("textBody", value="")
        empty.headers = None
        return empty
    return main


# -- serialisation ----------------------------------------------------------------------


def _crlf(data: bytes) -> bytes:
    if b"\r" not in data:
        return data.replace(b"\n", b"\r\n")
    return re.sub(rb"\r\n|\r|\n", b"\r\n", data)


def _base64(data: bytes) -> bytes:
    return b"".join(binascii.b2a_base64(data[i : i + _B64_LINE]).rstrip(b"\n") + b"\r\n"
                    for i in range(0, len(data), _B64_LINE))


def _longest_line(data: bytes) -> int:
    return max((len(line) for line in data.split(b"\r\n")), default=0)


def _clean_7bit(data: bytes) -> bool:
    """ASCII, CRLF only, no NUL, short lines: can go out as it is."""
    return (data.isascii() and b"\x00" not in data and _longest_line(data) <= 998
            and data.count(b"\n") == data.count(b"\r\n") == data.count(b"\r"))


def _encode_text(data: bytes) -> tuple[str, bytes]:
    """(CTE, body) for text octets already in CRLF form."""
    if _clean_7bit(data):
        return "7bit", data
    high = sum(1 for byte in data if byte >= 0x80) if len(data) < 1 << 20 else len(data)
    if high * 4 <= len(data):
        return "quoted-printable", binascii.b2a_qp(data, istext=True)
    return "base64", _base64(data)


def _encode_blob(part: _Part, data: bytes) -> tuple[str, bytes]:
    if part.type in ("message/rfc822", "message/global"):
        canonical = _crlf(data)
        if b"\x00" not in canonical and _longest_line(canonical) <= 998:
            return ("7bit" if canonical.isascii() else "8bit"), canonical
        return "base64", _base64(data)
    if part.type.startswith("text/") and _clean_7bit(data):
        return "7bit", data
    return "base64", _base64(data)


class _Writer:
    def __init__(self, load_blob: Callable[[str], bytes | None]) -> None:
        self.load_blob = load_blob
        self.missing: list[str] = []
        self.blob_bytes = 0

    def entity(self, part: _Part, leading: list[str]) -> bytes:
        """Headers (``leading`` first, then the part's) + blank line + body."""
        lines = list(leading)
        names = part.headers.names if part.headers else {}
        params: list[tuple[str, str, bool]] = []
        if part.children is not None:
            children = [self.entity(child, []) for child in part.children]
            boundary = _boundary(children)
            params = [("boundary", boundary, False), *part.extra_params]
            body = b"".join(b"--" + boundary.encode() + b"\r\n" + child + b"\r\n" for child in children)
            body += b"--" + boundary.encode() + b"--\r\n"
            cte = None
        else:
            cte, body, charset = self._leaf_body(part)
            if charset:
                params.append(("charset", charset, False))
        if part.name is not None and part.children is None:
            params.append(("name", part.name, True))
        if "content-type" not in names:
            lines.append(fold("Content-Type", content_atoms(part.type, params)))
        if part.disposition is not None:
            disposition_params = [("filename", part.name, False)] if part.name is not None else []
            lines.append(fold("Content-Disposition", content_atoms(part.disposition, disposition_params)))
        if part.cid is not None:
            lines.append(f"Content-ID: <{part.cid}>")
        if part.language:
            tags = [(" ", tag + ",") for tag in part.language]
            tags[-1] = (" ", part.language[-1])
            lines.append(fold("Content-Language", tags))
        if part.location is not None:
            lines.append(fold("Content-Location", text_atoms(part.location)))
        if cte is not None:
            lines.append(f"Content-Transfer-Encoding: {cte}")
        if part.headers is not None:
            lines.extend(part.headers.lines)
        head = "\r\n".join(lines).encode("utf-8", "surrogatepass")
        return head + b"\r\n\r\n" + body

    def _leaf_body(self, part: _Part) -> tuple[str, bytes, str | None]:
        if part.value is not None:
            data = _crlf(part.value.encode("utf-8", "surrogatepass"))
            cte, body = _encode_text(data)
            return cte, body, part.charset or "utf-8"
        data = self.load_blob(part.blob_id or "")
        if data is None:
            if part.blob_id not in self.missing:
                self.missing.append(part.blob_id or "")
            return "7bit", b"", part.charset
        self.blob_bytes += len(data)
        charset = part.charset
        if charset is None and part.type.startswith("text/") and not data.isascii():
            try:
                data.decode("utf-8")
                charset = "utf-8"
            except UnicodeDecodeError:
                pass
        cte, body = _encode_blob(part, data)
        return cte, body, charset


def _boundary(children: list[bytes]) -> str:
    while True:
        boundary = "=_" + secrets.token_hex(12)
        marker = boundary.encode()
        if not any(marker in child for child in children):
            return boundary


# -- entry point ------------------------------------------------------------------------


def _top_headers(builder: _Builder, email: dict[str, Any]) -> _Headers:
    """Header fields from the Email's convenience and ``header:*`` properties."""
    top = _Headers(builder.errors)
    for key, value in email.items():
        if key in METADATA or key in BODY:
            continue
        if key in CONVENIENCE:
            name, form = CONVENIENCE[key]
            top.add(key, key, name, form, False, value)
        elif key.startswith("header:"):
            lowered = top.add_property(key, key, value)
            if lowered is not None and lowered.startswith("content-"):
                builder.fail(key)  # Content-* only on body parts
        else:  # headers, id, blobId, size, preview, ... or unknown
            builder.fail(key)
    return top


def _generated_headers(top: _Headers, now: datetime.datetime, domain: str | None) -> list[str]:
    """Date and Message-ID when the client gave none ([mail-4.6-generatedHeaders])."""
    generated = []
    if "date" not in top.names:
        moment = now if now.tzinfo is not None else now.replace(tzinfo=datetime.UTC)
        generated.append(fold("Date", date_atoms(moment.replace(microsecond=0))))
    if "message-id" not in top.names:
        generated.append(f"Message-ID: <{secrets.token_hex(16)}@{domain or _local_domain()}>")
    return generated


def build_message(email: dict[str, Any], load_blob: Callable[[str], bytes | None],
                  now: datetime.datetime, *, domain: str | None = None,
                  max_size: int | None = None, max_attachments_size: int | None = None) -> bytes:
    """The RFC 5322 message for an Email/set create object.

    Raises BuildError: ``invalidProperties`` (with every offending property path),
    ``blobNotFound`` (with ``not_found``) or ``tooLarge``.
    """
    if not isinstance(email, dict):
        raise BuildError("invalidProperties", "The Email must be an object.")
    builder = _Builder(email)
    top = _top_headers(builder, email)
    builder.values()
    root = builder.body()
    if root.headers is not None:
        for name, prop in root.headers.names.items():
            if name in top.names:
                builder.fail(f"{root.path}/{prop}")
    if builder.errors:
        properties = list(dict.fromkeys(builder.errors))
        raise BuildError("invalidProperties", "Invalid properties: " + ", ".join(properties), properties)
    leading = _generated_headers(top, now, domain) + top.lines
    if "mime-version" not in top.names:
        leading.append("MIME-Version: 1.0")
    writer = _Writer(load_blob)
    message = writer.entity(root, leading)
    if writer.missing:
        raise BuildError("blobNotFound", "Blobs not found: " + ", ".join(writer.missing),
                         not_found=writer.missing)
    if max_attachments_size is not None and writer.blob_bytes > max_attachments_size:
        raise BuildError("tooLarge", "The attachments are too large.", ["attachments"])
    if max_size is not None and len(message) > max_size:
        raise BuildError("tooLarge", "The message is too large.")
    return message
