"""CalendarEventNotification (draft-ietf-jmap-calendars-27 §7).

The server creates one when *someone else* creates, updates or destroys an
event in a calendar the user subscribes to (a sharee's edit, or an iTIP
message processed automatically) [cal-7-create].  This server has neither
sharing nor automatic iTIP processing yet, so no principal but the owner
ever changes an account's events and no notification is created: the type
and its methods are complete and answer empty lists, /changes and
/queryChanges work, and /set destroys what a future writer
(:func:`notification_record`) would store [cal-7.3-set].
"""

from __future__ import annotations

from typing import Any

from jmapcore.context import CallContext, new_id
from jmapcore.datatype import DataType, Filter, Property, Sort
from jmapcore.errors import SetError
from jmapcore.standard.args import SetArgs
from jmapcore.standard.set import run_set
from jmapcore.storage import Record
from jmapcore.wire import Id

from .constants import CALENDARS, NOTIFICATION
from .jscalendar import parse_utc


def _created(record: Record) -> float | None:
    when = parse_utc(record.get("created"))
    return None if when is None else when.timestamp()


def _utc_filter(before: bool) -> Filter:
    def match(record: Record, value: str | None) -> bool:
        bound = parse_utc(value) if value is not None else None
        if bound is None:
            return True
        created = _created(record)
        return created is not None and (created < bound.timestamp() if before else created >= bound.timestamp())

    return Filter(str | None, match=match)


CalendarEventNotification = DataType(
    name=NOTIFICATION,
    capability=CALENDARS,
    # [cal-7-props] every property is the server's.
    properties={
        "created": Property(str, server_set=True),
        "changedBy": Property(dict, server_set=True),
        "comment": Property(str | None, server_set=True),
        "type": Property(str, server_set=True),
        "calendarEventId": Property(Id, server_set=True),
        "isDraft": Property(bool, server_set=True),
        "event": Property(dict | None, server_set=True),
        "eventPatch": Property(dict | None, server_set=True),
    },
    methods=("get", "changes", "query", "queryChanges"),
    # [cal-7.4-query]
    filters={
        "after": _utc_filter(False),
        "before": _utc_filter(True),
        "type": Filter(str, match=lambda r, v: r.get("type") == v),
        "calendarEventIds": Filter(list[Id] | None, match=lambda r, v: v is None or r.get("calendarEventId") in v),
    },
    sorts={"created": Sort(_created, indexed=True)},
    id_prefix="N",
)


def notification_record(
    kind: str, event_id: str, changed_by: dict[str, Any], created: str, *, event: dict[str, Any] | None,
    patch: dict[str, Any] | None = None, comment: str | None = None, is_draft: bool = False,
) -> Record:
    """[cal-7-props] the record a writer of others' changes stores."""
    return {
        "id": new_id("N"),
        "created": created,
        "changedBy": changed_by,
        "comment": comment,
        "type": kind,
        "calendarEventId": event_id,
        "isDraft": is_draft,
        "event": event,
        "eventPatch": patch if kind == "updated" else None,
    }


def notification_set(ctx: CallContext, args: SetArgs) -> dict[str, Any]:
    """[cal-7.3-set] destroy only: creates and updates are ``forbidden``."""
    forbidden = SetError("forbidden", "CalendarEventNotifications can only be destroyed.")
    not_created = dict.fromkeys(args.create or {}, forbidden)
    not_updated = dict.fromkeys(args.update or {}, forbidden)
    result = run_set(ctx, CalendarEventNotification, SetArgs(accountId=args.accountId, ifInState=args.ifInState, destroy=args.destroy))
    result["notCreated"] = not_created or None
    result["notUpdated"] = not_updated or None
    return result
