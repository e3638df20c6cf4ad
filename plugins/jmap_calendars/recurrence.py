"""Recurrence of JSCalendar events: validation, expansion, instances and ids.

What the calendars plugin calls to turn a stored CalendarEvent (a JSCalendar
Event, RFC 8984 / draft-ietf-calext-jscalendarbis-08) into its occurrences:

* :func:`validate_recurrence` -- error paths for bad rules, override keys,
  time zones ([jscal-4.3-recurrence], [jscal-4.3.3-rrule]).
* :func:`utc_bounds` -- UTC start of the first instance, end of the last
  (``None`` when the event recurs forever).
* :func:`instances` -- the occurrences overlapping a UTC window, in start
  order, bounded by a limit ([jscal-4.3.3.1-expansion], [cal-5.11-expand]).
* :func:`instance_id` / :func:`parse_instance_id` -- the synthetic ids of
  expanded instances ([cal-5.5-recurrence], [cal-5.11-expand]).
* :func:`instance_object` -- one instance as a JSCalendar object
  ([cal-5.7-syntheticGet]).
* :func:`override_for_update` -- the ``recurrenceOverrides`` entry to store
  when a client updates one instance ([cal-5.9-synthetic]).

Rules
-----
Both spellings of the rules are read: the bis ``recurrenceRule`` (one rule)
and RFC 8984's ``recurrenceRules`` (a list) with ``excludedRecurrenceRules``.
A RecurrenceRule maps one to one onto an iCalendar RRULE (RFC 8984 §4.3.3),
and python-dateutil's ``rrule`` expands it.  As RFC 8984 prescribes, the
event's ``start`` is always the first occurrence, and is counted towards
``count``, even when the rule would not produce it; an excluded rule removes
whatever it matches (the start included, when the exclusion rule matches
it: the start is not forced into an exclusion rule's own expansion).
Override keys that the rules do not produce add instances (RDATE);
``{"excluded": true}`` removes one (EXDATE).  Only ``rscale`` gregorian and
``skip`` omit are expanded (what dateutil implements); other values are
reported by :func:`validate_recurrence` as unsupported.

Time
----
Rules are expanded on the local wall-clock time of ``start`` (so a weekly
09:00 Europe/Berlin meeting stays at 09:00 local across DST), then each
local time is converted to UTC with the standard library's zoneinfo.  A
local time in a DST gap or overlap takes the offset in force *before* the
transition ([jscal-1.4-types]): ``fold=0``.  A ``duration`` adds its weeks
and days in local time, then its hours, minutes and seconds in absolute
time.  A floating event (``timeZone`` null or absent) is read in the zone
``floating_tz`` names, ``Etc/UTC`` by default (the draft's default for
CalendarEvent/get and /query ``timeZone`` arguments, [cal-5.7-getArgs]).
Recurrence ids (override keys) are LocalDateTimes in the event's
``timeZone``.

Synthetic ids
-------------
The draft only asks that they be opaque to the client and let the server
resolve base id + recurrence id ([cal-5.11-expand]).  The form used here is
``<eventId>_<YYYYMMDD>T<HHMMSS>`` (the recurrence id without its
punctuation): only ``[A-Za-z0-9_-]``, at most 255 characters, and
reversible because the suffix never holds an underscore.  Callers should
look an id up as a stored record first and only then try
:func:`parse_instance_id` (a stored id of that very shape would otherwise
be read as an instance); the project's own ids never contain ``_``.

Work bounds ([cal-9.3-dos])
---------------------------
Expansion is lazy and windowed: for rules without ``count`` the expansion
starts at the window rather than at ``start``.  A rule whose expansion would
take more than :data:`MAX_CANDIDATES` steps raises
:class:`CannotCalculateOccurrences` (the draft's ``cannotCalculateOccurrences``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import rrule as du

__all__ = [
    "CannotCalculateOccurrences",
    "Instance",
    "apply_patch",
    "instance_id",
    "instance_object",
    "instances",
    "override_for_update",
    "parse_instance_id",
    "recurrence_id_utc",
    "utc_bounds",
    "validate_recurrence",
]

#: Upper bound on the occurrences one call may step through.
MAX_CANDIDATES = 100_000
#: The smaller bound of :func:`utc_bounds` (run on every write): past it the
#: end of a series is taken from ``until``.
MAX_BOUNDS_CANDIDATES = 20_000

LOCAL_DATETIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$")
DURATION = re.compile(
    r"^P(?!$)(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.(\d+))?S)?)?$"
)
FREQUENCIES = {
    "yearly": du.YEARLY,
    "monthly": du.MONTHLY,
    "weekly": du.WEEKLY,
    "daily": du.DAILY,
    "hourly": du.HOURLY,
    "minutely": du.MINUTELY,
    "secondly": du.SECONDLY,
}
WEEKDAYS = {"mo": du.MO, "tu": du.TU, "we": du.WE, "th": du.TH, "fr": du.FR, "sa": du.SA, "su": du.SU}
SKIPS = ("omit", "backward", "forward")
RULE_KEYS = ("recurrenceRules", "recurrenceRule", "excludedRecurrenceRules")
#: Properties a recurrence override may not change: patches on them are
#: ignored (RFC 8984 §4.3.5; bis §4.3.4 adds organizerCalendarAddress and
#: participants' calendarAddress).
IGNORED_IN_OVERRIDES = frozenset({
    "@type", "excludedRecurrenceRules", "method", "organizerCalendarAddress", "privacy",
    "prodId", "recurrenceId", "recurrenceIdTimeZone", "recurrenceOverrides",
    "recurrenceRule", "recurrenceRules", "relatedTo", "replyTo", "sentBy", "timeZones", "uid",
})
#: CalendarEvent properties that are never valid inside an override
#: ([cal-5-props] isDraft, [cal-5-utcStart], [cal-5.1-newProps]) nor part of
#: what an instance differs in.
JMAP_ONLY = frozenset({
    "id", "baseEventId", "calendarIds", "isDraft", "isOrigin", "utcStart", "utcEnd",
    "mayInviteSelf", "mayInviteOthers", "hideAttendees",
})
_INSTANCE_SUFFIX = re.compile(r"^(.+)_(\d{8})T(\d{6})$")
_ID_CHARS = re.compile(r"^[A-Za-z0-9_-]+$")


class CannotCalculateOccurrences(ValueError):
    """The rule needs more expansion work than the server allows
    ([cal-5.11-errors] ``cannotCalculateOccurrences``)."""


@dataclass(frozen=True)
class Instance:
    """One occurrence: its recurrence id (a LocalDateTime in the event's
    time zone), its UTC span, and the occurrence as a JSCalendar object
    (as :func:`instance_object` returns it; nested values may be shared
    with the master event, so treat it as read-only)."""

    recurrence_id: str
    utc_start: datetime
    utc_end: datetime
    event: dict


# -- small parsers -------------------------------------------------------


def parse_local(text: Any) -> datetime | None:
    """A JSCalendar LocalDateTime (no offset, no fractional seconds in bis)
    as a naive datetime, or None."""
    if not isinstance(text, str):
        return None
    match = LOCAL_DATETIME.match(text)
    if not match:
        return None
    try:
        return datetime(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def format_local(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S") if value.year >= 1000 else (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}")


def parse_duration(text: Any) -> tuple[int, timedelta] | None:
    """A JSCalendar Duration as (days to add in local time, the rest in
    absolute time), or None when malformed."""
    if not isinstance(text, str):
        return None
    match = DURATION.match(text)
    if not match:
        return None
    weeks, days, hours, minutes, seconds, fraction = match.groups()
    if fraction is not None and fraction.endswith("0"):
        return None  # RFC 8984: no trailing zeros in the fraction
    exact = timedelta(
        hours=int(hours or 0), minutes=int(minutes or 0), seconds=int(seconds or 0),
        microseconds=int((fraction or "0")[:6].ljust(6, "0")),
    )
    return int(weeks or 0) * 7 + int(days or 0), exact


def zone(name: Any) -> tzinfo | None:
    """The zoneinfo zone a TimeZoneId names, or None if unknown."""
    if not isinstance(name, str) or not name or name.startswith(("/", ".")) or ".." in name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def to_utc(local: datetime, tz: tzinfo) -> datetime:
    """A wall-clock time in ``tz`` as UTC; in a gap or an overlap the offset
    before the transition applies (fold=0, [jscal-1.4-types])."""
    return local.replace(tzinfo=tz, fold=0).astimezone(UTC)


def _pointer_escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _pointer_unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


# -- validation ----------------------------------------------------------


def _int_list(value: Any, low: int, high: int, nonzero: bool) -> list[int] | None:
    """The indices of the bad members (empty when all good), None if not a list."""
    if not isinstance(value, list):
        return None
    bad = []
    for index, item in enumerate(value):
        if (not isinstance(item, int) or isinstance(item, bool) or not low <= item <= high
                or (nonzero and item == 0)):
            bad.append(index)
    return bad


_INT_PARTS = {
    # name: (low, high, nonzero)
    "byMonthDay": (-31, 31, True),
    "byYearDay": (-366, 366, True),
    "byWeekNo": (-53, 53, True),
    "byHour": (0, 23, False),
    "byMinute": (0, 59, False),
    "bySecond": (0, 60, False),
    "bySetPosition": (-366, 366, True),
}


def _validate_by_day(rule: dict, path: str, frequency: Any) -> list[str]:
    by_day = rule.get("byDay")
    if by_day is None:
        return []
    if not isinstance(by_day, list):
        return [f"{path}/byDay"]
    errors = []
    for index, nday in enumerate(by_day):
        where = f"{path}/byDay/{index}"
        if not isinstance(nday, dict) or nday.get("@type", "NDay") != "NDay":
            errors.append(where)
            continue
        if nday.get("day") not in WEEKDAYS:
            errors.append(f"{where}/day")
        nth = nday.get("nthOfPeriod")
        if nth is None:
            continue
        if not isinstance(nth, int) or isinstance(nth, bool) or nth == 0 or not -53 <= nth <= 53:
            errors.append(f"{where}/nthOfPeriod")
        elif frequency not in ("monthly", "yearly") or (frequency == "yearly" and rule.get("byWeekNo")):
            # RFC 5545 §3.3.10: numeric BYDAY only in MONTHLY or YEARLY
            # rules, and not in YEARLY ones with BYWEEKNO.
            errors.append(f"{where}/nthOfPeriod")
        elif frequency == "monthly" and not -5 <= nth <= 5:
            errors.append(f"{where}/nthOfPeriod")
    return errors


def _validate_lists(rule: dict, path: str, frequency: Any) -> list[str]:
    errors = []
    by_month = rule.get("byMonth")
    if by_month is not None:
        if not isinstance(by_month, list):
            errors.append(f"{path}/byMonth")
        else:
            for index, month in enumerate(by_month):
                # "L" (leap month) only exists in non-Gregorian calendars.
                if not (isinstance(month, str) and month.isdigit() and 1 <= int(month) <= 12):
                    errors.append(f"{path}/byMonth/{index}")
    for name, (low, high, nonzero) in _INT_PARTS.items():
        if name not in rule or rule[name] is None:
            continue
        bad = _int_list(rule[name], low, high, nonzero)
        if bad is None:
            errors.append(f"{path}/{name}")
        else:
            errors.extend(f"{path}/{name}/{index}" for index in bad)
    if rule.get("byWeekNo") and frequency != "yearly":
        errors.append(f"{path}/byWeekNo")  # RFC 5545: BYWEEKNO only with YEARLY
    if rule.get("byYearDay") and frequency in ("daily", "weekly", "monthly"):
        errors.append(f"{path}/byYearDay")
    if rule.get("byMonthDay") and frequency == "weekly":
        errors.append(f"{path}/byMonthDay")
    return errors


def validate_rule(rule: Any, path: str) -> list[str]:
    """Error paths for one RecurrenceRule object ([jscal-4.3.3-rrule])."""
    if not isinstance(rule, dict):
        return [path]
    errors: list[str] = []
    if rule.get("@type", "RecurrenceRule") != "RecurrenceRule":
        errors.append(f"{path}/@type")
    frequency = rule.get("frequency")
    if frequency not in FREQUENCIES:
        errors.append(f"{path}/frequency")
    interval = rule.get("interval", 1)
    if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
        errors.append(f"{path}/interval")
    if str(rule.get("rscale", "gregorian")).lower() != "gregorian":
        errors.append(f"{path}/rscale")  # only the Gregorian calendar is expanded
    if rule.get("skip", "omit") != "omit":
        errors.append(f"{path}/skip")  # RFC 7529 skip needs an rscale; not expanded
    if rule.get("firstDayOfWeek", "mo") not in WEEKDAYS:
        errors.append(f"{path}/firstDayOfWeek")
    errors.extend(_validate_by_day(rule, path, frequency))
    errors.extend(_validate_lists(rule, path, frequency))
    count, until = rule.get("count"), rule.get("until")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        errors.append(f"{path}/count")
    if until is not None and parse_local(until) is None:
        errors.append(f"{path}/until")
    if count is not None and until is not None:
        errors.append(f"{path}/until")  # count and until are mutually exclusive
    return sorted(set(errors), key=errors.index)


def _rules_of(event: dict) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    """[(path, rule)] of the inclusion and the exclusion rules."""
    include: list[tuple[str, Any]] = []
    if event.get("recurrenceRule") is not None:
        include.append(("recurrenceRule", event["recurrenceRule"]))
    rules = event.get("recurrenceRules")
    if isinstance(rules, list):
        include.extend((f"recurrenceRules/{i}", rule) for i, rule in enumerate(rules))
    exclude: list[tuple[str, Any]] = []
    excluded = event.get("excludedRecurrenceRules")
    if isinstance(excluded, list):
        exclude.extend((f"excludedRecurrenceRules/{i}", rule) for i, rule in enumerate(excluded))
    return include, exclude


def validate_recurrence(event: dict) -> list[str]:
    """Error paths (JSON pointers without the leading slash, as JMAP's
    invalidProperties lists them) of what is wrong with the recurrence and
    time properties of ``event``; empty when it can be expanded."""
    errors: list[str] = []
    if parse_local(event.get("start")) is None:
        errors.append("start")
    if "duration" in event and event["duration"] is not None and parse_duration(event["duration"]) is None:
        errors.append("duration")
    for name in ("timeZone", "recurrenceIdTimeZone", "endTimeZone"):
        if event.get(name) is not None and zone(event[name]) is None:
            errors.append(name)
    for name in ("recurrenceRules", "excludedRecurrenceRules"):
        if name in event and event[name] is not None and not isinstance(event[name], list):
            errors.append(name)
    include, exclude = _rules_of(event)
    for path, rule in include + exclude:
        errors.extend(validate_rule(rule, path))
    overrides = event.get("recurrenceOverrides")
    if event.get("recurrenceId") is not None:
        if parse_local(event["recurrenceId"]) is None:
            errors.append("recurrenceId")
        # An instance carries no rules nor overrides of its own.
        errors.extend(name for name in (*RULE_KEYS, "recurrenceOverrides")
                      if event.get(name) not in (None, [], {}))
    if overrides is not None:
        if not isinstance(overrides, dict):
            errors.append("recurrenceOverrides")
        else:
            for key, patch in overrides.items():
                errors.extend(_validate_override(key, patch))
    return errors


def _validate_override(key: str, patch: Any) -> list[str]:
    where = f"recurrenceOverrides/{_pointer_escape(key)}"
    if parse_local(key) is None:
        return [where]
    if not isinstance(patch, dict):
        return [where]
    errors = []
    for path, value in patch.items():
        top = path.split("/", 1)[0]
        here = f"{where}/{path}"
        if top in JMAP_ONLY:
            errors.append(here)
        elif path == "excluded" and not isinstance(value, bool):
            errors.append(here)
        elif path == "start" and parse_local(value) is None:
            errors.append(here)
        elif path == "duration" and parse_duration(value) is None:
            errors.append(here)
        elif path in ("timeZone", "endTimeZone") and value is not None and zone(value) is None:
            errors.append(here)
    return errors


# -- expansion -----------------------------------------------------------


def _rule_kwargs(rule: dict, start: datetime) -> dict[str, Any]:
    """dateutil rrule arguments for a valid RecurrenceRule, with dateutil's
    implicit BYxxx made explicit so that the expansion may begin anywhere
    on the rule's period grid ([jscal-4.3.3.1-expansion])."""
    freq = FREQUENCIES[rule["frequency"]]
    kwargs: dict[str, Any] = {
        "freq": freq,
        "interval": rule.get("interval", 1),
        "wkst": WEEKDAYS[rule.get("firstDayOfWeek", "mo")],
    }
    if rule.get("byDay"):
        kwargs["byweekday"] = [
            WEEKDAYS[nday["day"]](nday["nthOfPeriod"]) if nday.get("nthOfPeriod") else WEEKDAYS[nday["day"]]
            for nday in rule["byDay"]
        ]
    if rule.get("byMonth"):
        kwargs["bymonth"] = sorted({int(month) for month in rule["byMonth"]})
    for name, target in (("byMonthDay", "bymonthday"), ("byYearDay", "byyearday"),
                         ("byWeekNo", "byweekno"), ("byHour", "byhour"),
                         ("byMinute", "byminute"), ("bySetPosition", "bysetpos")):
        if rule.get(name):
            kwargs[target] = sorted(set(rule[name]))
    if rule.get("bySecond"):
        seconds = sorted({second for second in rule["bySecond"] if second < 60})
        kwargs["bysecond"] = seconds or [start.second]  # leap second 60: not representable
    if rule.get("count") is not None:
        kwargs["count"] = rule["count"]
    if rule.get("until") is not None:
        kwargs["until"] = parse_local(rule["until"])
    # dateutil derives the missing BYxxx from dtstart; pin them to ``start``.
    if not any(k in kwargs for k in ("byweekno", "byyearday", "bymonthday", "byweekday")):
        if freq == du.YEARLY:
            kwargs.setdefault("bymonth", [start.month])
            kwargs["bymonthday"] = [start.day]
        elif freq == du.MONTHLY:
            kwargs["bymonthday"] = [start.day]
        elif freq == du.WEEKLY:
            kwargs["byweekday"] = [start.weekday()]
    if freq < du.HOURLY:
        kwargs.setdefault("byhour", [start.hour])
    if freq < du.MINUTELY:
        kwargs.setdefault("byminute", [start.minute])
    if freq < du.SECONDLY:
        kwargs.setdefault("bysecond", [start.second])
    return kwargs


