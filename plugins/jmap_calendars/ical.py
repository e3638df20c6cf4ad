"""iCalendar (RFC 5545) ↔ JSCalendar Events, as the mapping draft describes.

Pure functions, no JMAP and no storage.  The mapping follows
draft-ietf-calext-jscalendar-icalendar with the property names of
jscalendarbis (what draft-ietf-jmap-calendars expects: a single
``recurrenceRule``, ``organizerCalendarAddress``, ``calendarAddress``):

* :func:`read_icalendar` takes the bytes of an ``.ics`` file and returns one
  JSCalendar Event per UID (the master VEVENT with its RECURRENCE-ID
  instances folded into ``recurrenceOverrides`` as patches, EXDATE as
  ``{"excluded": true}``, RDATE as extra instances), each with the problems met
  while reading it, plus the problems of the file as a whole.  It reads best
  effort and says what it repaired: lines that are not UTF-8, continuation
  lines without their folding space, a VEVENT without END, an unknown time
  zone, DTEND before DTSTART, a second RRULE, ...  An event that cannot be
  converted faithfully (no DTSTART, an invalid RRULE) comes back without an
  Event and with the reason.
* :func:`write_icalendar` / :func:`events_to_icalendar` turn Events back into
  one VCALENDAR (VTIMEZONE components for the zones used, made from the
  system's tz database by icalendar).

The content-line grammar, value types and folding are icalendar's; the
mapping of each property is this module's:

=====================  ===========================================================
DTSTART/DTEND/DURATION ``start``, ``timeZone``, ``duration``, ``endTimeZone``;
                       VALUE=DATE → ``showWithoutTime``
TZID                   an IANA name (prefixed paths, Windows names, a VTIMEZONE's
                       X-LIC-LOCATION); unknown → converted to UTC with the
                       file's VTIMEZONE, or floating time, and a problem
SUMMARY, DESCRIPTION   ``title``, ``description``
LOCATION, GEO          ``locations`` (``name``, ``coordinates``)
CONFERENCE             ``virtualLocations`` (``uri``, LABEL → ``name``, FEATURE)
URL, ATTACH, LINK      ``links`` (rel ``describedby``, ``enclosure``, REL)
ORGANIZER, ATTENDEE    ``organizerCalendarAddress``, ``participants`` (roles from
                       ROLE and ORGANIZER, PARTSTAT, CUTYPE, RSVP, CN, EMAIL, ...)
VALARM                 ``alerts`` (Offset/AbsoluteTrigger, ACTION, ACKNOWLEDGED)
CATEGORIES, CONCEPT    ``keywords``, ``categories``
STATUS, TRANSP, CLASS  ``status``, ``freeBusyStatus``, ``privacy``
PRIORITY, COLOR        ``priority``, ``color``
RRULE, EXRULE          ``recurrenceRule``; a bounded EXRULE becomes excluded
                       instances (jscalendarbis has no excludedRecurrenceRules)
RDATE, EXDATE          ``recurrenceOverrides`` keys (``{}`` / ``{"excluded": true}``)
RECURRENCE-ID          a patch in the master's ``recurrenceOverrides``
UID, SEQUENCE          ``uid``, ``sequence``
CREATED, LAST-MODIFIED ``created``, ``updated`` (DTSTAMP when LAST-MODIFIED is absent)
RELATED-TO, PRODID     ``relatedTo``, ``prodId``
=====================  ===========================================================

Identifiers of participants, locations, alerts and links go out in a JSID
parameter (VALARM: its UID) and come back from it, so an Event that goes to
iCalendar and back keeps its map keys.  Not converted: VTODO and VJOURNAL
(counted as file problems), X- properties, and an EXRULE without COUNT or UNTIL.
"""

from __future__ import annotations

import copy
import hashlib
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
from icalendar.prop import vBroken, vDDDLists, vDDDTypes, vRecur

__all__ = [
    "ICalFile",
    "ParsedEvent",
    "events_to_icalendar",
    "read_icalendar",
    "write_icalendar",
]

PRODID = "-//jmapcore//jmap_calendars//EN"

# -- reading a file: decode, split into components, repair ---------------------------------


@dataclass
class ParsedEvent:
    """One event of a file (a master VEVENT and its instances): its JSCalendar
    Event, or ``None`` with the reason it could not be converted.

    Each problem reads ``reason: detail``; the reason has no numbers or names
    in it, so a summary can count events by reason."""

    line: int  # where the (first) BEGIN:VEVENT is, 1-based
    event: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)
    error: str | None = None
    uid: str | None = None

    @property
    def label(self) -> str:
        title = (self.event or {}).get("title") or ""
        text = f"event at line {self.line}"
        if title.strip():
            text += f" ({title.strip()[:60]})"
        elif self.uid:
            text += f" (uid {self.uid[:60]})"
        return text


@dataclass
class ICalFile:
    events: list[ParsedEvent]
    problems: list[str] = field(default_factory=list)  # the file's, not one event's


_CONTENT_START = re.compile(r"^[A-Za-z0-9-]+[;:]")


