"""Email/get and Email/parse (RFC 8621 §4.2, §4.9).

List properties come from the stored record; only properties that need the
message itself (headers, body parts, body values) parse it, once per Email.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jmapcore.context import CallContext
from jmapcore.errors import MethodError
from jmapcore.standard.args import Args
from jmapcore.standard.get import request_too_large
from jmapcore.state import type_state
from jmapcore.storage import Record, Snapshot
from jmapcore.wire import Id, IdOrRef, UnsignedInt

from .constants import EMAIL, MAIL
from .email import LIST_PROPERTIES
from .mime import ParsedEmail, form_allowed, parse, parse_header_property

#: [mail-4.2-defaultProps]
DEFAULT_PROPERTIES = (*LIST_PROPERTIES, "bodyValues", "textBody", "htmlBody", "attachments")
PARSE_DEFAULT_PROPERTIES = (
    "messageId", "inReplyTo", "references", "sender", "from", "to", "cc", "bcc", "replyTo", "subject",
    "sentAt", "hasAttachment", "preview", "bodyValues", "textBody", "htmlBody", "attachments",
)  # fmt: skip
MESSAGE_PROPERTIES = frozenset({"headers", "bodyStructure", "bodyValues", "textBody", "htmlBody", "attachments"})
#: [mail-4.2-bodyProperties]
DEFAULT_BODY_PROPERTIES = (
    "partId", "blobId", "size", "name", "type", "charset", "disposition", "cid", "language", "location",
)  # fmt: skip
BODY_PROPERTIES = frozenset({*DEFAULT_BODY_PROPERTIES, "headers", "subParts"})
#: Meaningless for a message that is not stored ([mail-4.9-nullMeta]).
NULL_WHEN_PARSED = frozenset({"id", "mailboxIds", "keywords", "receivedAt", "threadId"})


class BodyArgs(Args, kw_only=True):
    bodyProperties: list[str] | None = None
    fetchTextBodyValues: bool = False
    fetchHTMLBodyValues: bool = False
    fetchAllBodyValues: bool = False
    maxBodyValueBytes: UnsignedInt = 0


class EmailGetArgs(BodyArgs, kw_only=True):
    """Foo/get's arguments plus the body ones (Structs inherit from one base)."""

    accountId: Id
    ids: list[IdOrRef] | None = None
    properties: list[str] | None = None


class EmailParseArgs(BodyArgs, kw_only=True):
    accountId: Id
    blobIds: list[Id]
    properties: list[str] | None = None


def _check_header_property(name: str) -> None:
    """[mail-4.1.3-headerProp] [mail-4.1.3-forbiddenForm]"""
    try:
        header, form, _ = parse_header_property(name)
    except ValueError:
        raise MethodError.invalid_arguments(f"{name!r} is not a valid header property.") from None
    if not form_allowed(header, form):
        raise MethodError.invalid_arguments(f"The {form} form is not allowed for the {header} header.")


def check_properties(properties: list[str], known: frozenset[str] | tuple[str, ...]) -> list[str]:
    for name in properties:
        if name.startswith("header:"):
            _check_header_property(name)
        elif name not in known:
            raise MethodError.invalid_arguments(f"Unknown property {name!r}.")
    return properties


