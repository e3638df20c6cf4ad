"""EmailSubmission (RFC 8621 §7): sending an Email, tracking it, undoing it.

/get, /changes, /query and /queryChanges are the standard ones, driven by
the :data:`SUBMISSION_TYPE` descriptor ([mail-7.1-methods], filters and
sorts of [mail-7.3-filter]).  /set is the standard one too, with two steps
around it:

* before planning, each create is checked against the Email it sends and
  the account's rights (:func:`prepare`), giving the SetErrors of
  [mail-7.5-errors], the envelope (derived from the headers when the client
  gave none, [mail-7-envelopeDerive]), the release time (FUTURERELEASE
  ``HOLDFOR``/``HOLDUNTIL`` parameters, RFC 4865, within ``maxDelayedSend``:
  [mail-7-sendAt]) and the octets to send, stored as a blob;
* in the planned batch, each created submission gets its queue record
  (:mod:`.outbound`, same id), so the submission and the queued message are
  committed together or not at all; a cancel ([mail-7-undoStatus]) removes
  the queue record in a batch conditional on the queue, so it either wins
  over the sender's claim or fails with ``cannotUnsend``.

Then ``onSuccessUpdateEmail``/``onSuccessDestroyEmail`` run as ONE implicit
Email/set, through the registered method, whose response follows this
one with the same call id [mail-7.5-onSuccess].
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NotRequired, TypedDict

import msgspec
from msgspec import Meta

from jmapcore.context import CallContext
from jmapcore.datatype import DataType, Filter, Property, Sort
from jmapcore.errors import MethodError, SetError
from jmapcore.standard.args import SetArgs
from jmapcore.standard.get import request_too_large
from jmapcore.standard.set import SetOutcome, run_set
from jmapcore.storage import AccountInfo, Destroy, Put, Record, Snapshot
from jmapcore.wire import Id, IdOrRef

from .constants import (
    EMAIL_SUBMISSION,
    IDENTITY,
    MAX_DELAYED_SEND,
    MAX_RECIPIENTS,
    MAX_SIZE,
    QUEUE,
    SUBMISSION,
)
from .identity import ensure_identities, fail_create, identity_allows, may_send_from
from .message import Headers, outgoing, valid_mailbox
from .outbound import delivery_status, queue_record, settings_of, utc_date

EMAIL = "Email"
AwareDateTime = Annotated[datetime, Meta(tz=True)]


class Address(TypedDict):
    email: str
    parameters: NotRequired[dict[str, str | None] | None]


class Envelope(TypedDict):
    """[mail-7-envelope]"""

    mailFrom: Address
    rcptTo: list[Address]


def _date(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _validate(ctx: CallContext, record: Record, old: Record | None) -> SetError | None:
    """[mail-7-undoStatus] the one update a client may make: pending → canceled."""
    if old is None or record.get("undoStatus") == old.get("undoStatus"):
        return None
    if record.get("undoStatus") != "canceled":
        return SetError.invalid_properties(["undoStatus"], "undoStatus may only be set to canceled.")
    if old.get("undoStatus") != "pending":
        return SetError("cannotUnsend", "The message has already been sent.")
    return None


SUBMISSION_TYPE = DataType(
    name=EMAIL_SUBMISSION,
    capability=SUBMISSION,
    methods=("get", "changes", "query", "queryChanges"),  # /set: submission_set
    # [mail-7-props]
    properties={
        "identityId": Property(Id, immutable=True, ref=IDENTITY),
        "emailId": Property(Id, immutable=True, ref=EMAIL),
        "threadId": Property(Id, server_set=True, immutable=True),
        "envelope": Property(Envelope | None, immutable=True, default=None),
        "sendAt": Property(str, server_set=True, immutable=True),
        "undoStatus": Property(Literal["pending", "final", "canceled"], default="pending"),
        "deliveryStatus": Property(dict[str, Any] | None, server_set=True),
        "dsnBlobIds": Property(list[Id], server_set=True),
        "mdnBlobIds": Property(list[Id], server_set=True),
    },
    # [mail-7.3-filter]
    filters={
        "identityIds": Filter(list[Id], match=lambda r, v: r["identityId"] in v),
        "emailIds": Filter(list[Id], match=lambda r, v: r["emailId"] in v),
        "threadIds": Filter(list[Id], match=lambda r, v: r["threadId"] in v),
        "undoStatus": Filter(str, match=lambda r, v: r["undoStatus"] == v),
        "before": Filter(AwareDateTime, match=lambda r, v: r["sendAt"] < _date(v)),
        "after": Filter(AwareDateTime, match=lambda r, v: r["sendAt"] >= _date(v)),
    },
    # [mail-7.3-filter] the RFC names the sort sentAt; the property is sendAt: both work.
    sorts={
        "emailId": Sort(lambda r: r["emailId"]),
        "threadId": Sort(lambda r: r["threadId"]),
        "sendAt": Sort(lambda r: r["sendAt"], indexed=True),
        "sentAt": Sort(lambda r: r["sendAt"]),
    },
    id_prefix="S",
    validate=_validate,
)


class SubmissionSetArgs(SetArgs, kw_only=True):
    """[mail-7.5-onSuccess]"""

    onSuccessUpdateEmail: dict[IdOrRef, dict[str, Any]] | None = None
    onSuccessDestroyEmail: list[IdOrRef] | None = None


# -- checking a create ------------------------------------------------------------------


@dataclass(slots=True)
class Prepared:
    """A create that passed the checks, ready to be queued."""

    email_id: str
    thread_id: str
    envelope: dict[str, Any]
    derived: bool
    mail_from: str
    parameters: dict[str, str | None]
    recipients: list[str]
    send_at: float
    data: bytes
    blob_id: str = ""


def _invalid_email(description: str, *properties: str) -> SetError:
    return SetError("invalidEmail", description, properties=list(properties))


def _release_time(parameters: dict[str, str | None], now: float) -> float | SetError:
    """[mail-7-sendAt] FUTURERELEASE (RFC 4865): HOLDFOR seconds or a
    HOLDUNTIL date, no later than ``maxDelayedSend`` from now."""
    upper = {key.upper(): value for key, value in parameters.items()}
    hold_for, hold_until = upper.get("HOLDFOR"), upper.get("HOLDUNTIL")
    if hold_for is not None and hold_until is not None:
        return SetError.invalid_properties(["envelope"], "Give HOLDFOR or HOLDUNTIL, not both.")
    if hold_for is not None:
        if not hold_for.isdigit():
            return SetError.invalid_properties(["envelope"], "HOLDFOR takes a number of seconds.")
        delay = float(int(hold_for))
    elif hold_until is not None:
        try:
            moment = datetime.fromisoformat(hold_until.replace("Z", "+00:00"))
        except ValueError:
            return SetError.invalid_properties(["envelope"], "HOLDUNTIL takes an RFC 3339 date-time.")
        if moment.tzinfo is None:
            return SetError.invalid_properties(["envelope"], "HOLDUNTIL needs a time zone.")
        delay = max(moment.timestamp() - now, 0.0)
    else:
        return now
    if delay > MAX_DELAYED_SEND:
        return SetError.invalid_properties(
            ["envelope"], f"A message may be held back at most {MAX_DELAYED_SEND} seconds (maxDelayedSend)."
        )
    return now + delay


#: Envelope parameters a client may give: FUTURERELEASE's (handled here) and
#: those the server sets itself toward the relay (SIZE, BODY, SMTPUTF8).
_OWN_PARAMETERS = frozenset({"HOLDFOR", "HOLDUNTIL", "SIZE", "BODY", "SMTPUTF8"})


def _envelope(
    given: Any, headers: Headers, identity: Record, account: AccountInfo
) -> tuple[str, dict[str, str | None], list[str], bool] | SetError | None:
    """(mailFrom, its parameters, rcptTo, derived?) [mail-7-envelopeDerive];
    None when ``envelope`` is malformed (the standard check says so)."""
    if given is not None:
        try:
            envelope = msgspec.convert(given, Envelope)
        except msgspec.ValidationError:
            return None
        mail_from = envelope["mailFrom"]["email"]
        parameters = dict(envelope["mailFrom"].get("parameters") or {})
        unknown = [name for name in parameters if name.upper() not in _OWN_PARAMETERS]
        if unknown or any(a.get("parameters") for a in envelope["rcptTo"]):
            return SetError.invalid_properties(
                ["envelope"], f"Unsupported SMTP parameters: {', '.join(unknown) or 'on rcptTo'}."
            )
        if not (valid_mailbox(mail_from) and (identity_allows(identity, mail_from) or may_send_from(account, mail_from))):
            return SetError("forbiddenMailFrom", f"This account may not use {mail_from!r} as the envelope sender.")
        return mail_from, parameters, [a["email"] for a in envelope["rcptTo"]], False
    name = "Sender" if headers.count("Sender") else "From"
    if headers.count(name) != 1:
        return _invalid_email(f"The message has {headers.count(name)} {name} header fields.", name.lower())
    found = headers.addresses(name)
    if len(found) != 1:
        return _invalid_email(f"The {name} header field must hold exactly one address.", name.lower())
    mail_from = found[0] if identity_allows(identity, found[0]) or may_send_from(account, found[0]) else identity["email"]
    recipients: dict[str, str] = {}
    for field in ("To", "Cc", "Bcc"):
        for address in headers.addresses(field):
            recipients.setdefault(address.lower(), address)  # one copy per mailbox, whatever its case
    return mail_from, {}, list(recipients.values()), True


def prepare(
    ctx: CallContext, snap: Snapshot, account: AccountInfo, values: dict[str, Any], now: float
) -> Prepared | SetError | None:
    """Check one create against its Email, Identity and the account's
    rights [mail-7.5-send] [mail-7.5-errors]; None leaves a malformed or
    dangling property to the standard checks (invalidProperties)."""
    email_id, identity_id = values.get("emailId"), values.get("identityId")
    if not isinstance(email_id, str) or not isinstance(identity_id, str):
        return None
    email_id, identity_id = ctx.resolve_id(email_id), ctx.resolve_id(identity_id)
    email = snap.get(EMAIL, email_id) if email_id else None
    identity = snap.get(IDENTITY, identity_id) if identity_id else None
    if email is None or identity is None:
        return None
    if not may_send_from(account, identity["email"]):
        return SetError("forbiddenFrom", f"This account may no longer send as {identity['email']}.")
    raw = snap.read_blob(email["blobId"])
    if raw is None:
        return _invalid_email("The message's content is missing.")
    if len(raw) > MAX_SIZE:
        return SetError("tooLarge", f"The message is larger than {MAX_SIZE} octets.", maxSize=MAX_SIZE)
    headers = Headers(raw)
    senders = headers.addresses("From")
    if headers.count("From") != 1 or not senders:
        return _invalid_email("The message needs one From header field with an address.", "from")
    if headers.count("Sender") > 1 or (len(senders) > 1 and not headers.count("Sender")):
        return _invalid_email("A From with several addresses needs one Sender header field.", "sender")
    forbidden = [a for a in senders if not (identity_allows(identity, a) or may_send_from(account, a))]
    if forbidden:
        return SetError("forbiddenFrom", f"This account may not send as {', '.join(forbidden)}.")
    envelope = _envelope(values.get("envelope"), headers, identity, account)
    if envelope is None or isinstance(envelope, SetError):
        return envelope
    mail_from, parameters, recipients, derived = envelope
    send_at = _release_time(parameters, now)
    if isinstance(send_at, SetError):
        return send_at
    if not recipients:
        return SetError("noRecipients", "The envelope has no recipients.")
    if len(recipients) > MAX_RECIPIENTS:
        return SetError(
            "tooManyRecipients", f"At most {MAX_RECIPIENTS} recipients.", maxRecipients=MAX_RECIPIENTS
        )
    invalid = [r for r in recipients if not valid_mailbox(r)]
    if invalid:
        return SetError("invalidRecipients", "Some recipients are not valid addresses.", invalidRecipients=invalid)
    data = outgoing(raw, domain=mail_from.rpartition("@")[2] or None)
    if len(data) > MAX_SIZE:
        return SetError("tooLarge", f"The message is larger than {MAX_SIZE} octets.", maxSize=MAX_SIZE)
    stored = {
        "mailFrom": {"email": mail_from, "parameters": parameters or None},
        "rcptTo": [{"email": r, "parameters": None} for r in recipients],
    }
    relay_parameters = {k: v for k, v in parameters.items() if k.upper() not in _OWN_PARAMETERS}
    return Prepared(email_id, email["threadId"], stored, derived, mail_from, relay_parameters, recipients, send_at, data)


# -- EmailSubmission/set ---------------------------------------------------------------


def _recent(snap: Snapshot, since: str, limit: int) -> int:
    """Submissions released since ``since`` (at most ``limit`` counted)."""
    count = 0
    for key, _ in snap.scan_index(EMAIL_SUBMISSION, "sort:sendAt", reverse=True):
        if not isinstance(key[0], str) or key[0] < since or count >= limit:
            break
        count += 1
    return count


class _Plan:
    """What the extension step learnt in the plan that was committed."""

    def __init__(self) -> None:
        self.email_of: dict[str, str] = {}


def submission_set(ctx: CallContext, args: SubmissionSetArgs) -> None:
    """EmailSubmission/set (see the module docstring)."""
    account = ctx.account(args.accountId, SUBMISSION, write=True)
    create = args.create or {}
    if len(create) + len(args.update or {}) + len(args.destroy or []) > ctx.limits.maxObjectsInSet:
        raise request_too_large(ctx.limits.maxObjectsInSet, "records")
    ensure_identities(ctx.core, account)
    settings = settings_of(ctx.core)
    now = time.time()
    prepared: dict[str, Prepared | SetError | None] = {}
    with ctx.snapshot(args.accountId) as snap:
        for creation_id, values in create.items():
            prepared[creation_id] = prepare(ctx, snap, account, values, now)
    for item in prepared.values():
        if isinstance(item, Prepared):
            item.blob_id = ctx.backend.put_blob(args.accountId, item.data, ctx.principal.name).blob_id
    plan = _Plan()

    def extend(ctx: CallContext, snap: Snapshot, outcome: SetOutcome, _: Any) -> None:
        plan.email_of = {}
        puts = {p.record["id"]: p for p in outcome.batch.puts if p.type_name == EMAIL_SUBMISSION}
        recent = _recent(snap, utc_date(now - 3600), settings.max_per_hour) if outcome.created_ids else 0
        for creation_id, record_id in list(outcome.created_ids.items()):
            item = prepared.get(creation_id)
            if not isinstance(item, Prepared) or snap.get(EMAIL, item.email_id) is None:
                fail_create(outcome, creation_id, item if isinstance(item, SetError) else SetError.invalid_properties(["emailId"]))
                continue
            if recent >= settings.max_per_hour:
                fail_create(outcome, creation_id, SetError(
                    "forbiddenToSend", f"This account may send at most {settings.max_per_hour} messages an hour."
                ))
                continue
            recent += 1
            _queue(outcome, puts[record_id].record, creation_id, item)
            plan.email_of[record_id] = item.email_id
        if outcome.updated:
            _cancel(snap, outcome, puts, now)
        for record_id in list(outcome.updated):
            plan.email_of[record_id] = puts[record_id].record["emailId"]
        for record_id in outcome.destroyed:
            old = snap.get(EMAIL_SUBMISSION, record_id)
            if old is not None:
                plan.email_of[record_id] = old["emailId"]

    response = run_set(ctx, SUBMISSION_TYPE, args, extend=extend)
    ctx.emit("EmailSubmission/set", response)
    _on_success(ctx, args, plan.email_of)


def _queue(outcome: SetOutcome, record: Record, creation_id: str, item: Prepared) -> None:
    """Fill a created submission's server-set properties and queue its message."""
    record_id = record["id"]
    server_set = {
        "threadId": item.thread_id,
        "sendAt": utc_date(item.send_at),
        "undoStatus": "pending",
        "deliveryStatus": delivery_status({r: {"state": "queued", "reply": ""} for r in item.recipients}),
        "dsnBlobIds": [],
        "mdnBlobIds": [],
    }
    record.update(server_set, envelope=item.envelope)
    shown = outcome.created[creation_id]
    shown.update(server_set)
    if item.derived:
        shown["envelope"] = item.envelope
    outcome.batch.puts.append(Put(QUEUE, queue_record(
        record_id, item.blob_id, item.mail_from, item.recipients,
        not_before=item.send_at, submission_id=record_id, mail_parameters=item.parameters,
    ), created=True))
    outcome.batch.blob_refs[item.blob_id] = outcome.batch.blob_refs.get(item.blob_id, 0) + 1


