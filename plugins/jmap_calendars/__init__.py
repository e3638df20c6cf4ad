"""JMAP for Calendars (draft-ietf-jmap-calendars-27) with JSCalendar events
(RFC 8984 as draft-ietf-calext-jscalendarbis-08 words it).

Registered through the public plugin API only, like a third party's plugin
(the ``jmapcore.plugins`` entry point ``calendars``): Calendar,
CalendarEvent, ParticipantIdentity and CalendarEventNotification described
once, the standard methods built from them, and the hooks calendars need
(the default calendar, onDestroyRemoveEvents, uid uniqueness, time-span
indexes, expanded recurrences, synthetic instance ids).
:mod:`jmap_calendars.jscalendar` validates events (``validate_event``),
:mod:`jmap_calendars.recurrence` expands them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jmapcore.context import CallContext
from jmapcore.registry import Method, Plugin
from jmapcore.standard import make_changes, make_get, make_query, make_query_changes
from jmapcore.standard.args import (
    ChangesArgs,
    CopyArgs,
    GetArgs,
    QueryArgs,
    QueryChangesArgs,
    SetArgs,
)
from jmapcore.storage import AccountInfo

from .calendar import (
    Calendar,
    CalendarSetArgs,
    calendar_set,
    create_default_calendar,
    ensure_default_calendar,
)
from .constants import (
    CALENDAR,
    CALENDARS,
    EVENT,
    IDENTITY,
    MAX_CALENDARS_PER_EVENT,
    MAX_DATE_TIME,
    MAX_EXPANDED_QUERY_DURATION,
    MAX_PARTICIPANTS_PER_EVENT,
    MIN_DATE_TIME,
    NOTIFICATION,
)
from .event import (
    CalendarEvent,
    EventGetArgs,
    EventQueryArgs,
    EventQueryChangesArgs,
    EventSetArgs,
    event_copy,
    event_get,
    event_query,
    event_query_changes,
    event_set,
    search_documents,
)
from .identity import IdentitySetArgs, ParticipantIdentity, identity_set
from .jscalendar import validate_event
from .notification import CalendarEventNotification, notification_set


def account_capability(account: AccountInfo) -> dict[str, Any]:
    """[cal-1.5.1-capability]"""
    return {
        "maxCalendarsPerEvent": MAX_CALENDARS_PER_EVENT,
        "minDateTime": MIN_DATE_TIME,
        "maxDateTime": MAX_DATE_TIME,
        "maxExpandedQueryDuration": MAX_EXPANDED_QUERY_DURATION,
        "maxParticipantsPerEvent": MAX_PARTICIPANTS_PER_EVENT,
        "mayCreateCalendar": not account.is_read_only,
    }


def _lazy_default(handler: Callable[[CallContext, Any], Any]) -> Callable[[CallContext, Any], Any]:
    """Reads of an account that predates the plugin see its default calendar too."""

    def call(ctx: CallContext, args: Any) -> Any:
        ctx.account(args.accountId, CALENDARS)
        ensure_default_calendar(ctx, args.accountId)
        return handler(ctx, args)

    return call


def _method(name: str, handler: Any, args: type, writes: bool = False) -> Method:
    return Method(name, handler, args, CALENDARS, writes=writes)


plugin = Plugin(
    capability=CALENDARS,
    session_capability={},
    account_capability=account_capability,
    types=[Calendar, CalendarEvent, ParticipantIdentity, CalendarEventNotification],
    methods=[
        _method(f"{CALENDAR}/get", _lazy_default(make_get(Calendar)), GetArgs),
        _method(f"{CALENDAR}/changes", _lazy_default(make_changes(Calendar)), ChangesArgs),
        _method(f"{CALENDAR}/set", calendar_set, CalendarSetArgs, writes=True),
        _method(f"{EVENT}/get", event_get, EventGetArgs),
        _method(f"{EVENT}/changes", _lazy_default(make_changes(CalendarEvent)), ChangesArgs),
        _method(f"{EVENT}/set", event_set, EventSetArgs, writes=True),
        _method(f"{EVENT}/copy", event_copy, CopyArgs, writes=True),
        _method(f"{EVENT}/query", event_query, EventQueryArgs),
        _method(f"{EVENT}/queryChanges", event_query_changes, EventQueryChangesArgs),
        _method(f"{IDENTITY}/get", make_get(ParticipantIdentity), GetArgs),
        _method(f"{IDENTITY}/changes", make_changes(ParticipantIdentity), ChangesArgs),
        _method(f"{IDENTITY}/set", identity_set, IdentitySetArgs, writes=True),
        _method(f"{NOTIFICATION}/get", make_get(CalendarEventNotification), GetArgs),
        _method(f"{NOTIFICATION}/changes", make_changes(CalendarEventNotification), ChangesArgs),
        _method(f"{NOTIFICATION}/query", make_query(CalendarEventNotification), QueryArgs),
        _method(f"{NOTIFICATION}/queryChanges", make_query_changes(CalendarEventNotification), QueryChangesArgs),
        _method(f"{NOTIFICATION}/set", notification_set, SetArgs, writes=True),
    ],
    on_account_created=create_default_calendar,
    push_types=[CALENDAR, EVENT, IDENTITY, NOTIFICATION],
    search_documents={EVENT: search_documents},
)

__all__ = ["CALENDARS", "plugin", "validate_event"]