class Renderer:
    """Turns a parsed message (and its record) into an Email object."""

    def __init__(self, args: BodyArgs, properties: list[str]) -> None:
        self.properties = properties
        self.body_properties = check_properties(
            list(args.bodyProperties) if args.bodyProperties is not None else list(DEFAULT_BODY_PROPERTIES),
            BODY_PROPERTIES,
        )
        self.args = args
        self.needs_message = any(p in MESSAGE_PROPERTIES or p.startswith("header:") for p in properties)

    def render(self, record: Record | None, parsed: ParsedEmail | None, blob_id: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        listed = parsed.list_properties() if record is None and parsed is not None else None
        for name in self.properties:
            if record is not None and name in record:
                result[name] = record[name]
            elif name == "blobId":
                result[name] = blob_id
            elif name == "size" and parsed is not None:
                result[name] = len(parsed.raw)
            elif record is None and name in NULL_WHEN_PARSED:
                result[name] = None
            elif listed is not None and name in listed:
                result[name] = listed[name]
            elif parsed is not None:
                result[name] = self._from_message(name, parsed, blob_id)
            else:
                result[name] = None
        return result

    def _from_message(self, name: str, parsed: ParsedEmail, blob_id: str) -> Any:
        part_blob: Callable[[str], str] = lambda part_id: part_blob_id(blob_id, part_id)  # noqa: E731
        if name.startswith("header:"):
            header, form, every = parse_header_property(name)
            return parsed.header_value(header, form, every)
        if name == "headers":
            return [{"name": n, "value": v} for n, v in parsed.headers]
        if name == "bodyStructure":
            return parsed.part_json(parsed.body, self.body_properties, part_blob)
        if name in ("textBody", "htmlBody", "attachments"):
            parts = {"textBody": parsed.text_body, "htmlBody": parsed.html_body, "attachments": parsed.attachments}[name]
            return [parsed.part_json(part, self.body_properties, part_blob) for part in parts]
        if name == "bodyValues":
            args = self.args
            return parsed.body_values(
                args.fetchTextBodyValues, args.fetchHTMLBodyValues, args.fetchAllBodyValues, args.maxBodyValueBytes
            )
        return None


def part_blob_id(blob_id: str, part_id: str) -> str:
    """The blobId of one MIME part of a stored message (served by
    :func:`resolve_part_blob`)."""
    return f"{blob_id}_{part_id}"


def resolve_part_blob(snap: Snapshot, blob_id: str) -> tuple[bytes, str] | None:
    """The decoded octets of ``<message blobId>_<partId>``."""
    message_blob, sep, part_id = blob_id.rpartition("_")
    if not sep or not part_id.isdigit():
        return None
    raw = snap.read_blob(message_blob)
    if raw is None:
        return None
    content = parse(raw).part_content(part_id)
    return (content, message_blob) if content is not None else None


def email_get(ctx: CallContext, args: EmailGetArgs) -> dict[str, Any]:
    """[mail-4.2-defaultProps] [mail-4.2-bodyProperties] [mail-4.2-fetchValues]"""
    ctx.account(args.accountId, MAIL)
    properties = check_properties(
        list(args.properties) if args.properties is not None else list(DEFAULT_PROPERTIES),
        frozenset(DEFAULT_PROPERTIES) | MESSAGE_PROPERTIES,
    )
    if "id" not in properties:
        properties.insert(0, "id")
    renderer = Renderer(args, properties)
    if args.ids is None:
        raise request_too_large(ctx.limits.maxObjectsInGet, "Emails (ids: null is not supported)")
    if len(args.ids) > ctx.limits.maxObjectsInGet:
        raise request_too_large(ctx.limits.maxObjectsInGet, "ids")
    wanted = list(dict.fromkeys(args.ids))
    found: list[dict[str, Any]] = []
    not_found: list[str] = []
    with ctx.snapshot(args.accountId) as snap:
        state = type_state(snap.epoch(), snap.type_modseq(EMAIL))
        resolved = [ctx.resolve_id(i) or "" for i in wanted]
        for asked, record in zip(wanted, snap.get_many(EMAIL, resolved), strict=True):
            if record is None:
                not_found.append(asked)
                continue
            parsed = None
            if renderer.needs_message:
                raw = snap.read_blob(record["blobId"])
                parsed = parse(raw) if raw is not None else None
            found.append(renderer.render(record, parsed, record["blobId"]))
    return {"accountId": args.accountId, "state": state, "list": found, "notFound": not_found}


def email_parse(ctx: CallContext, args: EmailParseArgs) -> dict[str, Any]:
    """[mail-4.9-args] [mail-4.9-nullMeta] [mail-4.9-response]"""
    ctx.account(args.accountId, MAIL)
    properties = check_properties(
        list(args.properties) if args.properties is not None else list(PARSE_DEFAULT_PROPERTIES),
        frozenset(DEFAULT_PROPERTIES) | MESSAGE_PROPERTIES,
    )
    if len(args.blobIds) > ctx.limits.maxObjectsInGet:
        raise request_too_large(ctx.limits.maxObjectsInGet, "blobIds")
    renderer = Renderer(args, properties)
    parsed_emails: dict[str, Any] = {}
    not_found: list[str] = []
    with ctx.snapshot(args.accountId) as snap:
        for blob_id in dict.fromkeys(args.blobIds):
            raw = ctx.core.read_blob(ctx.principal, snap, blob_id)
            if raw is None:
                not_found.append(blob_id)
                continue
            parsed_emails[blob_id] = renderer.render(None, parse(raw), blob_id)
    return {
        "accountId": args.accountId,
        "parsed": parsed_emails or None,
        "notParsable": None,
        "notFound": not_found or None,
    }