def _cancel(snap: Snapshot, outcome: SetOutcome, puts: dict[str, Put], now: float) -> None:
    """[mail-7-undoStatus] a cancel takes the message out of the queue, in a
    batch conditional on the queue: if a worker claimed it first, or it was
    tried already, nothing can be undone (cannotUnsend)."""
    outcome.batch.expect[QUEUE] = snap.type_modseq(QUEUE)
    for record_id in list(outcome.updated):
        record = puts[record_id].record
        old = snap.get(EMAIL_SUBMISSION, record_id)
        if old is None or record.get("undoStatus") != "canceled" or old.get("undoStatus") == "canceled":
            continue
        queued = snap.get(QUEUE, record_id)
        if queued is None or queued.get("lease", 0.0) > now or queued.get("attempts", 0) > 0:
            del outcome.updated[record_id]
            outcome.batch.puts = [p for p in outcome.batch.puts if p is not puts[record_id]]
            outcome.not_updated[record_id] = SetError("cannotUnsend", "The message is being or has been sent.")
            continue
        outcome.batch.destroys.append(Destroy(QUEUE, record_id))
        outcome.batch.blob_refs[queued["blobId"]] = outcome.batch.blob_refs.get(queued["blobId"], 0) - 1
        status = {
            address: {"smtpReply": "", "delivered": "no", "displayed": "unknown"}
            for address in queued["rcpts"]
        }
        record["deliveryStatus"] = status
        outcome.updated[record_id] = {"deliveryStatus": status}


