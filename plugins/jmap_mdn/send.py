"""MDN/send (RFC 9007 §2.1): a disposition notification for a received Email.

The MDN is an RFC 8098 ``multipart/report`` message from the Identity to the
Email's ``Disposition-Notification-To`` addresses, queued for the SMTP relay
through the submission plugin (``jmap_submission.outbound.enqueue``, with
the null reverse-path RFC 8098 §2.1 asks for, so an MDN never bounces back).
When it is queued, the ``onSuccessUpdateEmail`` patches (which must set
``$mdnsent``) are applied by an implicit Email/set, whose response follows.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal

import msgspec

from jmapcore.context import CallContext
from jmapcore.errors import MethodError, SetError
from jmapcore.standard.args import Args, SetArgs
from jmapcore.storage import Record, Snapshot
from jmapcore.wire import Id

from .constants import EMAIL, IDENTITY, MAIL, MDN_SENT
from .parse import account_for_mdn
from .report import build_report, report_fields

log = logging.getLogger(__name__)

#: [mdn-2-object] properties only the server sets.
SERVER_SET = ("mdnGateway", "originalRecipient", "originalMessageId", "error")
_FIELD_NAME = re.compile(r"^[!-9;-~]+$")


class Disposition(msgspec.Struct, forbid_unknown_fields=True):
    actionMode: Literal["manual-action", "automatic-action"]
    sendingMode: Literal["mdn-sent-manually", "mdn-sent-automatically"]
    type: Literal["deleted", "dispatched", "displayed", "processed"]


class MdnCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """[mdn-2-object] what a client may give for MDN/send."""

    forEmailId: str
    subject: str | None = None
    textBody: str | None = None
    reportingUA: str | None = None
    includeOriginalMessage: bool = False
    disposition: Disposition
    finalRecipient: str | None = None
    extensionFields: dict[str, str] | None = None
    # server-set: accepted only as null
    mdnGateway: None = None
    originalRecipient: None = None
    originalMessageId: None = None
    error: None = None


class MdnSendArgs(Args, kw_only=True):
    """[mdn-2.1-send]"""

    accountId: Id
    identityId: Id
    send: dict[Id, dict[str, Any]]
    onSuccessUpdateEmail: dict[str, dict[str, Any]] | None = None


def outbound() -> Any:
    """``jmap_submission.outbound.enqueue``, imported when first needed (the
    submission plugin is what sends mail)."""
    try:
        from jmap_submission.outbound import enqueue
    except ImportError:
        raise MethodError("serverUnavailable", "This server has no mail submission to send MDNs with.") from None
    return enqueue


def _identity(ctx: CallContext, account_id: str, identity_id: str) -> Record:
    """[mdn-2.1-errors] an unknown identity is invalidArguments."""
    try:
        from jmap_submission.identity import ensure_identities
    except ImportError:
        ensure_identities = None
    info = ctx.core.account_info(account_id)
    if ensure_identities is not None and info is not None:
        ensure_identities(ctx.core, info)  # server-made identities appear on demand
    with ctx.snapshot(account_id) as snap:
        record = snap.get(IDENTITY, identity_id)
    if record is None:
        raise MethodError.invalid_arguments(f"No Identity {identity_id!r} in this account.")
    return record


def _sets_mdnsent(patch: dict[str, Any]) -> bool:
    """[mdn-2.1-mustSetKeyword] the patch gives the Email ``$mdnsent``."""
    if patch.get(f"keywords/{MDN_SENT}") is True:
        return True
    keywords = patch.get("keywords")
    return isinstance(keywords, dict) and keywords.get(MDN_SENT) is True


def _check_updates(args: MdnSendArgs) -> None:
    """[mdn-2.1-mustSetKeyword] every MDN needs an onSuccessUpdateEmail entry
    (``#creationId``, or the Email's id) setting ``$mdnsent``; otherwise the
    whole call is refused before anything is sent."""
    updates = args.onSuccessUpdateEmail or {}
    for creation_id, values in args.send.items():
        email_ref = values.get("forEmailId") if isinstance(values, dict) else None
        patch = updates.get(f"#{creation_id}")
        if patch is None and isinstance(email_ref, str):
            patch = updates.get(email_ref)
        if not isinstance(patch, dict) or not _sets_mdnsent(patch):
            raise MethodError.invalid_arguments(
                f"onSuccessUpdateEmail must set keywords/{MDN_SENT} on the Email of MDN {creation_id!r}."
            )
    for key in updates:
        if key.startswith("#") and key[1:] not in args.send:
            raise MethodError.invalid_arguments(f"onSuccessUpdateEmail names {key!r}, which is not in send.")


def _validated(values: dict[str, Any]) -> MdnCreate | SetError:
    try:
        mdn = msgspec.convert(values, MdnCreate)
    except msgspec.ValidationError as ex:
        path = re.search(r"`\$\.([A-Za-z]+)", str(ex))
        unknown = re.search(r"unknown field `([^`]+)`", str(ex))
        name = (unknown or path).group(1) if (unknown or path) else "forEmailId"
        return SetError.invalid_properties([name], f"Invalid MDN: {ex}")
    for name, value in (mdn.extensionFields or {}).items():
        if not _FIELD_NAME.match(name) or "\n" in value or "\r" in value:
            return SetError.invalid_properties(["extensionFields"], f"{name!r} is not a valid extension field.")
    for name in ("reportingUA", "finalRecipient"):
        value = getattr(mdn, name)
        if value is not None and ("\n" in value or "\r" in value):
            return SetError.invalid_properties([name], f"{name} must be one line.")
    return mdn


def _final_recipient(mdn: MdnCreate, identity: Record) -> str | SetError:
    """[mdn-5-security] the client's finalRecipient only if the Identity
    covers its address; by default the Identity's own."""
    if mdn.finalRecipient is None:
        return f"rfc822; {identity['email']}"
    kind, sep, address = mdn.finalRecipient.partition(";")
    if not sep or kind.strip().lower() != "rfc822":
        address = mdn.finalRecipient
    address = address.strip()
    try:
        from jmap_submission.identity import identity_allows
    except ImportError:
        allowed = address.lower() == str(identity.get("email", "")).lower()
    else:
        allowed = identity_allows(identity, address)
    if not allowed:
        return SetError("forbiddenFrom", f"The Identity may not send as {address!r}.", properties=["finalRecipient"])
    return mdn.finalRecipient


def _prepare(
    ctx: CallContext, snap: Snapshot, mdn: MdnCreate, identity: Record
) -> tuple[str, list[str], bytes, dict[str, Any]] | SetError:
    """(Email id, recipients, message octets, server-filled properties) of one MDN."""
    from jmap_mail.mime import parse

    email_id = ctx.resolve_id(mdn.forEmailId)
    record = snap.get(EMAIL, email_id) if email_id else None
    if record is None:
        return SetError("notFound", "No Email with that id.", properties=["forEmailId"])
    if MDN_SENT in record.get("keywords", {}):  # [mdn-2.1-errors]
        return SetError("mdnAlreadySent", f"The Email already has {MDN_SENT}.")
    raw = snap.read_blob(record["blobId"]) or b""
    original = parse(raw)
    asked = original.header_value("Disposition-Notification-To", "Addresses") or []
    recipients = [a["email"] for a in asked if a.get("email") and "@" in a["email"]]
    if not recipients:
        return SetError("notFound", "The Email asks for no MDN (no valid Disposition-Notification-To).")
    final = _final_recipient(mdn, identity)
    if isinstance(final, SetError):
        return final
    message_ids = original.header_value("Message-ID", "MessageIds") or []
    original_message_id = f"<{message_ids[0]}>" if message_ids else None
    original_recipient = (original.header_value("Original-Recipient", "Raw") or "").strip() or None
    subject = original.subject or ""
    disposition = msgspec.to_builtins(mdn.disposition)
    filled = {
        "subject": mdn.subject if mdn.subject is not None else f"Disposition notification: {subject}".rstrip(": "),
        "textBody": mdn.textBody
        if mdn.textBody is not None
        else (
            f'The message sent to {final.partition(";")[2].strip() or final} with subject "{subject}" '
            f"has been {disposition['type']}. This is no guarantee that it has been read or understood."
        ),
    }
    message, _ = build_report(
        sender=(identity.get("name") or None, identity["email"]),
        to=recipients,
        subject=filled["subject"],
        text=filled["textBody"],
        fields=report_fields(
            reporting_ua=mdn.reportingUA,
            original_recipient=original_recipient,
            final_recipient=final,
            original_message_id=original_message_id,
            disposition=disposition,
            extensions=mdn.extensionFields,
        ),
        original_message_id=original_message_id,
        original=raw if mdn.includeOriginalMessage else None,
        automatic=disposition["actionMode"] == "automatic-action",
    )
    if len(message) > ctx.limits.maxSizeUpload:
        return SetError("tooLarge", "The MDN would be larger than this server sends.", maxSize=ctx.limits.maxSizeUpload)
    server_set = {
        "finalRecipient": final,
        "originalRecipient": original_recipient,
        "originalMessageId": original_message_id,
        "mdnGateway": None,
        "error": None,
    }
    return email_id, recipients, message, server_set | filled


def mdn_send(ctx: CallContext, args: MdnSendArgs) -> None:
    """[mdn-2.1-send] [mdn-2.1-mustSetKeyword] [mdn-2.1-errors] [mdn-5-security]"""
    if MAIL not in ctx.request.using:
        raise MethodError("unknownMethod", f"MDN/send needs {MAIL} in 'using' too.")
    account_for_mdn(ctx, args.accountId, write=True)
    if len(args.send) > ctx.limits.maxObjectsInSet:
        raise MethodError("requestTooLarge", f"At most {ctx.limits.maxObjectsInSet} MDNs in one call.")
    _check_updates(args)
    identity = _identity(ctx, args.accountId, args.identityId)
    enqueue = outbound()
    sent: dict[str, Any] = {}
    not_sent: dict[str, SetError] = {}
    emails: dict[str, str] = {}  # creation id -> the Email the MDN was for
    with ctx.snapshot(args.accountId) as snap:
        for creation_id, values in args.send.items():
            mdn = _validated(values)
            if isinstance(mdn, SetError):
                not_sent[creation_id] = mdn
                continue
            prepared = _prepare(ctx, snap, mdn, identity)
            if isinstance(prepared, SetError):
                not_sent[creation_id] = prepared
                continue
            email_id, recipients, message, filled = prepared
            if email_id in emails.values():
                not_sent[creation_id] = SetError("mdnAlreadySent", "Another MDN of this call is for the same Email.")
                continue
            try:
                enqueue(ctx.core, args.accountId, "", recipients, message)
            except ValueError as ex:
                not_sent[creation_id] = SetError("invalidProperties", f"The MDN cannot be sent: {ex}", properties=["forEmailId"])
                continue
            emails[creation_id] = email_id
            given = {key for key, value in values.items() if value is not None}
            sent[creation_id] = {key: value for key, value in filled.items() if key not in given}
            if "includeOriginalMessage" not in values:
                sent[creation_id]["includeOriginalMessage"] = False
            if "reportingUA" not in values:
                sent[creation_id]["reportingUA"] = None
            if "extensionFields" not in values:
                sent[creation_id]["extensionFields"] = None
    ctx.emit("MDN/send", {"accountId": args.accountId, "sent": sent or None, "notSent": not_sent or None})
    _update_emails(ctx, args, emails)


def _update_emails(ctx: CallContext, args: MdnSendArgs, emails: dict[str, str]) -> None:
    """The implicit Email/set of onSuccessUpdateEmail, for the MDNs sent."""
    if not emails:
        return
    from jmap_mail.email_set import email_set

    update: dict[str, dict[str, Any]] = {}
    for key, patch in (args.onSuccessUpdateEmail or {}).items():
        if key.startswith("#"):
            email_id = emails.get(key[1:])
        else:
            email_id = next((e for e in emails.values() if e == (ctx.resolve_id(key) or key)), None)
        if email_id is not None:
            update[email_id] = patch
    try:
        ctx.emit("Email/set", email_set(ctx, SetArgs(accountId=args.accountId, update=update)))
    except MethodError as ex:
        ctx.emit("error", ex.to_dict())
