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
from jmapcore.collection import (
    create_default,
    default_id,
    ensure_default,
    remove_members,
    set_default,
)
from jmapcore.context import CallContext, new_id
from jmapcore.datatype import DataType, Filter, Property, property_sort
from jmapcore.errors import SetError
from jmapcore.standard.args import SetArgs
from jmapcore.standard.set import SetOutcome, run_set
from jmapcore.storage import AccountInfo, Record, Snapshot
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
    create_default(core, account.account_id, CALENDAR, default_calendar_record())


def ensure_default_calendar(ctx: CallContext, account_id: str) -> None:
    """Accounts that predate the plugin get their default calendar at the first calendars call."""
    ensure_default(ctx, account_id, CALENDAR, default_calendar_record)


def default_calendar_id(snap: Snapshot) -> str | None:
    return default_id(snap, CALENDAR)


class CalendarSetArgs(SetArgs, kw_only=True):
    onDestroyRemoveEvents: bool = False
    onSuccessSetIsDefault: str | None = None


def _calendar_events(snap: Snapshot, calendar_id: str) -> list[str]:
    return [event_id for _, event_id in snap.scan_index(EVENT, CALENDAR_INDEX, (calendar_id,))]


def _remove_events(ctx: CallContext, snap: Snapshot, outcome: SetOutcome, args: CalendarSetArgs) -> None:
    """[cal-4.3-setArgs] a calendar with events is destroyed only with
    ``onDestroyRemoveEvents``; its events then leave it, and those left in
    no calendar are destroyed (no scheduling messages are sent)."""
    from .event import search_document  # the event module imports this one

    remove_members(
        ctx, snap, outcome,
        collection_type=CALENDAR, member_type=EVENT, membership="calendarIds",
        members_of=_calendar_events, destroy_keys=args.destroy or [],
        remove_contents=args.onDestroyRemoveEvents,
        refusal=lambda: SetError(
            "calendarHasEvent", "The calendar still has events (use onDestroyRemoveEvents)."
        ),
        kept=lambda event: outcome.batch.search.append(search_document(event)),
    )


def calendar_set(ctx: CallContext, args: CalendarSetArgs) -> dict[str, Any]:
    ctx.account(args.accountId, CALENDARS, write=True)
    ensure_default_calendar(ctx, args.accountId)

    def extend(ctx: CallContext, snap: Snapshot, outcome: SetOutcome, set_args: Any) -> None:
        _remove_events(ctx, snap, outcome, args)
        set_default(ctx, snap, outcome, args.onSuccessSetIsDefault, CALENDAR)

    return run_set(ctx, Calendar, args, extend=extend)
