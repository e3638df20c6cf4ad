"""VacationResponse (RFC 8621 §8): ``urn:ietf:params:jmap:vacationresponse``.

One object per account, id ``singleton`` ([mail-8.1-singleton]), read and
changed with VacationResponse/get and /set; create and destroy get the
``singleton`` SetError.  Until it is first set the object is the default
(disabled, every other property null).  The auto-reply itself is sent by
:mod:`jmap_vacation.autoreply` when ``jmapcore lmtp`` delivers mail.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from jmapcore.context import CallContext
from jmapcore.datatype import DataType, Property
from jmapcore.errors import MethodError, SetError
from jmapcore.patch import apply_patch
from jmapcore.registry import Method, Plugin
from jmapcore.standard.args import GetArgs, SetArgs
from jmapcore.standard.get import select_properties
from jmapcore.standard.set import commit_planned
from jmapcore.state import type_state
from jmapcore.storage import Put, Snapshot, WriteBatch

VACATION = "urn:ietf:params:jmap:vacationresponse"
MAIL = "urn:ietf:params:jmap:mail"
VACATION_RESPONSE = "VacationResponse"
SINGLETON = "singleton"

#: [mail-8-props]
DEFAULTS: dict[str, Any] = {
    "id": SINGLETON,
    "isEnabled": False,
    "fromDate": None,
    "toDate": None,
    "subject": None,
    "textBody": None,
    "htmlBody": None,
}

VacationResponse = DataType(
    name=VACATION_RESPONSE,
    capability=VACATION,
    methods=(),  # /get and /set below: the singleton's own rules
    properties={
        "isEnabled": Property(bool, default=False),
        "fromDate": Property(str | None, default=None),
        "toDate": Property(str | None, default=None),
        "subject": Property(str | None, default=None),
        "textBody": Property(str | None, default=None),
        "htmlBody": Property(str | None, default=None),
    },
)

_UTC_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def parse_utc_date(value: str) -> datetime:
    """A UTCDate ([core-1.4-date]: ``Z``, no other offset) as a datetime."""
    if not _UTC_DATE.match(value):
        raise ValueError(value)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def current(snap: Snapshot) -> dict[str, Any]:
    """The stored object, or the default one."""
    return {**DEFAULTS, **(snap.get(VACATION_RESPONSE, SINGLETON) or {})}


def vacation_get(ctx: CallContext, args: GetArgs) -> dict[str, Any]:
    """[mail-8.1-singleton] ids null or ["singleton"]; any other id is notFound."""
    ctx.account(args.accountId, VACATION)
    properties = select_properties(VacationResponse, args.properties)
    with ctx.snapshot(args.accountId) as snap:
        state = type_state(snap.epoch(), snap.type_modseq(VACATION_RESPONSE))
        record = current(snap)
    wanted = [SINGLETON] if args.ids is None else list(dict.fromkeys(ctx.resolve_id(i) or i for i in args.ids))
    found = [{name: record.get(name) for name in properties} for i in wanted if i == SINGLETON]
    return {"accountId": args.accountId, "state": state, "list": found,
            "notFound": [i for i in wanted if i != SINGLETON]}


def _check(record: dict[str, Any]) -> SetError | None:
    """[mail-8-props] each property's type; dates are UTCDates."""
    bad = []
    if not isinstance(record.get("isEnabled"), bool):
        bad.append("isEnabled")
    for name in ("fromDate", "toDate"):
        value = record.get(name)
        if value is None:
            continue
        try:
            parse_utc_date(value if isinstance(value, str) else "")
        except ValueError:
            bad.append(name)
    bad += [n for n in ("subject", "textBody", "htmlBody") if not isinstance(record.get(n), str | None)]
    bad += [n for n in record if n not in DEFAULTS]
    if bad:
        return SetError.invalid_properties(bad)
    return None


def vacation_set(ctx: CallContext, args: SetArgs) -> dict[str, Any]:
    """[mail-8.1-singleton] only an update of ``singleton``; create and
    destroy get the ``singleton`` SetError."""
    ctx.account(args.accountId, VACATION, write=True)
    create, update, destroy = args.create or {}, args.update or {}, args.destroy or []
    if len(create) + len(update) + len(destroy) > ctx.limits.maxObjectsInSet:
        raise MethodError("requestTooLarge", "Too many changes in one call.")

    def plan(snap: Snapshot) -> tuple[WriteBatch, dict[str, Any]]:
        batch = WriteBatch(args.accountId, expect={VACATION_RESPONSE: snap.type_modseq(VACATION_RESPONSE)})
        out: dict[str, Any] = {"updated": {}, "notUpdated": {}}
        stored = snap.get(VACATION_RESPONSE, SINGLETON)
        record = current(snap)
        for key, patch in update.items():
            if key != SINGLETON:
                out["notUpdated"][key] = SetError.not_found()
                continue
            if "id" in patch and patch["id"] != SINGLETON:
                out["notUpdated"][key] = SetError.invalid_properties(["id"], "id is immutable.")
                continue
            patched = apply_patch(record, {k: v for k, v in patch.items() if k != "id"}, {})
            error = patched if isinstance(patched, SetError) else _check(patched)
            if error is not None:
                out["notUpdated"][key] = error
                continue
            record = patched
            batch.puts = [Put(VACATION_RESPONSE, dict(record), created=stored is None)]
            out["updated"][key] = None
        return batch, out

    old_state, new_state, out = commit_planned(ctx, args.accountId, VACATION_RESPONSE, args.ifInState, plan)
    refuse = SetError("singleton", "There is exactly one VacationResponse, id singleton.")
    return {
        "accountId": args.accountId,
        "oldState": old_state,
        "newState": new_state,
        "created": None,
        "notCreated": {cid: refuse for cid in create} or None,
        "updated": out["updated"] or None,
        "notUpdated": out["notUpdated"] or None,
        "destroyed": None,
        "notDestroyed": {i: refuse for i in destroy} or None,
    }


plugin = Plugin(
    capability=VACATION,
    session_capability={},  # [mail-1.3.3-vacationCap]
    # [mail-1.4-perAccount] a user's own account only (a shared one takes no vacation).
    account_capability=lambda account: {} if account.is_personal else None,
    types=[VacationResponse],
    methods=[
        Method("VacationResponse/get", vacation_get, GetArgs, VACATION),
        Method("VacationResponse/set", vacation_set, SetArgs, VACATION, writes=True),
    ],
)
