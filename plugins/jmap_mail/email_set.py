"""Writing Emails: Email/set, Email/import and Email/copy (RFC 8621 §4.6-4.8).

All three stage their changes through one :class:`~jmap_mail.store.MailWriter`
per attempt and commit once, replanning when another writer got in first.
Message blobs are stored before the batch (content-addressed, so a retry
stores nothing twice) and referenced by it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from jmapcore.context import CallContext
from jmapcore.errors import MethodError, SetError
from jmapcore.patch import apply_patch, top_level
from jmapcore.standard.args import Args, CopyArgs, SetArgs
from jmapcore.standard.get import request_too_large
from jmapcore.standard.set import commit_planned, state_mismatch
from jmapcore.state import type_state
from jmapcore.storage import Snapshot, WriteBatch
from jmapcore.wire import Id

from .constants import (
    EMAIL,
    MAIL,
    MAILBOX,
    MAX_KEYWORDS_PER_EMAIL,
    MAX_MAILBOXES_PER_EMAIL,
    MAX_SIZE_ATTACHMENTS_PER_EMAIL,
)
from .dates import AwareDateTime, now_utc, utc_date
from .keywords import normalise
from .mime import BuildError, ParsedEmail, build_message, parse
from .store import MailWriter

#: Properties an Email/set update may change ([mail-4.6-immutable]).
MUTABLE = frozenset({"keywords", "mailboxIds"})
#: Properties of a create that are not message content.
METADATA = frozenset({"mailboxIds", "keywords", "receivedAt"})


class Attempt:
    """One planning attempt against one snapshot: a batch and a MailWriter."""

    def __init__(self, ctx: CallContext, snap: Snapshot, account_id: str) -> None:
        self.ctx = ctx
        self.snap = snap
        self.batch = WriteBatch(account_id)
        self.writer = MailWriter(ctx, snap, self.batch)

    def resolve(self, value: str) -> str | None:
        return self.ctx.resolve_id(value)

    def mailbox_ids(self, value: Any, name: str = "mailboxIds") -> dict[str, bool] | SetError:
        """[mail-4.1.1-mailboxIds] a non-empty set of existing mailboxes."""
        if not isinstance(value, dict) or not value or any(v is not True for v in value.values()):
            return SetError.invalid_properties([name], "mailboxIds must be a non-empty map of ids to true.")
        resolved = {self.resolve(key): True for key in value if isinstance(key, str)}
        if None in resolved or any(self.snap.get(MAILBOX, m) is None for m in resolved):
            return SetError.invalid_properties([name], "Every mailbox must exist.")
        if len(resolved) > MAX_MAILBOXES_PER_EMAIL:
            return SetError("tooManyMailboxes", f"At most {MAX_MAILBOXES_PER_EMAIL} mailboxes.")
        return resolved  # type: ignore[return-value]

    @staticmethod
    def keywords(value: Any) -> dict[str, bool] | SetError:
        keywords = normalise(value if value is not None else {})
        if keywords is None:
            return SetError.invalid_properties(["keywords"], "Invalid keywords (syntax, or a value not true).")
        if len(keywords) > MAX_KEYWORDS_PER_EMAIL:
            return SetError("tooManyKeywords", f"At most {MAX_KEYWORDS_PER_EMAIL} keywords.")
        return keywords

    def mutable(self, values: dict[str, Any]) -> tuple[dict[str, bool], dict[str, bool]] | SetError:
        """The checked mailboxIds and keywords of a create or an update."""
        mailboxes = self.mailbox_ids(values.get("mailboxIds"))
        if isinstance(mailboxes, SetError):
            return mailboxes
        keywords = self.keywords(values.get("keywords"))
        if isinstance(keywords, SetError):
            return keywords
        return mailboxes, keywords

    def add(self, parsed: ParsedEmail, blob_id: str, values: dict[str, Any]) -> dict[str, Any] | SetError:
        """Stage a new Email from a stored message and its metadata."""
        checked = self.mutable(values)
        if isinstance(checked, SetError):
            return checked
        mailboxes, keywords = checked
        refused = self.writer.admit(len(parsed.raw))  # [mail-4.8-errors] overQuota
        if refused is not None:
            return refused
        received = values.get("receivedAt")
        if received is None:
            received_at = now_utc()
        else:
            try:
                received_at = utc_date(msgspec.convert(received, AwareDateTime, strict=True))
            except msgspec.ValidationError:
                return SetError.invalid_properties(["receivedAt"], "receivedAt must be a UTCDate.")
        record = self.writer.add_email(
            parsed, blob_id=blob_id, mailbox_ids=mailboxes, keywords=keywords, received_at=received_at
        )
        # [mail-4.6-createdResult]
        return {"id": record["id"], "blobId": blob_id, "threadId": record["threadId"], "size": record["size"]}


def commit_attempts(
    ctx: CallContext, account_id: str, if_in_state: str | None, plan: Callable[[Attempt], Any]
) -> tuple[str, str, Any]:
    """Run ``plan`` against fresh snapshots until its batch commits;
    return (oldState, newState, what plan returned) for the Email type."""

    def planned(snap: Snapshot) -> tuple[WriteBatch, Any]:
        attempt = Attempt(ctx, snap, account_id)
        outcome = plan(attempt)
        attempt.writer.finish()
        return attempt.batch, outcome

    return commit_planned(ctx, account_id, EMAIL, if_in_state, planned)


def add_all(
    attempt: Attempt, sources: dict[str, tuple[ParsedEmail, str, dict[str, Any]] | SetError]
) -> tuple[dict[str, Any], dict[str, SetError]]:
    """Stage one new Email per source (import and copy); (created, notCreated)."""
    created: dict[str, Any] = {}
    failed: dict[str, SetError] = {}
    for creation_id, source in sources.items():
        result = source if isinstance(source, SetError) else attempt.add(*source)
        (failed if isinstance(result, SetError) else created)[creation_id] = result
    return created, failed


# -- Email/set ---------------------------------------------------------------------


_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


def _sender_domain(content: dict[str, Any]) -> str | None:
    """The domain of the first From address, for a generated Message-ID
    (rather than this machine's host name, which would leak into every
    message sent)."""
    senders = content.get("from")
    if isinstance(senders, list) and senders and isinstance(senders[0], dict):
        address = senders[0].get("email")
        if isinstance(address, str):
            domain = address.rpartition("@")[2].lower()
            if "." in domain and _DOMAIN.fullmatch(domain):
                return domain
    return None


def _build(ctx: CallContext, snap: Snapshot, values: dict[str, Any]) -> tuple[bytes, ParsedEmail] | SetError:
    content = {k: v for k, v in values.items() if k not in METADATA}

    def load(blob_id: str) -> bytes | None:
        return ctx.core.read_blob(ctx.principal, snap, ctx.resolve_id(blob_id) or "")

    try:
        raw = build_message(
            content,
            load,
            datetime.now(UTC),
            domain=_sender_domain(content),
            max_size=ctx.limits.maxSizeUpload,
            max_attachments_size=MAX_SIZE_ATTACHMENTS_PER_EMAIL,
        )
    except BuildError as ex:
        error = SetError(ex.kind, str(ex))
        if ex.properties:
            error["properties"] = ex.properties
        if ex.kind == "blobNotFound":
            error["notFound"] = ex.not_found
        return error
    return raw, parse(raw)


def _update(attempt: Attempt, email_id: str, patch: dict[str, Any]) -> SetError | None:
    current = attempt.writer.email(email_id)
    if current is None:
        return SetError.not_found()
    names = {top_level(path) for path in patch}
    if names - MUTABLE:
        return SetError.invalid_properties(sorted(names - MUTABLE), "Only keywords and mailboxIds can change.")
    # Creation references may stand in mailbox keys: mailboxIds/#new.
    patch = {
        (f"mailboxIds/{attempt.resolve(path[11:]) or path[11:]}" if path.startswith("mailboxIds/#") else path): value
        for path, value in patch.items()
    }
    patched = apply_patch({k: current[k] for k in MUTABLE}, patch, {"keywords": {}})
    if isinstance(patched, SetError):
        return patched
    checked = attempt.mutable(patched)
    if isinstance(checked, SetError):
        return checked
    attempt.writer.update_email(email_id, mailbox_ids=checked[0], keywords=checked[1])
    return None


def email_set(ctx: CallContext, args: SetArgs) -> dict[str, Any]:
    """[mail-4.6-scope] create (from JMAP structure), update keywords and
    mailboxes (with patches), destroy."""
    ctx.account(args.accountId, MAIL, write=True)
    create, update, destroy = args.create or {}, args.update or {}, list(dict.fromkeys(args.destroy or []))
    if len(create) + len(update) + len(destroy) > ctx.limits.maxObjectsInSet:
        raise request_too_large(ctx.limits.maxObjectsInSet, "records")
    built: dict[str, tuple[bytes, ParsedEmail] | SetError] = {}
    with ctx.snapshot(args.accountId) as snap:
        for creation_id, values in create.items():
            built[creation_id] = _build(ctx, snap, values)
    blobs = {
        cid: ctx.backend.put_blob(args.accountId, b[0], ctx.principal.name).blob_id
        for cid, b in built.items()
        if not isinstance(b, SetError)
    }

    def plan(attempt: Attempt) -> dict[str, Any]:
        out: dict[str, Any] = {"created": {}, "notCreated": {}, "updated": {}, "notUpdated": {}, "destroyed": [], "notDestroyed": {}}
        for creation_id, values in create.items():
            made = built[creation_id]
            result = made if isinstance(made, SetError) else attempt.add(made[1], blobs[creation_id], values)
            out["notCreated" if isinstance(result, SetError) else "created"][creation_id] = result
        local = {cid: value["id"] for cid, value in out["created"].items()}
        destroying = {local.get(k[1:]) if k.startswith("#") else k for k in destroy}
        for key, patch in update.items():
            email_id = local.get(key[1:]) if key.startswith("#") else key
            email_id = email_id or attempt.resolve(key)
            if email_id is None or attempt.writer.email(email_id) is None:
                out["notUpdated"][key] = SetError.not_found()
            elif email_id in destroying:
                out["notUpdated"][key] = SetError("willDestroy", "The Email is destroyed in this call.")
            elif (error := _update(attempt, email_id, patch)) is not None:
                out["notUpdated"][key] = error
            else:
                out["updated"][email_id] = None
        for key in destroy:
            email_id = (local.get(key[1:]) if key.startswith("#") else key) or attempt.resolve(key)
            if email_id is not None and attempt.writer.destroy_email(email_id):
                out["destroyed"].append(email_id)
            else:
                out["notDestroyed"][key] = SetError.not_found()
        return out

    old_state, new_state, out = commit_attempts(ctx, args.accountId, args.ifInState, plan)
    for creation_id, value in out["created"].items():
        ctx.remember_created(creation_id, value["id"])
    return {
        "accountId": args.accountId,
        "oldState": old_state,
        "newState": new_state,
        **{key: (value or None) for key, value in out.items()},
    }


# -- Email/import --------------------------------------------------------------------


class EmailImport(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    blobId: str
    mailboxIds: dict[str, bool]
    keywords: dict[str, bool] = {}
    receivedAt: AwareDateTime | None = None


class EmailImportArgs(Args, kw_only=True):
    accountId: Id
    ifInState: str | None = None
    emails: dict[Id, dict[str, Any]]


def _received_header_date(parsed: ParsedEmail) -> str | None:
    """[mail-4.8-args] the time of the most recent Received header."""
    from email.utils import parsedate_to_datetime

    received = parsed.header_value("Received", "Raw", True)
    if not received:
        return None
    try:
        moment = parsedate_to_datetime(received[0].rsplit(";", 1)[-1].strip())
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None or moment.tzinfo is None:
        return None
    return utc_date(moment)


def email_import(ctx: CallContext, args: EmailImportArgs) -> dict[str, Any]:
    """[mail-4.8-args] [mail-4.8-atomic] [mail-4.8-errors] [mail-4.8-response]"""
    ctx.account(args.accountId, MAIL, write=True)
    if len(args.emails) > ctx.limits.maxObjectsInSet:
        raise request_too_large(ctx.limits.maxObjectsInSet, "emails")
    sources: dict[str, tuple[ParsedEmail, str, dict[str, Any]] | SetError] = {}
    with ctx.snapshot(args.accountId) as snap:
        for creation_id, values in args.emails.items():
            try:
                item = msgspec.convert(values, EmailImport)
            except msgspec.ValidationError as ex:
                sources[creation_id] = SetError.invalid_properties([], f"Invalid EmailImport: {ex}")
                continue
            blob_id = ctx.resolve_id(item.blobId) or ""
            raw = ctx.core.read_blob(ctx.principal, snap, blob_id)
            if raw is None:
                sources[creation_id] = SetError.invalid_properties(["blobId"], "No blob with that id.")
                continue
            parsed = parse(raw)
            if snap.blob_info(blob_id) is None:  # a part of another message: store it as its own blob
                blob_id = ctx.backend.put_blob(args.accountId, raw, ctx.principal.name).blob_id
            metadata: dict[str, Any] = {"mailboxIds": item.mailboxIds, "keywords": item.keywords}
            received = utc_date(item.receivedAt) if item.receivedAt is not None else _received_header_date(parsed)
            if received is not None:
                metadata["receivedAt"] = received
            sources[creation_id] = (parsed, blob_id, metadata)

    old_state, new_state, (created, failed) = commit_attempts(
        ctx, args.accountId, args.ifInState, lambda attempt: add_all(attempt, sources)
    )
    for creation_id, value in created.items():
        ctx.remember_created(creation_id, value["id"])
    return {
        "accountId": args.accountId,
        "oldState": old_state,
        "newState": new_state,
        "created": created or None,
        "notCreated": failed or None,
    }


# -- Email/copy ------------------------------------------------------------------------


def email_copy(ctx: CallContext, args: CopyArgs) -> None:
    """[mail-4.7-copy] only mailboxIds, keywords and receivedAt may differ."""
    if args.fromAccountId == args.accountId:
        raise MethodError.invalid_arguments("fromAccountId and accountId must differ.")
    if args.fromAccountId not in ctx.principal.account_ids:
        raise MethodError("fromAccountNotFound", "No source account with that id is available to you.")
    ctx.account(args.accountId, MAIL, write=True)
    if len(args.create) > ctx.limits.maxObjectsInSet:
        raise request_too_large(ctx.limits.maxObjectsInSet, "records")
    sources: dict[str, tuple[ParsedEmail, str, dict[str, Any]] | SetError] = {}
    originals: dict[str, str] = {}
    with ctx.snapshot(args.fromAccountId) as snap:
        state = type_state(snap.epoch(), snap.type_modseq(EMAIL))
        if args.ifFromInState is not None and args.ifFromInState != state:
            raise state_mismatch()
        for creation_id, values in args.create.items():
            extra = set(values) - {"id", *METADATA}
            record = snap.get(EMAIL, ctx.resolve_id(str(values.get("id", ""))) or "")
            if extra:
                sources[creation_id] = SetError.invalid_properties(sorted(extra), "Only mailboxIds, keywords and receivedAt can be set.")
            elif record is None:
                sources[creation_id] = SetError.not_found()
            else:
                raw = snap.read_blob(record["blobId"]) or b""
                blob_id = ctx.backend.put_blob(args.accountId, raw, ctx.principal.name).blob_id
                metadata = {"keywords": record["keywords"], "receivedAt": record["receivedAt"], **values}
                sources[creation_id] = (parse(raw), blob_id, metadata)
                originals[creation_id] = record["id"]

    old_state, new_state, (created, failed) = commit_attempts(
        ctx, args.accountId, args.ifInState, lambda attempt: add_all(attempt, sources)
    )
    for creation_id, value in created.items():
        ctx.remember_created(creation_id, value["id"])
    ctx.emit(
        "Email/copy",
        {
            "fromAccountId": args.fromAccountId,
            "accountId": args.accountId,
            "oldState": old_state,
            "newState": new_state,
            "created": created or None,
            "notCreated": failed or None,
        },
    )
    if args.onSuccessDestroyOriginal and created:
        destroy = SetArgs(
            accountId=args.fromAccountId,
            ifInState=args.destroyFromIfInState,
            destroy=[originals[creation_id] for creation_id in created],
        )
        try:
            ctx.emit("Email/set", email_set(ctx, destroy))
        except MethodError as ex:
            ctx.emit("error", ex.to_dict())