def _decode(data: bytes | str) -> tuple[list[str], list[int]]:
    """The file's physical lines, and the numbers of those that were not UTF-8."""
    if isinstance(data, str):
        return data.splitlines(), []
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16").splitlines(), []
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return data.decode("utf-8").splitlines(), []
    except UnicodeDecodeError:
        pass
    lines, bad = [], []
    for number, raw in enumerate(data.splitlines(), 1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            bad.append(number)
            lines.append(raw.decode("cp1252", errors="replace"))
    return lines, bad


@dataclass
class _Block:
    """The logical lines of one component (BEGIN to END), with where it starts."""

    name: str
    line: int
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "\r\n".join(self.lines) + "\r\n"


def _logical_lines(lines: list[str], bad: set[int]) -> Iterator[tuple[int, str, list[str]]]:
    """Unfolded content lines: (number of the first physical line, text, problems).

    A physical line that neither starts with a space/tab (a proper
    continuation) nor looks like ``NAME[;params]:`` is a continuation whose
    folding space was lost: it is joined to the line before, and said so."""
    current: list[Any] | None = None
    for number, raw in enumerate(lines, 1):
        if number in bad:
            problem = f"lines not UTF-8 (read as Windows-1252): line {number}"
        else:
            problem = None
        if raw[:1] in (" ", "\t") and current is not None:
            current[1] += raw[1:]
        elif current is not None and raw and not _CONTENT_START.match(raw):
            # a line break inside a value written without the folding space:
            # after a short line it was a real line break, after a long one a fold
            current[1] += ("" if len(current[1]) >= 70 else "\\n") + raw
            current[2].append(f"broken folding (continuation line without its leading space): line {number}")
        else:
            if current is not None:
                yield current[0], current[1], current[2]
            if not raw.strip():
                current = None
                continue
            current = [number, raw, []]
        if problem and current is not None:
            current[2].append(problem)
    if current is not None:
        yield current[0], current[1], current[2]


def _split(data: bytes | str) -> tuple[list[_Block], list[_Block], list[str], str | None]:  # noqa: C901
    """The VEVENT and VTIMEZONE blocks of a file, the file's problems, its PRODID."""
    lines, bad = _decode(data)
    events: list[_Block] = []
    zones: list[_Block] = []
    problems: list[str] = []
    skipped: dict[str, int] = {}
    prodid: str | None = None
    stack: list[_Block] = []  # components open below VCALENDAR
    in_calendar = seen_calendar = False
    outside = 0
    for number, text, line_problems in _logical_lines(lines, set(bad)):
        upper = text[:20].upper()
        if upper.startswith("BEGIN:"):
            name = text[6:].strip().upper()
            if name == "VCALENDAR":
                in_calendar = seen_calendar = True
                continue
            if name == "VEVENT" and stack and stack[0].name == "VEVENT":
                # a VEVENT opened inside another: the first one lost its END
                block = stack[0]
                block.problems.append(f"no END:VEVENT (ended at the next BEGIN:VEVENT): line {block.line}")
                block.lines.extend(f"END:{b.name}" for b in reversed(stack))
                events.append(block)
                stack = []
            if stack:  # a component inside the VEVENT (VALARM): its lines are the VEVENT's
                stack[0].lines.append(text)
                stack[0].problems.extend(line_problems)
                stack.append(_Block(name, number))
            else:
                stack.append(_Block(name, number, [text], list(line_problems)))
            continue
        if upper.startswith("END:"):
            name = text[4:].strip().upper()
            if name == "VCALENDAR":
                if stack:
                    top = stack[0]
                    top.problems.append(f"no END:{top.name} (ended at END:VCALENDAR): line {top.line}")
                    top.lines.extend(f"END:{b.name}" for b in reversed(stack))
                    _file_block(top, events, zones, skipped)
                    stack = []
                in_calendar = False
                continue
            if stack:
                closing = stack.pop()
                if stack:
                    stack[0].lines.append(text)
                else:
                    closing.lines.append(text)
                    _file_block(closing, events, zones, skipped)
            continue
        if stack:
            stack[0].lines.append(text)
            stack[0].problems.extend(line_problems)
        elif in_calendar:
            if upper.startswith("PRODID"):
                prodid = text.split(":", 1)[1].strip() if ":" in text else None
        else:
            outside += 1
    if stack:
        top = stack[0]
        top.problems.append(f"no END:{top.name} (the file ends inside it): line {top.line}")
        top.lines.extend(f"END:{b.name}" for b in reversed(stack))
        _file_block(top, events, zones, skipped)
    if not seen_calendar:
        problems.append("no BEGIN:VCALENDAR")
    if outside:
        problems.append(f"{outside:,} lines outside the calendar ignored")
    for name, count in sorted(skipped.items()):
        problems.append(f"{count:,} {name} components not imported (only VEVENT is)")
    return events, zones, problems, prodid


def _file_block(block: _Block, events: list[_Block], zones: list[_Block], skipped: dict[str, int]) -> None:
    if block.name == "VEVENT":
        events.append(block)
    elif block.name == "VTIMEZONE":
        zones.append(block)
    else:
        skipped[block.name] = skipped.get(block.name, 0) + 1


# -- time zones ----------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    if not name or name.startswith("/") or ".." in name or name.strip() != name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _windows_zone(name: str) -> str | None:
    try:
        from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON
    except ImportError:  # pragma: no cover - older icalendar
        return None
    return WINDOWS_TO_OLSON.get(name)


class _Zones:
    """TZID → IANA name, with the file's VTIMEZONE components for the rest."""

    def __init__(self, blocks: list[_Block]) -> None:
        self.blocks: dict[str, _Block] = {}
        for block in blocks:
            for line in block.lines:
                if line.upper().startswith("TZID"):
                    self.blocks[line.split(":", 1)[-1].strip()] = block
                    break
        self.cache: dict[str, tuple[str | None, tzinfo | None]] = {}

    def resolve(self, tzid: str) -> tuple[str | None, tzinfo | None]:
        """(IANA name, None) when known; else (None, the VTIMEZONE's tzinfo or None)."""
        if tzid not in self.cache:
            self.cache[tzid] = self._resolve(tzid)
        return self.cache[tzid]

    def _resolve(self, tzid: str) -> tuple[str | None, tzinfo | None]:
        name = tzid.strip().strip('"')
        if name.upper() in ("UTC", "GMT", "Z"):
            return "Etc/UTC", None
        if _zone(name):
            return name, None
        parts = [p for p in name.split("/") if p]
        for n in (3, 2, 1):  # /mozilla.org/20050126_1/Europe/Berlin, /citadel.org/.../Europe/Paris
            if len(parts) > n and _zone("/".join(parts[-n:])):
                return "/".join(parts[-n:]), None
        windows = _windows_zone(name)
        if windows and _zone(windows):
            return windows, None
        block = self.blocks.get(tzid) or self.blocks.get(name)
        if block is None:
            return None, None
        for line in block.lines:
            if line.upper().startswith("X-LIC-LOCATION"):
                location = line.split(":", 1)[-1].strip()
                if _zone(location):
                    return location, None
        try:
            zone = icalendar.Timezone.from_ical(block.text())
            return None, zone.to_tz(lookup_tzid=False)
        except Exception:  # noqa: BLE001 - a VTIMEZONE we cannot use is an unknown zone
            return None, None


# -- values --------------------------------------------------------------------------------


def _local(value: datetime | date) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{value.isoformat()}T00:00:00"


def _utc(value: datetime | date) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{value.isoformat()}T00:00:00Z"


def format_duration(delta: timedelta, signed: bool = False) -> str:
    """An RFC 8984 Duration (SignedDuration with ``signed``): days, then H/M/S."""
    sign = ""
    if delta < timedelta(0):
        sign = "-"
        delta = -delta
    days, seconds = delta.days, delta.seconds
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = "P"
    if days:
        text += f"{days}D"
    if hours or minutes or secs or not days:
        text += "T"
        if hours:
            text += f"{hours}H"
        if minutes:
            text += f"{minutes}M"
        if secs or not (hours or minutes):
            text += f"{secs}S"
    return (sign if signed else "") + text


_DURATION = re.compile(
    r"^([+-])?P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.\d+)?S)?)?$"
)


def parse_duration(text: str) -> timedelta | None:
    match = _DURATION.match(text or "")
    if not match or text.rstrip("T").endswith(("P", "-P", "+P")) or text.endswith("T"):
        return None
    sign, weeks, days, hours, minutes, seconds = match.groups()
    delta = timedelta(weeks=int(weeks or 0), days=int(days or 0), hours=int(hours or 0),
                      minutes=int(minutes or 0), seconds=int(seconds or 0))
    return -delta if sign == "-" else delta


def parse_local(text: str) -> datetime | None:
    try:
        return datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")
    except (TypeError, ValueError):
        return None


@dataclass
class _When:
    """A DTSTART-like value: wall-clock time, its zone, and what it was."""

    wall: datetime
    zone: str | None  # IANA name; None = floating
    is_date: bool = False
    problem: str | None = None

    def absolute(self) -> datetime:
        zone = _zone(self.zone) if self.zone else None
        return self.wall.replace(tzinfo=zone or UTC)


def _when(prop: Any, zones: _Zones) -> _When | None:
    if prop is None or isinstance(prop, vBroken):
        return None
    value = getattr(prop, "dt", None)
    if value is None:
        return None
    if not isinstance(value, datetime):
        if isinstance(value, date):
            return _When(datetime(value.year, value.month, value.day), None, is_date=True)
        return None  # a PERIOD or a duration where a date-time belongs
    tzid = prop.params.get("TZID") if hasattr(prop, "params") else None
    if tzid:
        name, custom = zones.resolve(str(tzid))
        wall = value.replace(tzinfo=None)
        if name:
            return _When(wall, name)
        if custom is not None:
            moment = wall.replace(tzinfo=custom).astimezone(UTC)
            return _When(moment.replace(tzinfo=None), "Etc/UTC",
                         problem=f"unknown time zone (converted to UTC with the file's VTIMEZONE): {tzid}")
        return _When(wall, None, problem=f"unknown time zone (read as floating time): {tzid}")
    if value.tzinfo is not None:
        return _When(value.astimezone(UTC).replace(tzinfo=None), "Etc/UTC")
    return _When(value, None)


def _in_zone(when: _When, zone: str | None) -> datetime:
    """``when``'s wall-clock time in ``zone`` (floating values are taken as they are)."""
    if when.zone is None or zone is None or when.zone == zone or when.is_date:
        return when.wall
    target = _zone(zone)
    if target is None:
        return when.wall
    return when.absolute().astimezone(target).replace(tzinfo=None)


def _text(component: Any, name: str) -> str | None:
    value = component.get(name)
    if value is None or isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    return str(value)


def _params(prop: Any) -> dict[str, str]:
    params = getattr(prop, "params", None) or {}
    return {str(k).upper(): ",".join(str(x) for x in v) if isinstance(v, list | tuple) else str(v)
            for k, v in params.items()}


def _all(component: Any, name: str) -> list[Any]:
    value = component.get(name)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _short_id(text: str) -> str:
    return hashlib.sha1(text.lower().encode("utf-8")).hexdigest()[:10]


_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def _key(given: str | None, fallback: str) -> str:
    """A map key from a JSID/UID when it is a valid JSCalendar Id, else one made from it."""
    if not given:
        return fallback
    return given if _ID.match(given) else fallback[0] + _short_id(given)


# -- one VEVENT → one Event -----------------------------------------------------------------

_FREQUENCIES = ("yearly", "monthly", "weekly", "daily", "hourly", "minutely", "secondly")
_DAYS = ("mo", "tu", "we", "th", "fr", "sa", "su")
_NDAY = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$", re.IGNORECASE)
_RULE_LISTS = {
    "BYMONTHDAY": "byMonthDay", "BYYEARDAY": "byYearDay", "BYWEEKNO": "byWeekNo",
    "BYHOUR": "byHour", "BYMINUTE": "byMinute", "BYSECOND": "bySecond", "BYSETPOS": "bySetPosition",
}
_CUTYPE = {"INDIVIDUAL": "individual", "GROUP": "group", "RESOURCE": "resource", "ROOM": "location"}
_ROLES = {"CHAIR": "chair", "REQ-PARTICIPANT": "required", "OPT-PARTICIPANT": "optional",
          "NON-PARTICIPANT": "informational"}
_PARTSTAT = ("needs-action", "accepted", "declined", "tentative", "delegated")
_CLASS = {"PUBLIC": "public", "PRIVATE": "private", "CONFIDENTIAL": "secret"}


class InvalidEvent(Exception):
    """A VEVENT that cannot be converted faithfully."""


def _rule(prop: Any, start: _When) -> dict[str, Any]:  # noqa: C901
    """An RRULE/EXRULE value as a RecurrenceRule; InvalidEvent when it is not valid."""
    if isinstance(prop, vBroken) or not isinstance(prop, vRecur):
        raise InvalidEvent(f"invalid RRULE: {str(prop)[:80]}")
    parts = {str(k).upper(): v for k, v in prop.items()}
    freq = parts.get("FREQ")
    freq = str(freq[0] if isinstance(freq, list) else freq or "").lower()
    if freq not in _FREQUENCIES:
        raise InvalidEvent(f"invalid RRULE: FREQ={freq.upper() or '(missing)'}")
    rule: dict[str, Any] = {"@type": "RecurrenceRule", "frequency": freq}

    def ints(key: str, low: int, high: int, signed: bool) -> list[int]:
        out = []
        for value in parts.get(key, []):
            try:
                number = int(value)
            except (TypeError, ValueError):
                raise InvalidEvent(f"invalid RRULE: {key}={value}") from None
            if not (low <= abs(number) <= high) or (number < 0 and not signed):
                raise InvalidEvent(f"invalid RRULE: {key}={value}")
            out.append(number)
        return out

    if "INTERVAL" in parts:
        interval = ints("INTERVAL", 1, 10**6, False)
        if interval and interval[0] != 1:
            rule["interval"] = interval[0]
    if "RSCALE" in parts:
        rule["rscale"] = str(parts["RSCALE"][0]).lower()
    if "SKIP" in parts:
        rule["skip"] = str(parts["SKIP"][0]).lower()
    if "WKST" in parts:
        day = str(parts["WKST"][0]).lower()
        if day not in _DAYS:
            raise InvalidEvent(f"invalid RRULE: WKST={day.upper()}")
        if day != "mo":
            rule["firstDayOfWeek"] = day
    if "BYDAY" in parts:
        days = []
        for value in parts["BYDAY"]:
            match = _NDAY.match(str(value))
            if not match:
                raise InvalidEvent(f"invalid RRULE: BYDAY={value}")
            nday: dict[str, Any] = {"@type": "NDay", "day": match.group(2).lower()}
            if match.group(1):
                nday["nthOfPeriod"] = int(match.group(1))
            days.append(nday)
        rule["byDay"] = days
    if "BYMONTH" in parts:
        months = []
        for value in parts["BYMONTH"]:
            text = str(value)
            if not re.fullmatch(r"(1[0-2]|0?[1-9])L?", text):
                raise InvalidEvent(f"invalid RRULE: BYMONTH={text}")
            months.append(text.lstrip("0"))
        rule["byMonth"] = months
    limits = {"BYMONTHDAY": (1, 31, True), "BYYEARDAY": (1, 366, True), "BYWEEKNO": (1, 53, True),
              "BYHOUR": (0, 23, False), "BYMINUTE": (0, 59, False), "BYSECOND": (0, 60, False),
              "BYSETPOS": (1, 366, True)}
    for key, name in _RULE_LISTS.items():
        if key in parts:
            rule[name] = ints(key, *limits[key])
    if "COUNT" in parts and "UNTIL" in parts:
        raise InvalidEvent("invalid RRULE: both COUNT and UNTIL")
    if "COUNT" in parts:
        rule["count"] = ints("COUNT", 1, 10**9, False)[0]
    if "UNTIL" in parts:
        until = parts["UNTIL"][0]
        if isinstance(until, datetime):
            if until.tzinfo is not None and start.zone and not start.is_date:
                zone = _zone(start.zone)
                until = until.astimezone(zone).replace(tzinfo=None) if zone else until.replace(tzinfo=None)
            rule["until"] = _local(until.replace(tzinfo=None))
        elif isinstance(until, date) and not start.is_date:
            # a DATE UNTIL on a DATE-TIME series (RFC 5545 says no, calendars write it): the whole day
            rule["until"] = f"{until.isoformat()}T23:59:59"
        elif isinstance(until, date):
            rule["until"] = _local(until)
        else:
            raise InvalidEvent(f"invalid RRULE: UNTIL={until}")
    return rule


def _participant(prop: Any, key_hint: str) -> tuple[str, dict[str, Any]]:
    params = _params(prop)
    address = str(prop).strip()
    entry: dict[str, Any] = {"@type": "Participant", "calendarAddress": address}
    if params.get("CN"):
        entry["name"] = params["CN"]
    email = params.get("EMAIL")
    if not email and address.lower().startswith("mailto:"):
        email = address[7:]
    if email:
        entry["email"] = email
    kind = _CUTYPE.get(params.get("CUTYPE", "").upper())
    if kind:
        entry["kind"] = kind
    for param, prop_name in (("DELEGATED-TO", "delegatedTo"), ("DELEGATED-FROM", "delegatedFrom"),
                             ("MEMBER", "memberOf")):
        if params.get(param):
            values = [v.strip().strip('"') for v in params[param].split(",") if v.strip()]
            entry[prop_name] = {v: True for v in values}
    if params.get("SENT-BY"):
        entry["sentBy"] = params["SENT-BY"].strip('"')
    return _key(params.get("JSID"), key_hint), entry


def _alarm(alarm: Any, number: int, problems: list[str]) -> tuple[str, dict[str, Any]] | None:
    trigger = alarm.get("TRIGGER")
    if trigger is None or isinstance(trigger, vBroken):
        problems.append("VALARM without a valid TRIGGER left out")
        return None
    params = _params(trigger)
    value = trigger.dt
    entry: dict[str, Any] = {"@type": "Alert"}
    if isinstance(value, timedelta):
        offset: dict[str, Any] = {"@type": "OffsetTrigger", "offset": format_duration(value, signed=True)}
        if params.get("RELATED", "").upper() == "END":
            offset["relativeTo"] = "end"
        entry["trigger"] = offset
    elif isinstance(value, datetime | date):
        entry["trigger"] = {"@type": "AbsoluteTrigger", "when": _utc(value)}
    else:
        problems.append("VALARM without a valid TRIGGER left out")
        return None
    action = (_text(alarm, "ACTION") or "DISPLAY").upper()
    if action == "EMAIL":
        entry["action"] = "email"
    acknowledged = alarm.get("ACKNOWLEDGED")
    if acknowledged is not None and not isinstance(acknowledged, vBroken):
        entry["acknowledged"] = _utc(acknowledged.dt)
    related = alarm.get("RELATED-TO")
    if related is not None:
        entry["relatedTo"] = {str(r): {"@type": "Relation", "relation": {"snooze": True}}
                              for r in (related if isinstance(related, list) else [related])}
    key = _key(_text(alarm, "UID"), f"a{number}")
    return key, entry


def _set_start(event: dict[str, Any], component: Any, zones: _Zones, problems: list[str]) -> _When:
    start = _when(component.get("DTSTART"), zones)
    if start is None:
        raise InvalidEvent("no valid DTSTART" if component.get("DTSTART") is not None else "no DTSTART")
    if start.problem:
        problems.append(start.problem)
    event["start"] = _local(start.wall)
    if start.is_date:
        event["showWithoutTime"] = True
    if start.zone:
        event["timeZone"] = start.zone
    end_prop = component.get("DTEND")
    duration_prop = component.get("DURATION")
    duration: timedelta | None = None
    if end_prop is not None:
        end = _when(end_prop, zones)
        if end is None:
            problems.append("DTEND not valid (left out)")
        else:
            if end.problem and end.problem != start.problem:
                problems.append(end.problem)
            if end.zone == start.zone or end.zone is None or start.zone is None or end.is_date:
                duration = end.wall - start.wall
            else:
                duration = end.absolute() - start.absolute()
                event["endTimeZone"] = end.zone
    elif duration_prop is not None and not isinstance(duration_prop, vBroken):
        duration = duration_prop.dt if isinstance(duration_prop.dt, timedelta) else None
    elif duration_prop is not None:
        problems.append("DURATION not valid (left out)")
    elif start.is_date:
        duration = timedelta(days=1)  # RFC 5545 §3.6.1: a DATE DTSTART alone lasts the day
    if duration is not None and duration < timedelta(0):
        problems.append("end before start (duration set to zero)")
        duration = timedelta(0)
        event.pop("endTimeZone", None)
    if duration:
        event["duration"] = format_duration(duration)
    return start


def _convert(component: Any, zones: _Zones, problems: list[str]) -> tuple[dict[str, Any], _When]:
    """One VEVENT as a JSCalendar Event (recurrence rules included, instances not)."""
    event: dict[str, Any] = {"@type": "Event"}
    uid = _text(component, "UID")
    if uid:
        event["uid"] = uid
    start = _set_start(event, component, zones, problems)
    for name, prop in (("SUMMARY", "title"), ("DESCRIPTION", "description"), ("COLOR", "color")):
        value = _text(component, name)
        if value:
            event[prop] = value
    _what(event, component, problems)
    _who(event, component)
    alerts: dict[str, Any] = {}
    for number, alarm in enumerate(component.walk("VALARM"), 1):
        converted = _alarm(alarm, number, problems)
        if converted:
            alerts[converted[0]] = converted[1]
    if alerts:
        event["alerts"] = alerts
    _metadata(event, component, problems)
    _recurrence(event, component, start, zones, problems)
    return event, start


def _what(event: dict[str, Any], component: Any, problems: list[str]) -> None:  # noqa: C901
    locations: dict[str, Any] = {}
    for number, prop in enumerate(_all(component, "LOCATION"), 1):
        if str(prop).strip():
            locations[_key(_params(prop).get("JSID"), f"l{number}")] = {"@type": "Location", "name": str(prop)}
    geo = component.get("GEO")
    if geo is not None and not isinstance(geo, vBroken):
        uri = f"geo:{geo.latitude},{geo.longitude}"
        if locations:
            next(iter(locations.values()))["coordinates"] = uri
        else:
            locations["geo"] = {"@type": "Location", "coordinates": uri}
    if locations:
        event["locations"] = locations
    virtual: dict[str, Any] = {}
    for number, prop in enumerate(_all(component, "CONFERENCE"), 1):
        params = _params(prop)
        entry: dict[str, Any] = {"@type": "VirtualLocation", "uri": str(prop)}
        if params.get("LABEL"):
            entry["name"] = params["LABEL"]
        if params.get("FEATURE"):
            entry["features"] = {f.strip().lower(): True for f in params["FEATURE"].split(",") if f.strip()}
        virtual[_key(params.get("JSID"), f"v{number}")] = entry
    if virtual:
        event["virtualLocations"] = virtual
    links: dict[str, Any] = {}
    for kind, rel in (("URL", "describedby"), ("ATTACH", "enclosure"), ("LINK", None)):
        for number, prop in enumerate(_all(component, kind), 1):
            params = _params(prop)
            if params.get("ENCODING", "").upper() == "BASE64" or params.get("VALUE", "").upper() == "BINARY":
                problems.append("inline binary ATTACH left out")
                continue
            link: dict[str, Any] = {"@type": "Link", "href": str(prop)}
            link_rel = rel or params.get("REL", "related").strip('"').lower()
            link["rel"] = link_rel
            if params.get("FMTTYPE"):
                link["contentType"] = params["FMTTYPE"]
            if params.get("SIZE", "").isdigit():
                link["size"] = int(params["SIZE"])
            if params.get("FILENAME") or params.get("LABEL"):
                link["title"] = params.get("FILENAME") or params["LABEL"]
            links[_key(params.get("JSID"), f"{kind[0].lower()}{number}")] = link
    if links:
        event["links"] = links
    keywords: dict[str, bool] = {}
    for prop in _all(component, "CATEGORIES"):
        for category in getattr(prop, "cats", None) or [str(prop)]:
            if str(category).strip():
                keywords[str(category)] = True
    if keywords:
        event["keywords"] = keywords
    concepts = {str(p): True for p in _all(component, "CONCEPT") if str(p).strip()}
    if concepts:
        event["categories"] = concepts


def _who(event: dict[str, Any], component: Any) -> None:
    participants: dict[str, Any] = {}
    by_address: dict[str, str] = {}
    organizer = component.get("ORGANIZER")
    if organizer is not None and str(organizer).strip():
        key, entry = _participant(organizer, "p" + _short_id(str(organizer).strip()))
        entry["roles"] = {"owner": True}
        event["organizerCalendarAddress"] = entry["calendarAddress"]
        participants[key] = entry
        by_address[entry["calendarAddress"].lower()] = key
    for prop in _all(component, "ATTENDEE"):
        address = str(prop).strip()
        if not address:
            continue
        key, entry = _participant(prop, "p" + _short_id(address))
        params = _params(prop)
        roles = {"attendee": True}
        role = _ROLES.get(params.get("ROLE", "").upper())
        if role:
            roles[role] = True
        partstat = params.get("PARTSTAT", "").lower()
        if partstat in _PARTSTAT and partstat != "needs-action":
            entry["participationStatus"] = partstat
        if params.get("RSVP", "").upper() == "TRUE":
            entry["expectReply"] = True
        existing = by_address.get(address.lower())
        if existing is not None:  # the organizer attends too: one participant
            merged = participants[existing]
            merged["roles"].update(roles)
            for name, value in entry.items():
                merged.setdefault(name, value)
            if "participationStatus" in entry:
                merged["participationStatus"] = entry["participationStatus"]
            continue
        entry["roles"] = roles
        participants[key] = entry
        by_address[address.lower()] = key
    if participants:
        event["participants"] = participants


def _metadata(event: dict[str, Any], component: Any, problems: list[str]) -> None:  # noqa: C901
    status = (_text(component, "STATUS") or "").lower()
    if status in ("confirmed", "cancelled", "tentative"):
        event["status"] = status
    elif status:
        problems.append(f"unknown STATUS left out: {status.upper()}")
    transp = (_text(component, "TRANSP") or "").upper()
    if transp == "TRANSPARENT":
        event["freeBusyStatus"] = "free"
    elif transp == "OPAQUE":
        event["freeBusyStatus"] = "busy"
    klass = (_text(component, "CLASS") or "").upper()
    if klass:
        event["privacy"] = _CLASS.get(klass, "private")
    priority = component.get("PRIORITY")
    if priority is not None:
        try:
            value = int(str(priority))
            if 0 <= value <= 9:
                event["priority"] = value
        except ValueError:
            problems.append("PRIORITY not a number (left out)")
    sequence = component.get("SEQUENCE")
    if sequence is not None:
        try:
            if int(str(sequence)) > 0:
                event["sequence"] = int(str(sequence))
        except ValueError:
            problems.append("SEQUENCE not a number (left out)")
    for name, prop in (("CREATED", "created"), ("LAST-MODIFIED", "updated"), ("DTSTAMP", "updated")):
        value = component.get(name)
        if value is None or prop in event:
            continue
        if isinstance(value, vBroken) or not isinstance(getattr(value, "dt", None), datetime | date):
            problems.append(f"{name} not a date-time (left out)")
            continue
        event[prop] = _utc(value.dt)
    related: dict[str, Any] = {}
    for prop in _all(component, "RELATED-TO"):
        reltype = _params(prop).get("RELTYPE", "PARENT").lower()
        related.setdefault(str(prop), {"@type": "Relation", "relation": {}})["relation"][reltype] = True
    if related:
        event["relatedTo"] = related


def _recurrence(event: dict[str, Any], component: Any, start: _When, zones: _Zones,
                problems: list[str]) -> None:
    rules = _all(component, "RRULE")
    if rules:
        event["recurrenceRule"] = _rule(rules[0], start)
        if len(rules) > 1:
            problems.append(f"more than one RRULE (only the first kept): {len(rules)} rules")
    overrides: dict[str, Any] = {}
    zone = start.zone
    for prop in _all(component, "RDATE"):
        for value in _dates(prop, zones, problems):
            if isinstance(value, tuple):
                when, length = value
                overrides[_local(_in_zone(when, zone))] = {"duration": format_duration(length)}
            else:
                overrides[_local(_in_zone(value, zone))] = {}
    for prop in _all(component, "EXRULE"):
        try:
            overrides.update(_exrule(prop, start))
        except InvalidEvent as ex:
            problems.append(f"EXRULE not converted: {ex}")
    for prop in _all(component, "EXDATE"):
        for value in _dates(prop, zones, problems):
            if not isinstance(value, tuple):
                overrides[_local(_in_zone(value, zone))] = {"excluded": True}
    if overrides:
        event["recurrenceOverrides"] = overrides


def _dates(prop: Any, zones: _Zones, problems: list[str]) -> Iterator[_When | tuple[_When, timedelta]]:
    if isinstance(prop, vBroken) or not isinstance(prop, vDDDLists):
        problems.append(f"{getattr(prop, 'property_name', 'RDATE/EXDATE') or 'RDATE/EXDATE'} not valid (left out)")
        return
    tzid = _params(prop).get("TZID")
    for item in prop.dts:
        if tzid and "TZID" not in item.params:
            item.params["TZID"] = tzid
        value = item.dt
        if isinstance(value, tuple):  # PERIOD
            begin, end = value
            begin_when = _when(vDDDTypes(begin), zones) if not tzid else _when(_with_tzid(begin, tzid), zones)
            if begin_when is None:
                continue
            length = end if isinstance(end, timedelta) else end - begin
            yield begin_when, length
            continue
        when = _when(item, zones)
        if when is None:
            problems.append("RDATE/EXDATE value not valid (left out)")
            continue
        if when.problem and when.problem not in problems:
            problems.append(when.problem)
        yield when


def _with_tzid(value: datetime, tzid: str) -> vDDDTypes:
    prop = vDDDTypes(value)
    prop.params["TZID"] = tzid
    return prop


#: How many instances of a bounded EXRULE become excluded overrides at most.
EXRULE_LIMIT = 1000


def _exrule(prop: Any, start: _When) -> dict[str, Any]:
    from dateutil.rrule import rrulestr

    rule = _rule(prop, start)
    if "count" not in rule and "until" not in rule:
        raise InvalidEvent("no COUNT or UNTIL (jscalendarbis has no excludedRecurrenceRules)")
    text = _rrule_text(rule, start.is_date, None, local_until=True)
    out: dict[str, Any] = {}
    for number, instance in enumerate(rrulestr(text, dtstart=start.wall)):
        if number >= EXRULE_LIMIT:
            raise InvalidEvent(f"more than {EXRULE_LIMIT} instances")
        out[_local(instance)] = {"excluded": True}
    return out


# -- a whole file ---------------------------------------------------------------------------

#: Properties left out of a RECURRENCE-ID instance's patch: they are the
#: series', or patches on them are ignored (jscalendarbis §4.3.5).
_NOT_PATCHED = frozenset({
    "@type", "uid", "recurrenceId", "recurrenceIdTimeZone", "recurrenceRule", "recurrenceOverrides",
    "relatedTo", "prodId", "method", "created", "updated", "sequence", "privacy",
    "organizerCalendarAddress",
})


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def diff(base: dict[str, Any], other: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A JMAP PatchObject that turns ``base`` into ``other`` (objects patched key by key)."""
    patch: dict[str, Any] = {}
    for key in dict.fromkeys([*base, *other]):
        if not prefix and key in _NOT_PATCHED:
            continue
        path = prefix + _pointer(key)
        if key not in other:
            patch[path] = None
        elif key not in base:
            patch[path] = other[key]
        elif base[key] != other[key]:
            if isinstance(base[key], dict) and isinstance(other[key], dict) and base[key] and other[key]:
                patch.update(diff(base[key], other[key], path + "/"))
            else:
                patch[path] = other[key]
    return patch


def apply_patch(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``base`` with a JMAP PatchObject applied (a copy; paths whose parent is missing are skipped)."""
    out = copy.deepcopy(base)
    for path, value in patch.items():
        keys = [k.replace("~1", "/").replace("~0", "~") for k in path.split("/")]
        target = out
        for key in keys[:-1]:
            nxt = target.get(key)
            if not isinstance(nxt, dict):
                nxt = target[key] = {}
            target = nxt
        if value is None:
            target.pop(keys[-1], None)
        else:
            target[keys[-1]] = copy.deepcopy(value)
    return out


def _instance_base(master: dict[str, Any], key: str) -> dict[str, Any]:
    base = {k: v for k, v in master.items() if k not in ("recurrenceRule", "recurrenceOverrides")}
    base["start"] = key
    return base


def read_icalendar(data: bytes | str) -> ICalFile:
    """Every VEVENT series in ``data`` as a JSCalendar Event (see the module doc)."""
    with warnings.catch_warnings():
        # icalendar warns when it strips a vendor prefix off a TZID; _Zones does the same, knowingly
        warnings.simplefilter("ignore")
        return _read(data)


def _read(data: bytes | str) -> ICalFile:
    blocks, zone_blocks, file_problems, prodid = _split(data)
    zones = _Zones(zone_blocks)
    result = ICalFile(events=[], problems=file_problems)
    masters: dict[str, ParsedEvent] = {}
    instances: list[tuple[_Block, Any, ParsedEvent]] = []
    for block in blocks:
        problems = list(block.problems)
        try:
            component = icalendar.Event.from_ical(block.text())
        except Exception as ex:  # noqa: BLE001 - icalendar's errors are varied; the event is skipped
            result.events.append(ParsedEvent(block.line, None, problems, f"VEVENT does not parse: {ex}"))
            continue
        uid = _text(component, "UID")
        for name, message in getattr(component, "errors", []) or []:
            if name not in ("RRULE", "EXRULE", "DTSTART", "DTEND", "DURATION", "RDATE", "EXDATE",
                            "CREATED", "LAST-MODIFIED", "DTSTAMP"):
                problems.append(f"property that does not parse left out: {name}: {message}")
        parsed = ParsedEvent(block.line, None, problems, uid=uid)
        if component.get("RECURRENCE-ID") is not None and uid:
            instances.append((block, component, parsed))
            continue
        try:
            event, _ = _convert(component, zones, problems)
        except InvalidEvent as ex:
            parsed.error = str(ex)
            result.events.append(parsed)
            if uid:  # its RECURRENCE-ID instances go with it, not as events of their own
                masters.setdefault(uid, parsed)
            continue
        if prodid:
            event["prodId"] = prodid
        if not uid:
            event["uid"] = f"{_short_id(block.text())}-ical-import"
            problems.append("no UID (one made from the event's text)")
        elif uid in masters:
            parsed.error = f"a second VEVENT with UID {uid} and no RECURRENCE-ID (the first one kept)"
            result.events.append(parsed)
            continue
        parsed.event = event
        if uid:
            masters[uid] = parsed
        result.events.append(parsed)
    for block, component, parsed in instances:
        _fold_instance(block, component, parsed, masters, zones, result, prodid)
    result.events.sort(key=lambda p: p.line)
    if not result.events:
        result.problems.append("no VEVENT in the file")
    return result


def _fold_instance(block: _Block, component: Any, parsed: ParsedEvent, masters: dict[str, ParsedEvent],
                   zones: _Zones, result: ICalFile, prodid: str | None) -> None:
    """A RECURRENCE-ID VEVENT: a patch in its master's recurrenceOverrides, or an event of its own."""
    problems = parsed.problems
    master = masters.get(parsed.uid or "")
    if master is not None and master.event is None:
        return  # the series was not converted: its instances are skipped with it
    try:
        instance, _ = _convert(component, zones, problems)
    except InvalidEvent as ex:
        if master is not None and master.event is not None:
            master.problems.append(f"a RECURRENCE-ID instance left out: {ex}")
        else:
            parsed.error = str(ex)
            result.events.append(parsed)
        return
    recurrence_id = _when(component.get("RECURRENCE-ID"), zones)
    if recurrence_id is None:
        if master is not None and master.event is not None:
            master.problems.append("a RECURRENCE-ID instance left out: RECURRENCE-ID not valid")
        else:
            parsed.error = "RECURRENCE-ID not valid"
            result.events.append(parsed)
        return
    if master is None or master.event is None:
        # invited to single instances only (draft-ietf-jmap-calendars §1.4.1): an event of its own
        instance["recurrenceId"] = _local(recurrence_id.wall)
        if recurrence_id.zone:
            instance["recurrenceIdTimeZone"] = recurrence_id.zone
        instance.pop("recurrenceRule", None)
        instance.pop("recurrenceOverrides", None)
        if prodid:
            instance["prodId"] = prodid
        parsed.event = instance
        result.events.append(parsed)
        return
    event = master.event
    key = _local(_in_zone(recurrence_id, event.get("timeZone")))
    for problem in problems:
        master.problems.append(problem)
    overrides = event.setdefault("recurrenceOverrides", {})
    instance.pop("recurrenceRule", None)
    instance.pop("recurrenceOverrides", None)
    overrides[key] = diff(_instance_base(event, key), instance)


# -- writing --------------------------------------------------------------------------------


def _rrule_text(rule: dict[str, Any], all_day: bool, zone: str | None, local_until: bool = False) -> str:
    parts = [f"FREQ={str(rule.get('frequency', '')).upper()}"]
    if rule.get("interval", 1) != 1:
        parts.append(f"INTERVAL={rule['interval']}")
    if rule.get("rscale"):
        parts.append(f"RSCALE={str(rule['rscale']).upper()}")
    if rule.get("skip"):
        parts.append(f"SKIP={str(rule['skip']).upper()}")
    if "count" in rule:
        parts.append(f"COUNT={rule['count']}")
    if rule.get("until"):
        until = parse_local(rule["until"])
        if until is None:
            pass
        elif all_day:
            parts.append(f"UNTIL={until:%Y%m%d}")
        elif zone and not local_until and _zone(zone):
            moment = until.replace(tzinfo=_zone(zone)).astimezone(UTC)
            parts.append(f"UNTIL={moment:%Y%m%dT%H%M%SZ}")
        else:
            parts.append(f"UNTIL={until:%Y%m%dT%H%M%S}")
    if rule.get("byDay"):
        parts.append("BYDAY=" + ",".join(f"{d.get('nthOfPeriod', '')}{str(d.get('day', '')).upper()}"
                                          for d in rule["byDay"]))
    if rule.get("byMonth"):
        parts.append("BYMONTH=" + ",".join(str(m) for m in rule["byMonth"]))
    for key, name in _RULE_LISTS.items():
        if rule.get(name):
            parts.append(f"{key}=" + ",".join(str(n) for n in rule[name]))
    if rule.get("firstDayOfWeek") and rule["firstDayOfWeek"] != "mo":
        parts.append(f"WKST={str(rule['firstDayOfWeek']).upper()}")
    return ";".join(parts)


def _dt_value(local: str, zone: str | None, all_day: bool) -> datetime | date | None:
    """A LocalDateTime as the value icalendar writes: a DATE, UTC, zoned or floating."""
    wall = parse_local(local)
    if wall is None:
        return None
    if all_day and wall.time() == datetime.min.time():
        return wall.date()
    if zone in ("Etc/UTC", "UTC", "Etc/GMT", "GMT"):
        return wall.replace(tzinfo=UTC)
    tz = _zone(zone) if zone else None
    return wall.replace(tzinfo=tz) if tz else wall


def _utc_value(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


class _Writer:
    def __init__(self) -> None:
        self.zones: set[str] = set()

    def vevent(self, event: dict[str, Any], recurrence_id: str | None = None,
               master_zone: str | None = None) -> icalendar.Event:
        out = icalendar.Event()
        out.add("UID", event.get("uid") or "")
        stamp = _utc_value(event.get("updated")) or datetime.now(UTC).replace(microsecond=0)
        out.add("DTSTAMP", stamp)
        zone = event.get("timeZone")
        all_day = bool(event.get("showWithoutTime"))
        if recurrence_id is None and event.get("recurrenceId"):  # an instance stored on its own
            recurrence_id = event["recurrenceId"]
            master_zone = event.get("recurrenceIdTimeZone") or zone
        if recurrence_id is not None:
            value = _dt_value(recurrence_id, master_zone, all_day)
            if value is not None:
                out.add("RECURRENCE-ID", value)
                self._zone(master_zone)
        start = _dt_value(event.get("start") or "", zone, all_day)
        if start is not None:
            out.add("DTSTART", start)
            self._zone(zone)
        duration = parse_duration(event.get("duration") or "PT0S")
        if event.get("endTimeZone") and isinstance(start, datetime) and duration is not None:
            end_zone = _zone(event["endTimeZone"])
            if end_zone:
                out.add("DTEND", (start.astimezone(UTC) + duration).astimezone(end_zone))
                self.zones.add(event["endTimeZone"])
        elif duration:
            out.add("DURATION", duration)
        for key, prop in (("title", "SUMMARY"), ("description", "DESCRIPTION"), ("color", "COLOR")):
            if event.get(key):
                out.add(prop, event[key])
        self._what(out, event)
        self._who(out, event)
        self._metadata(out, event)
        if recurrence_id is None:
            self._recurrence(out, event, all_day)
        for key, alert in (event.get("alerts") or {}).items():
            alarm = self._alarm(key, alert, event)
            if alarm is not None:
                out.add_component(alarm)
        return out

    def _zone(self, zone: str | None) -> None:
        if zone and zone not in ("Etc/UTC", "UTC", "Etc/GMT", "GMT") and _zone(zone):
            self.zones.add(zone)

    def _what(self, out: icalendar.Event, event: dict[str, Any]) -> None:  # noqa: C901
        geo_done = False
        for key, location in (event.get("locations") or {}).items():
            if location.get("name"):
                out.add("LOCATION", location["name"], parameters={"JSID": key})
            coordinates = location.get("coordinates") or ""
            if coordinates.startswith("geo:") and not geo_done:
                try:
                    lat, lon = (float(x) for x in coordinates[4:].split(";")[0].split(",")[:2])
                    out.add("GEO", (lat, lon))
                    geo_done = True
                except ValueError:
                    pass
        for key, virtual in (event.get("virtualLocations") or {}).items():
            if not virtual.get("uri"):
                continue
            params = {"VALUE": "URI", "JSID": key}
            if virtual.get("name"):
                params["LABEL"] = virtual["name"]
            if virtual.get("features"):
                params["FEATURE"] = ",".join(f.upper() for f in virtual["features"])
            out.add("CONFERENCE", virtual["uri"], parameters=params)
        for key, link in (event.get("links") or {}).items():
            if not link.get("href"):
                continue
            params = {"JSID": key}
            rel = link.get("rel")
            if link.get("contentType"):
                params["FMTTYPE"] = link["contentType"]
            if link.get("size") is not None:
                params["SIZE"] = str(link["size"])
            if link.get("title"):
                params["FILENAME" if rel == "enclosure" else "LABEL"] = link["title"]
            if rel == "enclosure":
                out.add("ATTACH", link["href"], parameters=params)
            elif rel == "describedby" and "URL" not in out:
                out.add("URL", link["href"], parameters=params)
            else:
                params.update({"VALUE": "URI", "REL": rel or "related"})
                out.add("LINK", link["href"], parameters=params)
        if event.get("keywords"):
            out.add("CATEGORIES", [k for k, v in event["keywords"].items() if v])
        for concept in event.get("categories") or {}:
            out.add("CONCEPT", concept, parameters={"VALUE": "URI"})

    def _who(self, out: icalendar.Event, event: dict[str, Any]) -> None:  # noqa: C901
        organizer = event.get("organizerCalendarAddress")
        participants = event.get("participants") or {}
        organizer_done = False
        for key, person in participants.items():
            address = person.get("calendarAddress") or (f"mailto:{person['email']}" if person.get("email") else None)
            if not address:
                continue
            roles = {r for r, on in (person.get("roles") or {"attendee": True}).items() if on}
            params: dict[str, str] = {"JSID": key}
            if person.get("name"):
                params["CN"] = person["name"]
            if person.get("email") and address.lower() != f"mailto:{person['email']}".lower():
                params["EMAIL"] = person["email"]
            if person.get("sentBy"):
                params["SENT-BY"] = person["sentBy"]
            is_organizer = "owner" in roles and (organizer is None or organizer == address) and not organizer_done
            if is_organizer:
                out.add("ORGANIZER", address, parameters=dict(params))
                organizer_done = True
                if not roles - {"owner"}:
                    continue
            kind = {v: k for k, v in _CUTYPE.items()}.get(person.get("kind") or "")
            if kind:
                params["CUTYPE"] = kind
            for role, value in (("chair", "CHAIR"), ("required", "REQ-PARTICIPANT"),
                                ("optional", "OPT-PARTICIPANT"), ("informational", "NON-PARTICIPANT")):
                if role in roles:
                    params["ROLE"] = value
                    break
            status = person.get("participationStatus")
            if status and status != "needs-action":
                params["PARTSTAT"] = status.upper()
            if person.get("expectReply"):
                params["RSVP"] = "TRUE"
            for prop, param in (("delegatedTo", "DELEGATED-TO"), ("delegatedFrom", "DELEGATED-FROM"),
                                ("memberOf", "MEMBER")):
                if person.get(prop):
                    params[param] = ",".join(f'"{v}"' for v in person[prop])
            out.add("ATTENDEE", address, parameters=params)
        if organizer and not organizer_done:
            out.add("ORGANIZER", organizer)

    def _metadata(self, out: icalendar.Event, event: dict[str, Any]) -> None:
        if event.get("status"):
            out.add("STATUS", event["status"].upper())
        if event.get("freeBusyStatus") in ("free", "busy"):
            out.add("TRANSP", "TRANSPARENT" if event["freeBusyStatus"] == "free" else "OPAQUE")
        if event.get("privacy"):
            out.add("CLASS", {v: k for k, v in _CLASS.items()}.get(event["privacy"], "PRIVATE"))
        if event.get("priority"):
            out.add("PRIORITY", event["priority"])
        if event.get("sequence"):
            out.add("SEQUENCE", event["sequence"])
        for key, prop in (("created", "CREATED"), ("updated", "LAST-MODIFIED")):
            value = _utc_value(event.get(key))
            if value is not None:
                out.add(prop, value)
        for uid, relation in (event.get("relatedTo") or {}).items():
            kinds = [k for k, on in (relation.get("relation") or {}).items() if on] or ["parent"]
            for kind in kinds:
                out.add("RELATED-TO", uid, parameters={"RELTYPE": kind.upper()})

    def _recurrence(self, out: icalendar.Event, event: dict[str, Any], all_day: bool) -> None:
        rule = event.get("recurrenceRule")
        if not rule and isinstance(event.get("recurrenceRules"), list) and event["recurrenceRules"]:
            rule = event["recurrenceRules"][0]  # RFC 8984 input name
        zone = event.get("timeZone")
        if rule:
            out.add("RRULE", vRecur.from_ical(_rrule_text(rule, all_day, zone)))
        overrides = event.get("recurrenceOverrides") or {}
        excluded, extra = [], []
        for key, patch in overrides.items():
            value = _dt_value(key, zone, all_day)
            if value is None:
                continue
            if patch.get("excluded"):
                excluded.append(value)
            elif not rule or not _occurs(event, rule, key):
                extra.append(value)
        if extra:
            out.add("RDATE", extra)
        if excluded:
            out.add("EXDATE", excluded)

    def _alarm(self, key: str, alert: dict[str, Any], event: dict[str, Any]) -> icalendar.Alarm | None:
        trigger = alert.get("trigger") or {}
        alarm = icalendar.Alarm()
        alarm.add("UID", key)
        alarm.add("ACTION", "EMAIL" if alert.get("action") == "email" else "DISPLAY")
        if trigger.get("@type") == "AbsoluteTrigger":
            when = _utc_value(trigger.get("when"))
            if when is None:
                return None
            alarm.add("TRIGGER", when, parameters={"VALUE": "DATE-TIME"})
        else:
            offset = parse_duration(trigger.get("offset") or "PT0S")
            if offset is None:
                return None
            params = {"RELATED": "END"} if trigger.get("relativeTo") == "end" else {}
            alarm.add("TRIGGER", offset, parameters=params)
        acknowledged = _utc_value(alert.get("acknowledged"))
        if acknowledged is not None:
            alarm.add("ACKNOWLEDGED", acknowledged)
        for uid in alert.get("relatedTo") or {}:
            alarm.add("RELATED-TO", uid, parameters={"RELTYPE": "SNOOZE"})
        if alarm["ACTION"] == "DISPLAY":
            alarm.add("DESCRIPTION", event.get("title") or "Reminder")
        else:
            alarm.add("SUMMARY", event.get("title") or "Reminder")
            alarm.add("DESCRIPTION", event.get("description") or event.get("title") or "Reminder")
        return alarm


def _occurs(event: dict[str, Any], rule: dict[str, Any], key: str) -> bool:
    """Whether the rule itself produces the instance ``key`` (else it is an RDATE)."""
    from dateutil.rrule import rrulestr

    start, moment = parse_local(event.get("start") or ""), parse_local(key)
    if start is None or moment is None or moment < start:
        return False
    try:
        rrule = rrulestr(_rrule_text(rule, bool(event.get("showWithoutTime")), None, local_until=True),
                         dtstart=start)
        return moment == start or moment in rrule
    except (ValueError, TypeError):
        return False


def _series(writer: _Writer, event: dict[str, Any]) -> list[icalendar.Event]:
    components = [writer.vevent(event)]
    zone = event.get("timeZone")
    for key, patch in (event.get("recurrenceOverrides") or {}).items():
        if not patch or patch.get("excluded"):
            continue
        instance = apply_patch(_instance_base(event, key), patch)
        components.append(writer.vevent(instance, recurrence_id=key, master_zone=zone))
    return components


_MULTILINE = frozenset({"title", "description", "name"})


def _single_lines(value: Any, key: str = "") -> Any:
    """``value`` with CR/LF taken out of every string but the texts that may hold them."""
    if isinstance(value, dict):
        return {k: _single_lines(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_single_lines(v) for v in value]
    if isinstance(value, str) and key not in _MULTILINE:
        return value.replace("\r", "").replace("\n", "")
    return value


def events_to_icalendar(events: Iterable[dict[str, Any]]) -> icalendar.Calendar:
    """One VCALENDAR holding ``events`` (each with its RECURRENCE-ID instances)."""
    calendar = icalendar.Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    writer = _Writer()
    for event in events:
        try:
            components = _series(writer, event)
        except ValueError:  # a line break where iCalendar allows none (an address, a URI)
            components = _series(writer, _single_lines(event))
        for component in components:
            calendar.add_component(component)
    for zone in sorted(writer.zones):
        try:
            calendar.subcomponents.insert(0, _vtimezone(zone))
        except ValueError:
            pass
    return calendar


@lru_cache(maxsize=256)
def _vtimezone_text(zone: str) -> bytes:
    return icalendar.Timezone.from_tzid(zone).to_ical()


def _vtimezone(zone: str) -> icalendar.Timezone:
    return icalendar.Timezone.from_ical(_vtimezone_text(zone))


def write_icalendar(events: Iterable[dict[str, Any]]) -> str:
    """``events`` as the text of one iCalendar file (CRLF line ends, folded)."""
    return events_to_icalendar(events).to_ical().decode("utf-8")
