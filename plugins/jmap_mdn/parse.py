"""MDN/parse (RFC 9007 §2.2): the MDN objects of messages holding a
``message/disposition-notification`` part."""

from __future__ import annotations

from typing import Any

from jmapcore.context import CallContext
from jmapcore.errors import MethodError
from jmapcore.standard.args import Args
from jmapcore.standard.get import request_too_large
from jmapcore.storage import Snapshot
from jmapcore.wire import Id

from .constants import EMAIL, MDN
from .report import REPORT_TYPES, NotParsable, read_report


class MdnParseArgs(Args, kw_only=True):
    accountId: Id
    blobIds: list[Id]


def account_for_mdn(ctx: CallContext, account_id: str, *, write: bool = False) -> None:
    """[mdn-2.1-errors] [mdn-2.2-parse] RFC 9007 answers an unknown account
    with invalidArguments (not RFC 8620's accountNotFound)."""
    try:
        ctx.account(account_id, MDN, write=write)
    except MethodError as ex:
        if ex.kind == "accountNotFound":
            raise MethodError.invalid_arguments("No account with that id is available to you.") from None
        raise


def strip_angles(message_id: str) -> str:
    message_id = message_id.strip()
    return message_id[1:-1].strip() if message_id.startswith("<") and message_id.endswith(">") else message_id


def email_for_message_id(snap: Snapshot, message_id: str | None) -> str | None:
    """The one Email whose Message-ID is ``message_id`` (None when there is
    none or several: [mdn-2.2-parse] forEmailId only when unambiguous)."""
    if not message_id:
        return None
    wanted = strip_angles(message_id)
    candidates = [email_id for _, email_id in snap.scan_index(EMAIL, "msgid", (wanted,))]
    matches = [
        record["id"]
        for record in snap.get_many(EMAIL, candidates)
        if record is not None and wanted in (record.get("messageId") or ())
    ]
    return matches[0] if len(matches) == 1 else None


def parse_mdn(raw: bytes, snap: Snapshot | None) -> dict[str, Any]:
    """[mdn-2-object] one message's MDN object; :class:`NotParsable` if it
    carries no readable report."""
    from jmap_mail.mime import parse

    parsed = parse(raw)
    report = next((part for part in parsed.leaves() if part.type in REPORT_TYPES), None)
    if report is None:
        raise NotParsable("no message/disposition-notification part")
    content, _ = report.content()
    fields = read_report(content)
    text_body = None
    for part in parsed.text_body:
        if part.type == "text/plain" and part is not report and part.part_id:
            text_body = parsed.body_value(part.part_id)["value"]
            break
    includes_original = any(
        part.type in ("message/rfc822", "message/global", "text/rfc822-headers") for part in parsed.leaves()
    )
    for_email = email_for_message_id(snap, fields["originalMessageId"]) if snap is not None else None
    return {
        "forEmailId": for_email,
        "subject": parsed.subject,
        "textBody": text_body,
        "reportingUA": fields["reportingUA"],
        "disposition": fields["disposition"],
        "mdnGateway": fields["mdnGateway"],
        "originalRecipient": fields["originalRecipient"],
        "finalRecipient": fields["finalRecipient"],
        "includeOriginalMessage": includes_original,
        "originalMessageId": fields["originalMessageId"],
        "error": fields["error"],
        "extensionFields": fields["extensionFields"],
    }


def mdn_parse(ctx: CallContext, args: MdnParseArgs) -> dict[str, Any]:
    """[mdn-2.2-parse] parsed, notParsable and notFound, by blobId."""
    account_for_mdn(ctx, args.accountId)
    if len(args.blobIds) > ctx.limits.maxObjectsInGet:
        raise request_too_large(ctx.limits.maxObjectsInGet, "blobIds")
    parsed: dict[str, Any] = {}
    not_parsable: list[str] = []
    not_found: list[str] = []
    with ctx.snapshot(args.accountId) as snap:
        for blob_id in dict.fromkeys(args.blobIds):
            try:
                raw = ctx.core.read_blob(ctx.principal, snap, blob_id)
            except ValueError:  # an id this backend could never have made
                raw = None
            if raw is None:
                not_found.append(blob_id)
                continue
            try:
                parsed[blob_id] = parse_mdn(raw, snap if EMAIL in ctx.registry.types else None)
            except NotParsable:
                not_parsable.append(blob_id)
    return {
        "accountId": args.accountId,
        "parsed": parsed or None,
        "notParsable": not_parsable or None,
        "notFound": not_found or None,
    }