def _on_success(ctx: CallContext, args: SubmissionSetArgs, email_of: dict[str, str]) -> None:
    """[mail-7.5-onSuccess] one implicit Email/set for the submissions that
    succeeded, run through the registered method."""
    update: dict[str, dict[str, Any]] = {}
    destroy: list[str] = []
    for key, patch in (args.onSuccessUpdateEmail or {}).items():
        email_id = email_of.get(ctx.resolve_id(key) or "")
        if email_id is not None:
            update[email_id] = patch
    for key in args.onSuccessDestroyEmail or []:
        email_id = email_of.get(ctx.resolve_id(key) or "")
        if email_id is not None and email_id not in destroy:
            destroy.append(email_id)
    method = ctx.registry.methods.get("Email/set")
    if not (update or destroy) or method is None:
        return
    arguments: dict[str, Any] = {"accountId": args.accountId, "update": update or None, "destroy": destroy or None}
    try:
        decoded = msgspec.convert(arguments, method.args_type) if method.args_type is not None else arguments
        result = method.handler(ctx, decoded)
    except msgspec.ValidationError as ex:
        ctx.emit("error", MethodError.invalid_arguments(str(ex)).to_dict())
        return
    except MethodError as ex:
        ctx.emit("error", ex.to_dict())
        return
    if result is not None:
        ctx.emit("Email/set", result)
