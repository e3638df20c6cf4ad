"""Calendar (draft-ietf-jmap-calendars-27 §4): the type, the default
calendar, and /set with onDestroyRemoveEvents and onSuccessSetIsDefault.

Sharing is not offered: every calendar is its owner's, so ``myRights``
grants everything [cal-4-rights], ``shareWith`` stays null and a shareWith
naming anyone is refused (the server has no Principals) [cal-4.3-share].
Per-user properties [cal-4.3-perUser] are therefore simply the calendar's.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal

from msgspec import Meta

from jmapcore.api import Core
from jmapcore.context import CallContext, new_id
from jmapcore.datatype import DataType, Filter, Property, property_sort
from jmapcore.errors import SetError
from jmapcore.standard.args import SetArgs
from jmapcore.standard.set import SetOutcome, run_set
from jmapcore.storage import AccountInfo, Destroy, Put, Record, Snapshot, StateConflict, WriteBatch
from jmapcore.wire import Id

from .constants import (
    CALENDAR,
    CALENDAR_INDEX,
    CALENDARS,
    DEFAULT_CALENDAR_NAME,
    EVENT,
    MAX_NAME_OCTETS,
    OWNER_RIGHTS,
)
from .jscalendar import _alert, _Checker, zone

UnsignedInt31 = Annotated[int, Meta(ge=0, lt=2**31)]


def _fill_server_set(ctx: CallContext, record: Record, old: Record | None) -> None:
    record["myRights"] = dict(OWNER_RIGHTS)
    if old is None:
        record["isDefault"] = False
    if record.get("shareWith") == {}:
        record["shareWith"] = None


def _validate(ctx: CallContext, record: Record, old: Record | None) -> SetError | None:
    """[cal-4-props] one calendar's own rules."""
    name = record["name"]
    if not name or len(name.encode("utf-8")) > MAX_NAME_OCTETS:
        return SetError.invalid_properties(["name"], f"A name has 1 to {MAX_NAME_OCTETS} octets of UTF-8.")
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in name):
        return SetError.invalid_properties(["name"], "A name has no control characters.")
    if record.get("timeZone") is not None and zone(record["timeZone"]) is None:
        return SetError.invalid_properties(["timeZone"], "Unknown time zone (IANA names).")
    checker = _Checker()
    for prop in ("defaultAlertsWithTime", "defaultAlertsWithoutTime"):
        checker.id_map(record, prop, "", lambda obj, path: _alert(checker, obj, path))
        for key, alert in (record.get(prop) or {}).items():
            trigger = alert.get("trigger") if isinstance(alert, dict) else None
            if isinstance(trigger, dict) and trigger.get("@type") == "AbsoluteTrigger":
                checker.bad(f"{prop}/{key}/trigger", "a default alert has no AbsoluteTrigger")
    if checker.problems:
        return SetError.invalid_properties([p.path for p in checker.problems], "Invalid default alerts.")
    if record.get("shareWith") is not None:
        return SetError.invalid_properties(
            ["shareWith"], "This server has no Principals to share with [cal-4.3-share]."
        )
    return None


Calendar = DataType(
    name=CALENDAR,
    capability=CALENDARS,
    properties={
        "name": Property(str),
        "description": Property(str | None, default=None),
        "color": Property(str | None, default=None),
        "sortOrder": Property(UnsignedInt31, default=0),
        "isSubscribed": Property(bool, default=True),
        "isVisible": Property(bool, default=True),
        "isDefault": Property(bool, server_set=True),
        "includeInAvailability": Property(Literal["all", "attending", "none"], default="all"),
        "defaultAlertsWithTime": Property(dict[str, dict[str, Any]] | None, default=None),
        "defaultAlertsWithoutTime": Property(dict[str, dict[str, Any]] | None, default=None),
        "timeZone": Property(str | None, default=None),
        "shareWith": Property(dict[Id, dict[str, bool]] | None, default=None),
        "myRights": Property(dict, server_set=True),
    },
    methods=(),
    filters={
        "name": Filter(str, match=lambda r, v: v.casefold() in r["name"].casefold()),
        "isSubscribed": Filter(bool, match=lambda r, v: r.get("isSubscribed") is v),
    },
    sorts={"sortOrder": property_sort("sortOrder"), "name": property_sort("name", text=True)},
    id_prefix="K",
    validate=_validate,
    compute=_fill_server_set,
)


def default_calendar_record() -> Record:
    return {
        "id": new_id("K"),
        "name": DEFAULT_CALENDAR_NAME,
        "description": None,
        "color": None,
        "sortOrder": 0,
        "isSubscribed": True,
        "isVisible": True,
        "isDefault": True,
        "includeInAvailability": "all",
        "defaultAlertsWithTime": None,
        "defaultAlertsWithoutTime": None,
        "timeZone": None,
        "shareWith": None,
        "myRights": dict(OWNER_RIGHTS),
    }


def create_default_calendar(core: Core, account: AccountInfo) -> None:
    """``on_account_created``: every account starts with one default calendar."""
    batch = WriteBatch(account.account_id, expect={CALENDAR: 0})
    batch.puts.append(Put(CALENDAR, default_calendar_record(), created=True))
    try:
        core.backend.commit(batch)
    except StateConflict:
        pass  # made already (lazily, by a request that came first)