def _months(value: datetime) -> int:
    return value.year * 12 + value.month - 1


def _grid_start(kwargs: dict[str, Any], start: datetime, low: datetime | None) -> datetime:
    """A dtstart at or after ``start`` on the rule's period grid, as late as
    possible but not after ``low``: expanding from it gives exactly the
    occurrences of the rule from ``start`` that lie at or after ``low``
    (count-less rules only; BYxxx explicit, see :func:`_rule_kwargs`)."""
    if low is None or low <= start or kwargs.get("count") is not None:
        return start
    freq, interval = kwargs["freq"], kwargs["interval"]
    margin = low - timedelta(days=8)  # a whole week before: byweekno/wkst periods
    if margin <= start:
        return start
    if freq in (du.DAILY, du.HOURLY, du.MINUTELY, du.SECONDLY):
        unit = {du.DAILY: 86400, du.HOURLY: 3600, du.MINUTELY: 60, du.SECONDLY: 1}[freq] * interval
        steps = int((margin - start).total_seconds()) // unit
        return start + timedelta(seconds=steps * unit)
    if freq == du.WEEKLY:
        # Whole periods from the start of start's week (by wkst).
        week0 = (start - timedelta(days=(start.weekday() - kwargs["wkst"].weekday) % 7)).replace(
            hour=0, minute=0, second=0)
        weeks = ((margin - week0).days // 7) // interval * interval
        return week0 + timedelta(weeks=weeks) if weeks > 0 else start
    if freq == du.MONTHLY:
        months = (_months(margin) - _months(start)) // interval * interval
        if months <= 0:
            return start
        total = _months(start) + months
        return datetime(total // 12, total % 12 + 1, 1)
    # YEARLY
    years = (margin.year - start.year) // interval * interval
    return datetime(start.year + years, 1, 1) if years > 0 else start


class _Guarded:
    """Iterate an rrule, counting the occurrences stepped through."""

    def __init__(self, limit: int = MAX_CANDIDATES) -> None:
        self.steps = 0
        self.limit = limit

    def take(self, iterator: Iterator[datetime]) -> Iterator[datetime]:
        while True:
            try:
                value = next(iterator)
            except StopIteration:
                return
            except ValueError:
                # dateutil: "Invalid rrule byxxx generates an empty set"
                # (e.g. an hourly interval that never lands on byHour).
                return
            self.steps += 1
            if self.steps > self.limit:
                raise CannotCalculateOccurrences("recurrence expansion exceeds the work bound")
            yield value


_PERIOD_DAYS = {du.YEARLY: 366, du.MONTHLY: 31, du.WEEKLY: 7}
_DATE_FILTERS = ("bymonth", "bymonthday", "byyearday", "byweekno", "byweekday")


def _never_matches(kwargs: dict[str, Any], start: datetime) -> bool:
    """Whether a rule can be seen, cheaply, never to produce an occurrence:
    dateutil would otherwise search for one up to the year 9999
    ([cal-9.3-dos])."""
    try:
        du.rrule(dtstart=start, **kwargs)
    except ValueError:
        return True  # dateutil: "Invalid rrule byxxx generates an empty set"
    key = repr(sorted((k, v) for k, v in kwargs.items() if k not in ("count", "until")))
    return _never_matches_cached(key, kwargs, start.month, start.weekday())


_NEVER_CACHE: dict[str, bool] = {}


def _never_matches_cached(key: str, kwargs: dict[str, Any], month: int, weekday: int) -> bool:
    cached = _NEVER_CACHE.get(f"{key}|{month}|{weekday}")
    if cached is not None:
        return cached
    answer = _never_matches_uncached(kwargs, month, weekday)
    if len(_NEVER_CACHE) > 4096:
        _NEVER_CACHE.clear()
    _NEVER_CACHE[f"{key}|{month}|{weekday}"] = answer
    return answer


def _never_matches_uncached(kwargs: dict[str, Any], month: int, weekday: int) -> bool:
    freq, interval = kwargs["freq"], kwargs["interval"]
    # bySetPosition beyond the largest possible set of a period.
    if kwargs.get("bysetpos"):
        times = 1
        for name, finer_than in (("byhour", du.HOURLY), ("byminute", du.MINUTELY), ("bysecond", du.SECONDLY)):
            if freq < finer_than:
                times *= len(kwargs.get(name) or [0])
        largest = _PERIOD_DAYS.get(freq, 1) * times
        if min(abs(pos) for pos in kwargs["bysetpos"]) > largest:
            return True
    # Period grids that only ever visit one month or one weekday.
    weekdays = kwargs.get("byweekday")
    if freq == du.DAILY and interval % 7 == 0 and weekdays and all(
            getattr(day, "n", None) is None for day in weekdays):
        if weekday not in {getattr(day, "weekday", day) for day in weekdays}:
            return True
    if freq == du.MONTHLY and interval % 12 == 0 and kwargs.get("bymonth") and month not in kwargs["bymonth"]:
        return True
    # Date filters no day satisfies: the Gregorian calendar repeats every
    # 400 years, so a yearly walk over 401 of them decides it.
    filters = {name: kwargs[name] for name in _DATE_FILTERS if kwargs.get(name)}
    if not filters or set(filters) == {"byweekday"}:
        return False
    if freq == du.MONTHLY and "bymonth" not in filters:
        filters["bymonth"] = list(range(1, 13))  # nth weekday of the month
    probe = du.rrule(du.YEARLY, dtstart=datetime(2000, 1, 1), until=datetime(2401, 1, 1), **filters)
    try:
        return next(iter(probe), None) is None
    except ValueError:
        return True


def _occurrences(dtstart: datetime, kwargs: dict[str, Any]) -> Iterator[datetime]:
    """dateutil's expansion; a rule dateutil finds empty (an hourly interval
    that never lands on byHour, say) has no occurrence."""
    try:
        return iter(du.rrule(dtstart=dtstart, **kwargs))
    except ValueError:
        return iter(())


def _rule_iter(rule: dict, start: datetime, low: datetime | None, forced_start: bool,
               guard: _Guarded) -> Iterator[datetime]:
    """Occurrences of one rule at or after ``low`` (naive local times), in
    order.  With ``forced_start``, RFC 8984's reading: ``start`` is the
    first occurrence and counts towards ``count`` even if the rule would
    not produce it."""
    kwargs = _rule_kwargs(rule, start)
    if _never_matches(kwargs, start):
        return iter(())
    count = kwargs.get("count")
    if forced_start and count is not None:
        first = next(guard.take(_occurrences(start, {**kwargs, "count": 1})), None)
        if first != start:
            if count == 1:
                return iter(())
            kwargs["count"] = count - 1
    dtstart = _grid_start(kwargs, start, low)
    generator = guard.take(_occurrences(dtstart, kwargs))
    if low is None or low <= dtstart:
        return generator
    return (value for value in generator if value >= low)


def _merge_unique(iterators: list[Iterator[datetime]]) -> Iterator[datetime]:
    import heapq

    last = None
    for value in heapq.merge(*iterators):
        if value != last:
            last = value
            yield value


def _recurrence_ids(event: dict, low: datetime | None, guard: _Guarded) -> Iterator[datetime]:
    """The local recurrence ids the start and the rules produce, minus the
    exclusion rules, ascending, from ``low`` on (overrides not applied)."""
    start = parse_local(event.get("start"))
    if start is None:
        return
    include, exclude = _rules_of(event)
    sources: list[Iterator[datetime]] = []
    if low is None or start >= low:
        sources.append(iter((start,)))
    for _path, rule in include:
        sources.append(_rule_iter(rule, start, low, True, guard))
    excluders = [_rule_iter(rule, start, low, False, guard) for _path, rule in exclude]
    pending = [next(it, None) for it in excluders]
    for value in _merge_unique(sources):
        excluded = False
        for index, it in enumerate(excluders):
            while pending[index] is not None and pending[index] < value:
                pending[index] = next(it, None)
            if pending[index] == value:
                excluded = True
        if not excluded:
            yield value


def _is_recurring(event: dict) -> bool:
    include, _ = _rules_of(event)
    return bool(include) or bool(event.get("recurrenceOverrides"))


def _is_finite(event: dict) -> bool:
    """No rule recurs forever: each has count or until, or never matches."""
    include, _ = _rules_of(event)
    start = parse_local(event.get("start"))
    for _path, rule in include:
        if not isinstance(rule, dict) or start is None:
            return False
        if rule.get("count") is not None or rule.get("until") is not None:
            continue
        if not _never_matches(_rule_kwargs(rule, start), start):
            return False
    return True


# -- patches and instance objects ----------------------------------------


def apply_patch(target: dict, patch: dict, ignore: frozenset[str] = frozenset()) -> dict:
    """``target`` with a JMAP PatchObject applied (RFC 8620 §5.3: paths are
    JSON pointers without the leading slash, null removes, the parent of a
    path must exist).  Copies only along the patched paths.  Paths whose
    first segment is in ``ignore`` are skipped.  ValueError on a bad path."""
    result = dict(target)
    for path, value in patch.items():
        parts = [_pointer_unescape(part) for part in path.split("/")]
        if parts[0] in ignore or (len(parts) == 3 and parts[0] == "participants"
                                  and parts[2] in ("calendarAddress", "sendTo")
                                  and "participants" in ignore):
            continue
        node = result
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                raise ValueError(path)
            child = dict(child)
            node[part] = child
            node = child
        if value is None:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = value
    return result


def _override_patch(patch: dict) -> dict:
    """An override minus what overrides may not change (ignored) and its
    ``excluded`` marker."""
    cleaned = {}
    for path, value in patch.items():
        parts = path.split("/")
        if parts[0] in IGNORED_IN_OVERRIDES or parts[0] in JMAP_ONLY or path == "excluded":
            continue
        if len(parts) == 3 and parts[0] == "participants" and parts[2] in ("calendarAddress", "sendTo"):
            continue
        cleaned[path] = value
    return cleaned


def _bare_instance(event: dict, recurrence_id: str) -> dict:
    """The master as the instance ``recurrence_id``, no override applied."""
    obj = {key: value for key, value in event.items()
           if key not in RULE_KEYS and key != "recurrenceOverrides" and key not in ("utcStart", "utcEnd")}
    obj["start"] = recurrence_id
    obj["recurrenceId"] = recurrence_id
    obj["recurrenceIdTimeZone"] = event.get("timeZone")
    return obj


def _patched_instance(event: dict, recurrence_id: str, patch: dict) -> dict | None:
    try:
        return apply_patch(_bare_instance(event, recurrence_id), _override_patch(patch))
    except ValueError:
        return None


def _span(obj: dict, floating: tzinfo) -> tuple[datetime, datetime] | None:
    """UTC start and end of a (non-recurring or instance) event object."""
    start = parse_local(obj.get("start"))
    if start is None:
        return None
    tz = zone(obj["timeZone"]) if obj.get("timeZone") is not None else floating
    if tz is None:
        return None
    duration = parse_duration(obj.get("duration") or "PT0S") or (0, timedelta())
    utc_start = to_utc(start, tz)
    days, exact = duration
    end_local = start + timedelta(days=days)
    return utc_start, to_utc(end_local, tz) + exact


def _floating(floating_tz: str | None) -> tzinfo:
    tz = zone(floating_tz) if floating_tz else None
    return tz or UTC


def _overlaps(start: datetime, end: datetime, after: datetime | None, before: datetime | None) -> bool:
    """[after, before) overlap; a zero-length instance at ``after`` counts."""
    if before is not None and start >= before:
        return False
    if after is not None and end <= after and not (start == end and start >= after):
        return False
    return True


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _rule_instances(event: dict, tz: tzinfo, overrides: dict, after: datetime | None,
                    before: datetime | None, limit: int) -> list[Instance]:
    """The instances the start and rules produce that no override covers,
    overlapping the window: one local-time walk from just before it."""
    days, exact = parse_duration(event.get("duration") or "PT0S") or (0, timedelta())
    low = high = None
    if after is not None:
        low = after.astimezone(tz).replace(tzinfo=None) - timedelta(days=days + 2) - exact
    if before is not None:
        high = before.astimezone(tz).replace(tzinfo=None) + timedelta(days=2)
    found: list[Instance] = []
    stop_after: datetime | None = None
    for local in _recurrence_ids(event, low, _Guarded()):
        if (high is not None and local > high) or (stop_after is not None and local > stop_after):
            break
        key = format_local(local)
        if key in overrides:
            continue
        utc_start = to_utc(local, tz)
        utc_end = to_utc(local + timedelta(days=days), tz) + exact
        if not _overlaps(utc_start, utc_end, after, before):
            continue
        found.append(Instance(key, utc_start, utc_end, _bare_instance(event, key)))
        if len(found) >= limit and stop_after is None:
            # A few hours more: DST can reorder UTC starts near a transition.
            stop_after = local + timedelta(hours=3)
    return found


def instances(event: dict, after: datetime | None = None, before: datetime | None = None,
              limit: int = 1000, *, floating_tz: str | None = None) -> list[Instance]:
    """The occurrences of ``event`` overlapping [after, before) (UTC; naive
    datetimes are read as UTC; None = unbounded), in UTC start order, at
    most ``limit`` of them.  A non-recurring event is its own single
    instance (recurrence id = its start).  Raises
    :class:`CannotCalculateOccurrences` past the work bound."""
    after, before = _aware(after), _aware(before)
    floating = _floating(floating_tz)
    if limit <= 0:
        return []
    if not _is_recurring(event):
        span = _span(event, floating)
        if span is None or not _overlaps(*span, after, before):
            return []
        rid = event.get("recurrenceId") or event["start"]
        return [Instance(rid, span[0], span[1], event)]
    start = parse_local(event.get("start"))
    tz = zone(event["timeZone"]) if event.get("timeZone") is not None else floating
    if start is None or tz is None:
        return []
    overrides = event.get("recurrenceOverrides") or {}
    if not isinstance(overrides, dict):
        overrides = {}
    found: list[Instance] = []
    # Overridden and added instances: finite, each placed by its own start.
    for key, patch in overrides.items():
        if not isinstance(patch, dict) or patch.get("excluded") is True or parse_local(key) is None:
            continue
        obj = _patched_instance(event, key, patch)
        span = _span(obj, floating) if obj is not None else None
        if span is not None and _overlaps(*span, after, before):
            found.append(Instance(key, span[0], span[1], obj))
    found.extend(_rule_instances(event, tz, overrides, after, before, limit))
    found.sort(key=lambda inst: (inst.utc_start, inst.recurrence_id))
    return found[:limit]


def utc_bounds(event: dict, *, floating_tz: str | None = None) -> tuple[datetime, datetime | None]:
    """UTC start of the first instance and UTC end of the last, None as the
    end when the event recurs forever.  A non-recurring event: its start and
    start + duration.  Floating events are read in ``floating_tz`` (UTC by
    default).  Meant for indexing, so it never fails on a long series: when
    walking to the last occurrence would pass the work bound, the end is the
    rule's ``until`` (+ duration), or None for a ``count`` too large to walk.
    ValueError when the event has no valid start/time zone or no instance at
    all (every one excluded)."""
    floating = _floating(floating_tz)
    if not _is_recurring(event):
        span = _span(event, floating)
        if span is None:
            raise ValueError("event has no valid start, duration or timeZone")
        return span
    start = parse_local(event.get("start"))
    tz = zone(event["timeZone"]) if event.get("timeZone") is not None else floating
    if start is None or tz is None:
        raise ValueError("event has no valid start or timeZone")
    overrides = event.get("recurrenceOverrides") or {}
    overrides = overrides if isinstance(overrides, dict) else {}
    spans = []
    for key, patch in overrides.items():
        if isinstance(patch, dict) and patch.get("excluded") is not True and parse_local(key) is not None:
            obj = _patched_instance(event, key, patch)
            span = _span(obj, floating) if obj is not None else None
            if span is not None:
                spans.append(span)
    days, exact = parse_duration(event.get("duration") or "PT0S") or (0, timedelta())
    finite = _is_finite(event)
    first = last = None
    try:
        for local in _recurrence_ids(event, None, _Guarded(MAX_BOUNDS_CANDIDATES)):
            if format_local(local) in overrides:
                continue
            utc_start = to_utc(local, tz)
            utc_end = to_utc(local + timedelta(days=days), tz) + exact
            first = utc_start if first is None else min(first, utc_start)
            last = utc_end if last is None else max(last, utc_end)
            if not finite and local > start + timedelta(days=2):
                break
    except CannotCalculateOccurrences:
        last = _until_bound(event, tz, days, exact)
    if first is not None:
        spans.append((first, last))
    if not spans:
        raise ValueError("event has no instance")
    lower = min(span[0] for span in spans)
    if not finite or any(span[1] is None for span in spans):
        return lower, None
    return lower, max(span[1] for span in spans)


def _until_bound(event: dict, tz: tzinfo, days: int, exact: timedelta) -> datetime | None:
    """The latest end the rules' ``until`` allow; None if a rule has none."""
    include, _ = _rules_of(event)
    ends = []
    for _path, rule in include:
        until = parse_local(rule.get("until"))
        if until is None:
            return None
        ends.append(to_utc(until + timedelta(days=days), tz) + exact)
    return max(ends) if ends else None


# -- synthetic ids -------------------------------------------------------


def instance_id(event_id: str, recurrence_id: str) -> str:
    """The synthetic id of one expanded instance: ``<eventId>_<YYYYMMDD>T<HHMMSS>``
    ([cal-5.11-expand]).  ValueError when the pieces are not an Id and a
    LocalDateTime, or the result would pass 255 characters."""
    local = parse_local(recurrence_id)
    if local is None:
        raise ValueError(f"not a LocalDateTime: {recurrence_id!r}")
    if not isinstance(event_id, str) or not _ID_CHARS.match(event_id):
        raise ValueError(f"not an Id: {event_id!r}")
    text = f"{event_id}_{recurrence_id[0:4]}{recurrence_id[5:7]}{recurrence_id[8:10]}T" \
           f"{recurrence_id[11:13]}{recurrence_id[14:16]}{recurrence_id[17:19]}"
    if len(text) > 255:
        raise ValueError("event id too long for a synthetic instance id")
    return text


def parse_instance_id(text: str) -> tuple[str, str] | None:
    """(event id, recurrence id) of a synthetic instance id, None if ``text``
    is not one."""
    if not isinstance(text, str) or len(text) > 255 or not _ID_CHARS.match(text):
        return None
    match = _INSTANCE_SUFFIX.match(text)
    if not match:
        return None
    base, date, time = match.groups()
    rid = f"{date[0:4]}-{date[4:6]}-{date[6:8]}T{time[0:2]}:{time[2:4]}:{time[4:6]}"
    if parse_local(rid) is None:
        return None
    return base, rid


# -- single instances ----------------------------------------------------


def _generates(event: dict, local: datetime) -> bool:
    """Whether the start and rules produce ``local`` (exclusion rules applied)."""
    for value in _recurrence_ids(event, local, _Guarded()):
        return value == local
    return False


def instance_object(event: dict, recurrence_id: str) -> dict | None:
    """The instance ``recurrence_id`` as a JSCalendar object: the master with
    its override applied, ``recurrenceId``/``recurrenceIdTimeZone`` set, no
    rules and no overrides ([cal-5.7-syntheticGet]); None if the event has
    no such instance (not produced, or excluded)."""
    local = parse_local(recurrence_id)
    if local is None:
        return None
    key = format_local(local)
    overrides = event.get("recurrenceOverrides") or {}
    patch = overrides.get(key) if isinstance(overrides, dict) else None
    if isinstance(patch, dict):
        if patch.get("excluded") is True:
            return None
        return _patched_instance(event, key, patch)
    if not _is_recurring(event) or not _generates(event, local):
        return None
    return _bare_instance(event, key)


def recurrence_id_utc(event: dict, recurrence_id: str, *, floating_tz: str | None = None) -> datetime | None:
    """A recurrence id (an override key) as UTC, in the event's time zone
    (``floating_tz``, UTC by default, for a floating event): what
    CalendarEvent/get's recurrenceOverridesBefore/After compare
    ([cal-5.7-getArgs]).  None when either is invalid."""
    local = parse_local(recurrence_id)
    tz = zone(event["timeZone"]) if event.get("timeZone") is not None else _floating(floating_tz)
    if local is None or tz is None:
        return None
    return to_utc(local, tz)


def _diff(base: dict, new: dict, prefix: str, out: dict) -> None:
    for key in base.keys() | new.keys():
        path = prefix + _pointer_escape(key)
        if key not in new:
            out[path] = None
        elif key not in base:
            out[path] = new[key]
        elif base[key] != new[key]:
            if isinstance(base[key], dict) and isinstance(new[key], dict) and base[key] and new[key]:
                _diff(base[key], new[key], path + "/", out)
            else:
                out[path] = new[key]


def override_for_update(event: dict, recurrence_id: str, patch_or_object: dict) -> dict:
    """The ``recurrenceOverrides[recurrence_id]`` value to store when a client
    updates that one instance ([cal-5.9-synthetic]): only what differs from
    the master, as a PatchObject.

    ``patch_or_object`` is either a PatchObject relative to the instance as
    it is now (the usual CalendarEvent/set update on a synthetic id), or a
    whole instance object (told apart by its ``@type`` and the absence of
    ``/`` in its keys); properties an override may not change are dropped.
    ValueError for a recurrence id the event does not have, or a patch that
    does not apply."""
    local = parse_local(recurrence_id)
    if local is None:
        raise ValueError(f"not a LocalDateTime: {recurrence_id!r}")
    key = format_local(local)
    current = instance_object(event, key)
    if current is None:
        raise ValueError(f"no instance {key}")
    is_object = "@type" in patch_or_object and not any("/" in k for k in patch_or_object)
    if is_object:
        new = dict(patch_or_object)
    else:
        new = apply_patch(current, patch_or_object)
    base = _bare_instance(event, key)
    skip = IGNORED_IN_OVERRIDES | JMAP_ONLY | {"excluded"}
    base = {k: v for k, v in base.items() if k not in skip}
    new = {k: v for k, v in new.items() if k not in skip}
    out: dict = {}
    _diff(base, new, "", out)
    return dict(sorted(out.items()))
