"""JSCalendar Event validation and time arithmetic (RFC 8984, as
draft-ietf-calext-jscalendarbis-08 words it), shared by CalendarEvent/set and
iCalendar import.

:func:`event_problems` takes one Event as a JSON-shaped ``dict`` and returns
:class:`Problem` values whose ``path`` is a JSON Pointer without the leading
``/`` (``participants/p1/roles/chair``), as ``invalidProperties`` wants it;
:func:`validate_event` returns only the paths.  What it checks:

* the Event's own properties [jscal-5.1-event]: ``start`` is a
  LocalDateTime (mandatory), ``duration`` a non-negative Duration (an end
  before the start is refused), ``status`` one of confirmed, cancelled,
  tentative;
* the common ones [jscal-4.1-metadata] [jscal-4.2-what] [jscal-4.4-scheduling]:
  ``uid`` non-empty, ``created``/``updated`` UTCDateTime, ``sequence`` and
  ``priority`` (0-9), ``title``, ``description``, ``descriptionContentType``
  (text/*), ``showWithoutTime``, ``freeBusyStatus`` (free, busy), ``privacy``
  (public, private, secret), ``keywords``/``categories`` (String[true]),
  ``locations`` (at least one property), ``virtualLocations`` (``uri``
  mandatory), ``links`` (``href`` mandatory), ``participants`` (roles,
  participationStatus, kind, expectReply, scheduleSequence...) and ``alerts``
  (OffsetTrigger with a SignedDuration, AbsoluteTrigger with a UTCDateTime,
  other triggers kept as given [jscal-4.5-alerts]);
* time zones [jscal-4.6-timeZone]: ``timeZone``, ``endTimeZone`` and
  ``recurrenceIdTimeZone`` must name a zone the standard library's
  ``zoneinfo`` knows (IANA names; tzdata where the system has none);
* recurrence [jscal-4.3-recurrence]: ``recurrenceRule`` (bis) or
  ``recurrenceRules``/``excludedRecurrenceRules`` (RFC 8984) are objects
  with a known ``frequency``; ``recurrenceOverrides`` keys are
  LocalDateTimes and values patch objects; a ``recurrenceId`` excludes
  rules and overrides.  The rules themselves (every byX value, count XOR
  until...) are checked by :mod:`jmap_calendars.recurrence`;
* ``method`` is refused: a stored CalendarEvent has none [cal-5-noMethod];
* unknown and vendor properties with a valid name are accepted and kept
  [jscal-3-objects].

Dates and times: :func:`parse_local`, :func:`parse_duration`,
:func:`to_utc` (a LocalDateTime in a zone, the pre-transition offset in a
DST gap or overlap [jscal-1.4-types]) and :func:`end_of` (add the Duration's
weeks and days in local time, then its hours, minutes and seconds in
absolute time).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .constants import MAX_DATE_TIME, MAX_PARTICIPANTS_PER_EVENT, MIN_DATE_TIME

__all__ = [
    "Problem",
    "end_of",
    "event_problems",
    "format_local",
    "format_utc",
    "parse_duration",
    "parse_local",
    "parse_utc",
    "to_utc",
    "validate_event",
    "zone",
]


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    message: str


_LOCAL = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$")
_UTC = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$")
_DURATION = re.compile(r"^P(?!$)(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_SIGNED_DURATION = re.compile(r"^[+-]?P")
_NAME = re.compile(r"^[A-Za-z@][A-Za-z0-9_.:@-]*$")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_VENDOR = re.compile(r"^[A-Za-z0-9.-]+:[^/~]+$")

# -- dates and times -------------------------------------------------------------


def parse_local(value: Any) -> datetime | None:
    """A LocalDateTime (``2026-03-29T02:30:00``) as a naive datetime, or None."""
    if not isinstance(value, str):
        return None
    match = _LOCAL.match(value)
    if match is None:
        return None
    try:
        return datetime(*map(int, match.groups()))  # type: ignore[misc]
    except ValueError:
        return None


def parse_utc(value: Any) -> datetime | None:
    """A UTCDateTime (``2026-03-29T01:30:00Z``) as an aware datetime, or None."""
    if not isinstance(value, str):
        return None
    match = _UTC.match(value)
    if match is None:
        return None
    try:
        return datetime(*map(int, match.groups()), tzinfo=UTC)  # type: ignore[misc]
    except ValueError:
        return None


def format_local(value: datetime) -> str:
    return value.replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M:%S")


def format_utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_duration(value: Any) -> tuple[timedelta, timedelta] | None:
    """A Duration as (nominal weeks and days, exact hours/minutes/seconds), or None."""
    if not isinstance(value, str):
        return None
    match = _DURATION.match(value)
    if match is None:
        return None
    weeks, days, hours, minutes, secs = (int(part or 0) for part in match.groups())
    return timedelta(weeks=weeks, days=days), timedelta(hours=hours, minutes=minutes, seconds=secs)


def parse_signed_duration(value: Any) -> timedelta | None:
    if not isinstance(value, str) or not _SIGNED_DURATION.match(value):
        return None
    sign = -1 if value.startswith("-") else 1
    parsed = parse_duration(value.lstrip("+-"))
    if parsed is None:
        return None
    return sign * (parsed[0] + parsed[1])


@lru_cache(maxsize=512)
def zone(name: Any) -> ZoneInfo | None:
    """The zone of a TimeZoneId, or None when zoneinfo does not know it."""
    if not isinstance(name, str) or not name or name.startswith(("/", ".")) or ".." in name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def to_utc(local: datetime, tz: ZoneInfo | None, floating: ZoneInfo | None = None) -> datetime:
    """A local time in ``tz`` (or ``floating`` for floating times, else UTC)
    as UTC.  ``fold=0``: in a gap or an overlap, the offset in force before
    the transition [jscal-1.4-types]."""
    where = tz or floating
    if where is None:
        return local.replace(tzinfo=UTC)
    return local.replace(tzinfo=where, fold=0).astimezone(UTC)


def end_of(local_start: datetime, duration: Any, tz: ZoneInfo | None, floating: ZoneInfo | None = None) -> datetime:
    """The UTC end of an event: weeks and days added in local time, then
    hours, minutes and seconds in absolute time [jscal-1.4-types]."""
    parsed = parse_duration(duration if duration is not None else "PT0S") or (timedelta(), timedelta())
    nominal, exact = parsed
    return to_utc(local_start + nominal, tz, floating) + exact


def event_utc_span(event: dict[str, Any], floating: ZoneInfo | None = None) -> tuple[datetime, datetime] | None:
    """(utcStart, utcEnd) of one instance (``start``, ``duration``, ``timeZone``)."""
    start = parse_local(event.get("start"))
    if start is None:
        return None
    tz = zone(event.get("timeZone")) if event.get("timeZone") is not None else None
    return to_utc(start, tz, floating), end_of(start, event.get("duration"), tz, floating)


# -- validation ------------------------------------------------------------------

_STATUS = ("confirmed", "cancelled", "tentative")
_FREE_BUSY = ("free", "busy")
_PRIVACY = ("public", "private", "secret")
_ROLES = ("owner", "attendee", "optional", "informational", "chair", "required", "contact")
_PARTSTAT = ("needs-action", "accepted", "declined", "tentative", "delegated")
_KINDS = ("individual", "group", "location", "resource")
_FEATURES = ("audio", "chat", "feed", "moderator", "phone", "screen", "video")
_FREQUENCIES = ("yearly", "monthly", "weekly", "daily", "hourly", "minutely", "secondly")
_ACTIONS = ("display", "email")
_RELATIVE_TO = ("start", "end")


class _Checker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def bad(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def string(self, obj: dict[str, Any], name: str, path: str, *, nonempty: bool = False) -> None:
        if name in obj and obj[name] is not None:
            value = obj[name]
            if not isinstance(value, str) or (nonempty and not value):
                self.bad(f"{path}{name}", "must be a " + ("non-empty " if nonempty else "") + "string")

    def boolean(self, obj: dict[str, Any], name: str, path: str) -> None:
        if name in obj and not isinstance(obj[name], bool):
            self.bad(f"{path}{name}", "must be true or false")

    def uint(self, obj: dict[str, Any], name: str, path: str, high: int = 2**53 - 1) -> None:
        if name in obj:
            value = obj[name]
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
                self.bad(f"{path}{name}", f"must be an integer from 0 to {high}")

    def enum(self, obj: dict[str, Any], name: str, path: str, values: tuple[str, ...], vendor: bool = True) -> None:
        if name in obj:
            value = obj[name]
            if not isinstance(value, str) or (value not in values and not (vendor and _VENDOR.match(value))):
                self.bad(f"{path}{name}", f"must be one of {', '.join(values)}")

    def utc(self, obj: dict[str, Any], name: str, path: str) -> None:
        if name in obj and obj[name] is not None and parse_utc(obj[name]) is None:
            self.bad(f"{path}{name}", "must be a UTCDateTime (YYYY-MM-DDThh:mm:ssZ)")

    def local(self, obj: dict[str, Any], name: str, path: str) -> None:
        if name in obj and obj[name] is not None:
            value = parse_local(obj[name])
            if value is None:
                self.bad(f"{path}{name}", "must be a LocalDateTime (YYYY-MM-DDThh:mm:ss)")
            elif not _in_range(value):
                self.bad(f"{path}{name}", f"must lie between {MIN_DATE_TIME} and {MAX_DATE_TIME}")

    def time_zone(self, obj: dict[str, Any], name: str, path: str) -> None:
        if name in obj and obj[name] is not None and zone(obj[name]) is None:
            self.bad(f"{path}{name}", "is not a time zone this server knows (IANA names)")

    def true_map(self, obj: dict[str, Any], name: str, path: str, keys: tuple[str, ...] | None = None) -> None:
        if name not in obj or obj[name] is None:
            return
        value = obj[name]
        if not isinstance(value, dict):
            self.bad(f"{path}{name}", "must be an object of true values")
            return
        for key, flag in value.items():
            if flag is not True or not key or (keys is not None and key not in keys and not _VENDOR.match(key)):
                self.bad(f"{path}{name}/{_escape(key)}", "must be a known key set to true")

    def id_map(self, obj: dict[str, Any], name: str, path: str, each: Any) -> None:
        if name not in obj or obj[name] is None:
            return
        value = obj[name]
        if not isinstance(value, dict):
            self.bad(f"{path}{name}", "must be an object keyed by id")
            return
        for key, item in value.items():
            where = f"{path}{name}/{_escape(key)}"
            if not _ID.match(key):
                self.bad(where, "keys are 1-255 characters of A-Z a-z 0-9 _ -")
            elif not isinstance(item, dict):
                self.bad(where, "must be an object")
            else:
                each(item, where + "/")

    def at_type(self, obj: dict[str, Any], path: str, expected: str) -> None:
        if "@type" in obj and obj["@type"] != expected:
            self.bad(f"{path}@type", f"must be {expected}")


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _in_range(value: datetime) -> bool:
    return MIN_DATE_TIME[:19] <= format_local(value) <= MAX_DATE_TIME[:19]


def _link(c: _Checker, obj: dict[str, Any], path: str) -> None:
    c.at_type(obj, path, "Link")
    if not isinstance(obj.get("href"), str) and not isinstance(obj.get("blobId"), str):
        c.bad(f"{path}href", "a Link needs href (or a blobId)")
    for name in ("href", "contentType", "rel", "title", "cid"):
        c.string(obj, name, path)
    c.uint(obj, "size", path)


def _location(c: _Checker, obj: dict[str, Any], path: str) -> None:
    c.at_type(obj, path, "Location")
    if not [k for k in obj if k != "@type"]:
        c.bad(path.rstrip("/"), "a Location needs at least one property besides @type")
    for name in ("name", "description", "coordinates", "timeZone"):
        c.string(obj, name, path)
    c.time_zone(obj, "timeZone", path)
    c.true_map(obj, "locationTypes", path)
    c.id_map(obj, "links", path, lambda o, p: _link(c, o, p))


def _virtual_location(c: _Checker, obj: dict[str, Any], path: str) -> None:
    c.at_type(obj, path, "VirtualLocation")
    if not isinstance(obj.get("uri"), str) or not obj.get("uri"):
        c.bad(f"{path}uri", "a VirtualLocation needs a uri")
    for name in ("name", "description"):
        c.string(obj, name, path)
    c.true_map(obj, "features", path, _FEATURES)


def _participant(c: _Checker, obj: dict[str, Any], path: str) -> None:
    c.at_type(obj, path, "Participant")
    for name in ("name", "email", "description", "calendarAddress", "sentBy", "descriptionContentType"):
        c.string(obj, name, path)
    c.enum(obj, "kind", path, _KINDS)
    c.true_map(obj, "roles", path, _ROLES)
    c.enum(obj, "participationStatus", path, _PARTSTAT)
    c.boolean(obj, "expectReply", path)
    c.uint(obj, "scheduleSequence", path)
    c.utc(obj, "scheduleUpdated", path)
    for name in ("delegatedTo", "delegatedFrom", "memberOf"):
        c.true_map(obj, name, path)
    c.id_map(obj, "links", path, lambda o, p: _link(c, o, p))
    if "sendTo" in obj and obj["sendTo"] is not None:
        if not isinstance(obj["sendTo"], dict) or not all(isinstance(v, str) for v in obj["sendTo"].values()):
            c.bad(f"{path}sendTo", "must map methods to URIs")


def _alert(c: _Checker, obj: dict[str, Any], path: str) -> None:
    c.at_type(obj, path, "Alert")
    trigger = obj.get("trigger")
    if not isinstance(trigger, dict):
        c.bad(f"{path}trigger", "an Alert needs a trigger object")
    else:
        kind = trigger.get("@type", "OffsetTrigger")
        if kind == "OffsetTrigger":
            if parse_signed_duration(trigger.get("offset")) is None:
                c.bad(f"{path}trigger/offset", "must be a SignedDuration")
            c.enum(trigger, "relativeTo", f"{path}trigger/", _RELATIVE_TO, vendor=False)
        elif kind == "AbsoluteTrigger":
            if parse_utc(trigger.get("when")) is None:
                c.bad(f"{path}trigger/when", "must be a UTCDateTime")
        elif not isinstance(kind, str):
            c.bad(f"{path}trigger/@type", "must be a string")
        # Unknown triggers are kept as given and never fire [jscal-4.5-alerts].
    c.utc(obj, "acknowledged", path)
    c.enum(obj, "action", path, _ACTIONS)
    if "relatedTo" in obj and not isinstance(obj["relatedTo"], dict):
        c.bad(f"{path}relatedTo", "must be an object")


def _rule_shape(c: _Checker, rule: Any, path: str) -> None:
    if not isinstance(rule, dict):
        c.bad(path, "a RecurrenceRule is an object")
        return
    c.at_type(rule, path + "/", "RecurrenceRule")
    if rule.get("frequency") not in _FREQUENCIES:
        c.bad(f"{path}/frequency", f"must be one of {', '.join(_FREQUENCIES)}")
    if "count" in rule and "until" in rule:
        c.bad(f"{path}/until", "count and until cannot both be given")
    c.uint(rule, "count", path + "/")
    if "interval" in rule:
        c.uint(rule, "interval", path + "/")
        if rule["interval"] == 0:
            c.bad(f"{path}/interval", "must be at least 1")
    c.local(rule, "until", path + "/")


def _recurrence(c: _Checker, event: dict[str, Any]) -> None:
    if event.get("recurrenceRule") is not None:
        _rule_shape(c, event["recurrenceRule"], "recurrenceRule")
    for name in ("recurrenceRules", "excludedRecurrenceRules"):
        rules = event.get(name)
        if rules is None:
            continue
        if not isinstance(rules, list):
            c.bad(name, "must be a list of RecurrenceRule objects")
            continue
        for index, rule in enumerate(rules):
            _rule_shape(c, rule, f"{name}/{index}")
    if event.get("recurrenceRule") is not None and event.get("recurrenceRules"):
        c.bad("recurrenceRules", "give recurrenceRule or recurrenceRules, not both")
    overrides = event.get("recurrenceOverrides")
    if overrides is not None:
        if not isinstance(overrides, dict):
            c.bad("recurrenceOverrides", "must be an object keyed by LocalDateTime")
        else:
            for key, patch in overrides.items():
                where = f"recurrenceOverrides/{_escape(key)}"
                when = parse_local(key)
                if when is None or not _in_range(when):
                    c.bad(where, "keys are LocalDateTimes in the accepted range")
                elif not isinstance(patch, dict):
                    c.bad(where, "must be a patch object")
                else:
                    _override(c, patch, where)
    if event.get("recurrenceId") is not None and (
        event.get("recurrenceRule") or event.get("recurrenceRules") or event.get("recurrenceOverrides")
    ):
        c.bad("recurrenceId", "an instance (recurrenceId) has no rules nor overrides")


#: Properties never valid inside an override: the JMAP-only ones
#: [cal-5-props] (isDraft), [cal-5-utcStart], [cal-5.1-newProps].  Patches on
#: the properties an override may not change (uid, recurrenceRule...) are
#: accepted and ignored when instances are made [jscal-4.3-recurrence].
_NOT_IN_OVERRIDES = frozenset(
    {"isDraft", "utcStart", "utcEnd", "mayInviteSelf", "mayInviteOthers", "hideAttendees", "calendarIds",
     "id", "baseEventId", "isOrigin", "method"}
)


def _override(c: _Checker, patch: dict[str, Any], where: str) -> None:
    """[jscal-4.3-recurrence] [cal-5.1-newProps] an override patches the instance."""
    if patch.get("excluded") is True and len(patch) > 1:
        c.bad(f"{where}/excluded", "an excluded instance has no other properties")
        return
    if "excluded" in patch and patch["excluded"] is not True:
        c.bad(f"{where}/excluded", "may only be true")
    for pointer, value in patch.items():
        top = pointer.split("/", 1)[0]
        if top in _NOT_IN_OVERRIDES:
            c.bad(f"{where}/{_escape(pointer)}", "cannot be overridden for one instance")
        elif "/" not in pointer and top != "excluded":
            # A whole top-level value: check it as the Event property it replaces.
            sub = _Checker()
            _properties(sub, {top: value}, top_level=False)
            for problem in sub.problems:
                c.bad(f"{where}/{problem.path}", problem.message)


def _properties(c: _Checker, event: dict[str, Any], top_level: bool = True) -> None:
    for name in event:
        if not isinstance(name, str) or not _NAME.match(name):
            c.bad(_escape(str(name)), "is not a valid property name")
    if top_level:
        if event.get("@type", "Event") != "Event":
            c.bad("@type", "must be Event")
        if not isinstance(event.get("uid"), str) or not event["uid"]:
            c.bad("uid", "must be a non-empty string")
        if "start" not in event:
            c.bad("start", "an Event needs a start")
        if "method" in event:
            c.bad("method", "a stored CalendarEvent has no method [cal-5-noMethod]")
    c.local(event, "start", "")
    if "duration" in event and event["duration"] is not None and parse_duration(event["duration"]) is None:
        value = event["duration"]
        message = (
            "the end precedes the start (negative duration)"
            if isinstance(value, str) and value.startswith("-")
            else "must be a Duration (PnWnDTnHnMnS)"
        )
        c.bad("duration", message)
    for name in ("title", "description", "prodId", "color", "locale", "organizerCalendarAddress", "mainLocationId"):
        c.string(event, name, "")
    if isinstance(event.get("descriptionContentType"), str) and not event["descriptionContentType"].startswith("text/"):
        c.bad("descriptionContentType", "must be a text/* media type")
    c.string(event, "descriptionContentType", "")
    for name in ("showWithoutTime", "isDraft", "useDefaultAlerts", "mayInviteSelf", "mayInviteOthers", "hideAttendees"):
        c.boolean(event, name, "")
    c.enum(event, "status", "", _STATUS)
    c.enum(event, "freeBusyStatus", "", _FREE_BUSY)
    c.enum(event, "privacy", "", _PRIVACY)
    c.uint(event, "sequence", "")
    c.uint(event, "priority", "", 9)
    c.utc(event, "created", "")
    c.utc(event, "updated", "")
    for name in ("timeZone", "endTimeZone", "recurrenceIdTimeZone"):
        c.time_zone(event, name, "")
    c.local(event, "recurrenceId", "")
    c.true_map(event, "keywords", "")
    c.true_map(event, "categories", "")
    c.id_map(event, "locations", "", lambda o, p: _location(c, o, p))
    c.id_map(event, "virtualLocations", "", lambda o, p: _virtual_location(c, o, p))
    c.id_map(event, "links", "", lambda o, p: _link(c, o, p))
    c.id_map(event, "participants", "", lambda o, p: _participant(c, o, p))
    c.id_map(event, "alerts", "", lambda o, p: _alert(c, o, p))
    if "relatedTo" in event and event["relatedTo"] is not None and not isinstance(event["relatedTo"], dict):
        c.bad("relatedTo", "must be an object")
    participants = event.get("participants")
    if isinstance(participants, dict) and len(participants) > MAX_PARTICIPANTS_PER_EVENT:
        c.bad("participants", f"at most {MAX_PARTICIPANTS_PER_EVENT} participants")


def event_problems(event: dict[str, Any]) -> list[Problem]:
    """Everything wrong with one JSCalendar Event (JMAP-only properties
    such as ``id`` and ``calendarIds`` are the caller's)."""
    c = _Checker()
    _properties(c, event)
    _recurrence(c, event)
    seen: set[str] = set()
    unique = []
    for problem in c.problems:
        if problem.path not in seen:
            seen.add(problem.path)
            unique.append(problem)
    return unique


def validate_event(event: dict[str, Any]) -> list[str]:
    """The paths of everything wrong with an Event; empty when it is valid."""
    return [problem.path for problem in event_problems(event)]


def property_name_ok(name: str) -> bool:
    """Whether ``name`` may be a property of an Event (known, unknown or vendor)."""
    return bool(_NAME.match(name))