def ensure_default_calendar(ctx: CallContext, account_id: str) -> None:
    """Accounts that predate the plugin get their default calendar at the
    first calendars call: when Calendar has never been written at all (a
    user who later destroys every calendar is not given one back)."""
    with ctx.snapshot(account_id) as snap:
        if snap.type_modseq(CALENDAR) != 0:
            return
    info = ctx.core.account_info(account_id)
    if info is None or info.is_read_only:
        return
    create_default_calendar(ctx.core, info)


def default_calendar_id(snap: Snapshot) -> str | None:
    """The default calendar's id (calendars are few: read them all)."""
    ids = list(snap.ids(CALENDAR))
    for record in snap.get_many(CALENDAR, ids):
        if record is not None and record.get("isDefault"):
            return record["id"]
    return None


class CalendarSetArgs(SetArgs, kw_only=True):
    onDestroyRemoveEvents: bool = False
    onSuccessSetIsDefault: str | None = None


def _calendar_events(snap: Snapshot, calendar_id: str) -> list[str]:
    return [event_id for _, event_id in snap.scan_index(EVENT, CALENDAR_INDEX, (calendar_id,))]


def _remove_events(ctx: CallContext, snap: Snapshot, outcome: SetOutcome, args: CalendarSetArgs) -> None:
    """[cal-4.3-setArgs] a calendar with events is destroyed only with
    ``onDestroyRemoveEvents``; its events then leave it, and those left in
    no calendar are destroyed (no scheduling messages are sent)."""
    if not outcome.destroyed:
        return
    outcome.batch.expect[EVENT] = snap.type_modseq(EVENT)
    keys = {ctx.resolve_id(key) or key: key for key in args.destroy or []}
    gone = set()
    for calendar_id in list(outcome.destroyed):
        if not _calendar_events(snap, calendar_id):
            continue
        if not args.onDestroyRemoveEvents:
            outcome.destroyed.remove(calendar_id)
            outcome.batch.destroys = [
                d for d in outcome.batch.destroys if not (d.type_name == CALENDAR and d.id == calendar_id)
            ]
            outcome.not_destroyed[keys.get(calendar_id, calendar_id)] = SetError(
                "calendarHasEvent", "The calendar still has events (use onDestroyRemoveEvents)."
            )
            continue
        gone.add(calendar_id)
    if not gone:
        return
    changed: dict[str, Record] = {}
    for calendar_id in gone:
        events = _calendar_events(snap, calendar_id)
        for event_id, event in zip(events, snap.get_many(EVENT, events), strict=True):
            if event is None:
                continue
            event = changed.get(event_id, event)
            calendars = {c: True for c in event.get("calendarIds") or {} if c not in gone}
            changed[event_id] = {**event, "calendarIds": calendars}
    from .event import search_document  # the event module imports this one

    for event_id, event in changed.items():
        if event["calendarIds"]:
            outcome.batch.puts.append(Put(EVENT, event, created=False))
            outcome.batch.search.append(search_document(event))
        else:
            outcome.batch.destroys.append(Destroy(EVENT, event_id))


def set_default(
    ctx: CallContext, snap: Snapshot, outcome: SetOutcome, wanted: str | None, type_name: str
) -> None:
    """[cal-4.3-setArgs] [cal-3.3-set] after a wholly successful call, make
    the named record the default; unknown ids are ignored silently."""
    if wanted is None or outcome.not_created or outcome.not_updated or outcome.not_destroyed:
        return
    if wanted.startswith("#"):
        target = outcome.created_ids.get(wanted[1:]) or ctx.resolve_id(wanted)
    else:
        target = wanted
    if target is None or target in outcome.destroyed:
        return
    pending = {put.record["id"]: put for put in outcome.batch.puts if put.type_name == type_name}
    records = {r["id"]: r for r in snap.get_many(type_name, list(snap.ids(type_name))) if r is not None}
    records.update({record_id: put.record for record_id, put in pending.items()})
    for record_id in outcome.destroyed:
        records.pop(record_id, None)
    if target not in records:
        return
    creation = {record_id: cid for cid, record_id in outcome.created_ids.items()}
    for record_id, record in records.items():
        should = record_id == target
        if bool(record.get("isDefault")) == should:
            continue
        if record_id in pending:
            pending[record_id].record["isDefault"] = should
        else:
            outcome.batch.puts.append(Put(type_name, {**record, "isDefault": should}, created=False))
        if record_id in creation:
            outcome.created[creation[record_id]]["isDefault"] = should
        else:
            outcome.updated[record_id] = {**(outcome.updated.get(record_id) or {}), "isDefault": should}


def calendar_set(ctx: CallContext, args: CalendarSetArgs) -> dict[str, Any]:
    ctx.account(args.accountId, CALENDARS, write=True)
    ensure_default_calendar(ctx, args.accountId)

    def extend(ctx: CallContext, snap: Snapshot, outcome: SetOutcome, set_args: Any) -> None:
        _remove_events(ctx, snap, outcome, args)
        set_default(ctx, snap, outcome, args.onSuccessSetIsDefault, CALENDAR)

    return run_set(ctx, Calendar, args, extend=extend)
