"""CalendarEvent (draft-ietf-jmap-calendars-27 §5): a JSCalendar Event in
calendars.

The type is described once for the standard methods; this module adds what
an Event needs beyond a flat record:

* **properties**: any valid JSCalendar property is a property (vendor ones
  included, kept as given); the whole event is checked by
  :func:`jmap_calendars.jscalendar.event_problems` and
  ``recurrence.validate_recurrence`` on every create and update, so a bad
  event fails with ``invalidProperties`` naming the paths;
* **server-maintained values** [cal-5.9-defaults] [cal-5.9-updated]
  [cal-5.9-sequence]: ``@type``, ``uid`` (a ``urn:uuid:``), ``created``,
  ``updated`` on every write of an origin event, ``sequence`` raised when a
  scheduling-relevant property changes, ``isOrigin``; ``utcStart``/``utcEnd``
  given on a write become ``start``/``duration`` [cal-5-utcStart];
* **uid uniqueness** [cal-1.4.1-uid] through the ``uid`` index;
* **time**: every event is indexed by its span in UTC (``utc_bounds`` of
  :mod:`jmap_calendars.recurrence`: the first instance's start, the last
  one's end, or "forever"), so ``after``/``before`` read only the events
  that can overlap the window; floating events are widened by 14 hours in
  the index and checked exactly in the query's ``timeZone``;
* **instances** [cal-5.5-recurrence]: ``expandRecurrences`` answers one id
  per instance (:func:`recurrence.instance_id`), which /get and /set accept
  [cal-5.7-syntheticGet] [cal-5.9-synthetic];
* **search**: the text of each written event (and of its overrides) goes to
  the search role with the batch; text filters start from its hits.
"""

from __future__ import annotations

import contextvars
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from jmapcore.context import CallContext
from jmapcore.datatype import Candidates, DataType, Filter, Property, Sort
from jmapcore.errors import MethodError, SetError
from jmapcore.patch import top_level
from jmapcore.standard.args import CopyArgs, GetArgs, QueryArgs, QueryChangesArgs, SetArgs
from jmapcore.standard.copy import copy_through_set
from jmapcore.standard.get import request_too_large
from jmapcore.standard.query import (
    MAX_QUERY_LIMIT,
    Comparator,
    make_query,
    parse_sort,
    sortable,
)
from jmapcore.standard.query_changes import make_query_changes
from jmapcore.standard.set import SetOutcome, run_set
from jmapcore.state import type_state
from jmapcore.storage import IndexSpec, Record, SearchDocument, Snapshot
from jmapcore.textsearch import parse_query, term_in, words
from jmapcore.wire import Id

from . import jscalendar
from .calendar import default_calendar_id, ensure_default_calendar
from .constants import (
    CALENDAR,
    CALENDAR_INDEX,
    CALENDARS,
    EVENT,
    FLOATING_SLACK,
    FOREVER,
    IDENTITY,
    MAX_EXPANDED_INSTANCES,
    MAX_EXPANDED_QUERY_SECONDS,
    SPAN_INDEX,
    UID_INDEX,
)
from .jscalendar import (
    event_problems,
    format_local,
    format_utc,
    parse_local,
    parse_utc,
    to_utc,
    zone,
)

try:  # written alongside this module; absent, events are treated as single
    from . import recurrence as _recurrence
except ImportError:  # pragma: no cover - only while recurrence.py is missing
    _recurrence = None  # type: ignore[assignment]


# -- recurrence ------------------------------------------------------------------


def is_recurring(event: Mapping[str, Any]) -> bool:
    return bool(
        event.get("recurrenceRule") or event.get("recurrenceRules") or event.get("recurrenceOverrides")
    )


@dataclass(frozen=True, slots=True)
class _Single:
    """The one instance of a non-recurring event (the recurrence module's
    ``Instance`` shape)."""

    recurrence_id: str
    utc_start: datetime
    utc_end: datetime
    event: dict[str, Any]


def utc_bounds(event: Mapping[str, Any], floating: Any = None) -> tuple[datetime, datetime | None] | None:
    """(UTC start of the first instance, UTC end of the last or None when it
    recurs forever); None when the event has no valid start."""
    if is_recurring(event) and _recurrence is not None:
        try:
            return _recurrence.utc_bounds(dict(event), floating_tz=getattr(floating, "key", None))
        except Exception:  # noqa: BLE001 - a stored event that cannot be expanded
            pass
    return jscalendar.event_utc_span(dict(event), floating)


def instances(event: dict[str, Any], after: datetime | None, before: datetime | None, limit: int) -> list[Any]:
    """The instances overlapping [after, before): the event itself when it does not recur."""
    if is_recurring(event) and _recurrence is not None:
        try:
            found = _recurrence.instances(event, after, before, limit)
        except Exception as ex:  # noqa: BLE001
            raise MethodError("cannotCalculateOccurrences", f"Cannot expand event {event.get('id')}: {ex}") from None
        return list(found)
    span = jscalendar.event_utc_span(event)
    if span is None:
        return []
    start, end = span
    if (before is not None and start >= before) or (after is not None and end <= after and not (end == start == after)):
        return []
    return [_Single(event.get("start", ""), start, end, event)]


def instance_id(event_id: str, recurrence_id: str) -> str:
    assert _recurrence is not None
    return _recurrence.instance_id(event_id, recurrence_id)


def parse_instance_id(text: str) -> tuple[str, str] | None:
    if _recurrence is None:
        return None
    return _recurrence.parse_instance_id(text)


# -- properties ----------------------------------------------------------------

_FREE = Property(Any)

#: The properties with a JMAP meaning or a default (the rest are free).
_FIXED: dict[str, Property] = {
    "id": Property(str, server_set=True, immutable=True),
    # [cal-5-props] true values, at least one calendar, existing calendars.
    "calendarIds": Property(dict[Id, Literal[True]], ref=CALENDAR),
    "@type": Property(str, default="Event"),
    "isDraft": Property(bool, default=False),
    "isOrigin": Property(bool, server_set=True),
    "baseEventId": Property(str | None, server_set=True),
    # [cal-5-utcStart] accepted on writes (converted), computed on /get.
    "utcStart": Property(str | None, default=None),
    "utcEnd": Property(str | None, default=None),
}

#: Never stored: computed by /get.
_COMPUTED = ("utcStart", "utcEnd", "baseEventId")


class EventProperties(Mapping[str, Property]):
    """Every valid JSCalendar property name is a property; iterating lists
    only the fixed ones, so absent optional properties stay absent."""

    def __getitem__(self, name: str) -> Property:
        fixed = _FIXED.get(name)
        if fixed is not None:
            return fixed
        if jscalendar.property_name_ok(name):
            return _FREE
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in _FIXED or jscalendar.property_name_ok(name))

    def __iter__(self) -> Iterator[str]:
        return iter(_FIXED)

    def __len__(self) -> int:
        return len(_FIXED)


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


#: [cal-5.9-sequence] changes to these do not raise ``sequence``.
_SEQUENCE_EXEMPT = frozenset(
    {"calendarIds", "isDraft", "updated", "created", "sequence", "keywords", "color", "freeBusyStatus",
     "useDefaultAlerts", "alerts", "isOrigin", "id"}
)


def _duration_text(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = "P" + (f"{days}D" if days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{secs}S" if secs else "")
    if clock or text == "P":
        text += "T" + (clock or "0S")
    return text


def _apply_utc(record: Record) -> list[str]:
    """[cal-5-utcStart] utcStart/utcEnd given on a write become start and
    duration in the event's time zone (Etc/UTC when it has none)."""
    bad: list[str] = []
    utc_start, utc_end = record.pop("utcStart", None), record.pop("utcEnd", None)
    if utc_start is None and utc_end is None:
        return bad
    if record.get("timeZone") is None:
        record["timeZone"] = "Etc/UTC"
    tz = zone(record["timeZone"])
    if tz is None:
        return ["timeZone"]
    if utc_start is not None:
        when = parse_utc(utc_start)
        if when is None:
            return ["utcStart"]
        record["start"] = format_local(when.astimezone(tz))
    if utc_end is not None:
        end = parse_utc(utc_end)
        begin = parse_local(record.get("start"))
        if end is None or begin is None:
            return ["utcEnd"]
        seconds = int((end - to_utc(begin, tz)).total_seconds())
        if seconds < 0:
            return ["utcEnd"]
        record["duration"] = _duration_text(seconds)
    return bad


def _bis_names(record: Record) -> None:
    """[jscal-A-decision] store the bis names: RFC 8984's ``recurrenceRules``
    holding one rule (and no ``excludedRecurrenceRules``) becomes
    ``recurrenceRule``; an empty list goes.  Several rules, or exclusion
    rules, have no bis spelling: they are kept as given (and expanded)."""
    rules = record.get("recurrenceRules")
    if isinstance(rules, list) and not rules:
        del record["recurrenceRules"]
    elif (
        isinstance(rules, list)
        and len(rules) == 1
        and "recurrenceRule" not in record
        and not record.get("excludedRecurrenceRules")
    ):
        record["recurrenceRule"] = record.pop("recurrenceRules")[0]
    if record.get("excludedRecurrenceRules") == []:
        del record["excludedRecurrenceRules"]


def _compute(ctx: CallContext, record: Record, old: Record | None) -> None:
    for name in [name for name, value in record.items() if value is None]:
        del record[name]  # [cal-5.9-nullOptional] null removes a property
    bad = _apply_utc(record)
    if bad:
        record["\0bad"] = bad
    for name in _COMPUTED:
        record.pop(name, None)
    _bis_names(record)
    now = now_utc()
    record["isOrigin"] = True  # refined by _finish_batch, which knows the identities
    if old is None:
        record.setdefault("uid", f"urn:uuid:{uuid.uuid4()}")
        record.setdefault("created", now)
        record["updated"] = now
        if record["created"] > now:
            record["created"] = now
        return
    record["updated"] = now
    changed = {k for k in set(record) | set(old) if record.get(k) != old.get(k)} - _SEQUENCE_EXEMPT
    if changed and record.get("sequence", 0) <= old.get("sequence", 0):
        record["sequence"] = old.get("sequence", 0) + 1


_JMAP_ONLY = ("id", "calendarIds", "isDraft", "isOrigin", "useDefaultAlerts", "baseEventId")


def _validate(ctx: CallContext, record: Record, old: Record | None) -> SetError | None:
    bad = record.pop("\0bad", None)
    if bad:
        return SetError.invalid_properties(bad, "utcStart/utcEnd cannot be converted to start/duration.")
    if not record.get("calendarIds"):
        return SetError.invalid_properties(["calendarIds"], "An event belongs to at least one calendar.")
    if old is not None and record.get("created") != old.get("created"):
        return SetError.invalid_properties(["created"], "created cannot change.")
    if old is not None and record.get("isDraft") and not old.get("isDraft"):
        return SetError.invalid_properties(["isDraft"], "isDraft can only be true at creation [cal-5-props].")
    problems = event_problems({k: v for k, v in record.items() if k not in _JMAP_ONLY})
    paths = [p.path for p in problems]
    if not paths and _recurrence is not None and is_recurring(record):
        try:
            paths = list(_recurrence.validate_recurrence(dict(record)))
        except Exception as ex:  # noqa: BLE001
            return SetError.invalid_properties(["recurrenceRule"], f"The recurrence cannot be expanded: {ex}.")
    if paths:
        detail = "; ".join(f"{p.path or '(event)'} {p.message}" for p in problems[:10]) if problems else ""
        return SetError.invalid_properties(paths, "Invalid event" + (f": {detail}." if detail else "."))
    return None


# -- text of an event, per filter --------------------------------------------------


def _with_overrides(record: Record) -> list[dict[str, Any]]:
    """The event, then each override patch (their values count for text filters)."""
    found = [record]
    for patch in (record.get("recurrenceOverrides") or {}).values():
        if isinstance(patch, dict):
            found.append({k: v for k, v in patch.items() if "/" not in k})
            for pointer, value in patch.items():
                if "/" in pointer and isinstance(value, dict | str):
                    prop, _, key = pointer.partition("/")
                    if "/" not in key:
                        found.append({prop: {key: value}})
    return found


def _strings(obj: Any, *fields: str) -> list[str]:
    if isinstance(obj, dict):
        return [obj[f] for f in fields if isinstance(obj.get(f), str)]
    return []


def _title(record: Record) -> list[str]:
    return [v for part in _with_overrides(record) for v in _strings(part, "title")]


def _description(record: Record) -> list[str]:
    return [v for part in _with_overrides(record) for v in _strings(part, "description")]


def _locations(record: Record) -> list[str]:
    found: list[str] = []
    for part in _with_overrides(record):
        for loc in (part.get("locations") or {}).values() if isinstance(part.get("locations"), dict) else ():
            found.extend(_strings(loc, "name", "description"))
        for loc in (part.get("virtualLocations") or {}).values() if isinstance(part.get("virtualLocations"), dict) else ():
            found.extend(_strings(loc, "name", "description", "uri"))
    return found


def _people(role: str | None) -> Callable[[Record], list[str]]:
    def text(record: Record) -> list[str]:
        found: list[str] = []
        for part in _with_overrides(record):
            participants = part.get("participants")
            if not isinstance(participants, dict):
                continue
            for p in participants.values():
                if not isinstance(p, dict):
                    continue
                roles = p.get("roles") or {"attendee": True}
                if role is None or (isinstance(roles, dict) and roles.get(role)):
                    found.extend(_strings(p, "name", "email", "calendarAddress"))
        return found

    return text


def _other(record: Record) -> list[str]:
    found: list[str] = []
    for part in _with_overrides(record):
        found.extend(k for k in (part.get("keywords") or {}) if isinstance(k, str)) if isinstance(part.get("keywords"), dict) else None
        found.extend(k for k in (part.get("categories") or {}) if isinstance(k, str)) if isinstance(part.get("categories"), dict) else None
    return found


#: Filter name -> (the search field that holds its text, the text itself).
#: The field names are those mail already uses (the search role has few
#: field slots per database): subject, body, contact, from, to.
TEXT_FILTERS: dict[str, tuple[str, Callable[[Record], list[str]]]] = {
    "title": ("subject", _title),
    "description": ("body", _description),
    "location": ("contact", _locations),
    "owner": ("from", _people("owner")),
    "attendee": ("to", _people("attendee")),
}


def search_document(record: Record) -> SearchDocument:
    """[cal-5.11.1-filter] the event's text (overrides included) for the search role."""
    fields = {field: "\n".join(text(record)) for field, text in TEXT_FILTERS.values()}
    others = _people(None)(record) + _other(record)
    fields["body"] = "\n".join([fields["body"], *others])
    return SearchDocument(EVENT, record["id"], fields)


def search_documents(snap: Snapshot) -> Iterator[SearchDocument]:
    """Every event's search document (``jmapcore reindex``)."""
    ids = list(snap.ids(EVENT))
    for start in range(0, len(ids), 256):
        for record in snap.get_many(EVENT, ids[start : start + 256]):
            if record is not None:
                yield search_document(record)


def _matches(query: str, texts: list[str]) -> bool:
    terms = parse_query(query)
    if not terms:
        return False
    value_words = [words(text) for text in texts]
    return all(any(term_in(words(term.text), not term.phrase, found) for found in value_words) for term in terms)


def _all_text(record: Record) -> list[str]:
    return [t for _, text in TEXT_FILTERS.values() for t in text(record)] + _people(None)(record) + _other(record)


def _text_filter(name: str) -> Filter:
    field, text = TEXT_FILTERS[name]

    def bind(snap: Snapshot, value: str) -> Callable[[Record], bool]:
        hits = snap.search(EVENT, field, value)
        return lambda record: record["id"] in hits and _matches(value, text(record))

    return Filter(str, bind=bind)


def _search_all(snap: Snapshot, value: str) -> Callable[[Record], bool]:
    hits = snap.search(EVENT, None, value)
    return lambda record: record["id"] in hits


# -- time filters ------------------------------------------------------------------

#: The ``timeZone`` argument of the CalendarEvent/query being answered.
_QUERY_ZONE: contextvars.ContextVar[Any] = contextvars.ContextVar("calendar_query_zone", default=None)


def _query_zone() -> Any:
    return _QUERY_ZONE.get() or UTC


def _window_bound(value: str) -> datetime:
    local = parse_local(value)
    if local is None:
        raise MethodError.invalid_arguments(f"{value!r} is not a LocalDateTime.")
    return local.replace(tzinfo=_query_zone(), fold=0).astimezone(UTC)


def _time_filter(after: bool) -> Filter:
    """[cal-5.11.1-filter] ``after``: the event ends after it; ``before``:
    it starts before it (any instance, for an unexpanded query)."""

    def bind(snap: Snapshot, value: str) -> Callable[[Record], bool]:
        bound = _window_bound(value)
        floating = _query_zone()

        def match(record: Record) -> bool:
            span = utc_bounds(record, floating if record.get("timeZone") is None else None)
            if span is None:
                return False
            start, end = span
            if after:
                return end is None or end > bound or (end == start == bound)
            return start < bound

        return match

    return Filter(str, bind=bind)


def _span_key(record: Record) -> list[tuple[float, float, bool]]:
    """(utcEnd, utcStart, floating): exact for events with a time zone,
    widened by 14 hours for floating ones."""
    span = utc_bounds(record)
    if span is None:
        return []
    start, end = span
    end_s = FOREVER if end is None else end.timestamp()
    start_s = start.timestamp()
    floating = record.get("timeZone") is None
    if floating:
        start_s, end_s = start_s - FLOATING_SLACK, min(FOREVER, end_s + FLOATING_SLACK)
    return [(end_s, start_s, floating)]


def _start_key(record: Record) -> float | None:
    span = utc_bounds(record)
    return None if span is None else span[0].timestamp()


def _seconds(value: Any) -> float | None:
    when = parse_utc(value) if isinstance(value, str) else None
    if when is None and isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None if when is None else when.timestamp()


# -- filters, sorts, indexes ---------------------------------------------------------

FILTERS: dict[str, Filter] = {
    # [cal-5.11.1-filter]
    "inCalendar": Filter(Id, match=lambda r, v: v in (r.get("calendarIds") or {})),
    "uid": Filter(str, match=lambda r, v: r.get("uid") == v),
    "after": _time_filter(True),
    "before": _time_filter(False),
    "text": Filter(str, bind=_search_all),
    **{name: _text_filter(name) for name in TEXT_FILTERS},
}

SORTS: dict[str, Sort] = {
    # [cal-5.11.2-sort]
    "start": Sort(_start_key, indexed=True),
    "uid": Sort(lambda r: r.get("uid"), indexed=True),
    "recurrenceId": Sort(lambda r: r.get("recurrenceId"), indexed=True),
    "created": Sort(lambda r: _seconds(r.get("created")), indexed=True),
    "updated": Sort(lambda r: _seconds(r.get("updated")), indexed=True),
}

INDEXES = (
    IndexSpec(EVENT, CALENDAR_INDEX, lambda r: [(c,) for c in r.get("calendarIds") or {}]),
    IndexSpec(EVENT, UID_INDEX, lambda r: [(r["uid"],)] if isinstance(r.get("uid"), str) else []),
    IndexSpec(EVENT, SPAN_INDEX, _span_key),
)


def _top_conditions(tree: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    if tree is None:
        return []
    if "operator" not in tree:
        return [tree]
    if tree.get("operator") != "AND":
        return []
    return [c for c in tree.get("conditions") or () if isinstance(c, dict) and "operator" not in c]


def _index_ids(snap: Snapshot, index: str, value: Any) -> set[str]:
    return {event_id for _, event_id in snap.scan_index(EVENT, index, (value,))}


def span_candidates(snap: Snapshot, after: datetime | None, before: datetime | None) -> tuple[set[str], set[str]]:
    """Events whose span overlaps [after, before), from the span index walked
    from the latest end down, stopping at the first end before ``after``:
    (events with a time zone: exact; floating events that may overlap)."""
    after_s = after.timestamp() if after is not None else None
    before_s = before.timestamp() if before is not None else None
    exact: set[str] = set()
    floating: set[str] = set()
    for key, event_id in snap.scan_index(EVENT, SPAN_INDEX, reverse=True):
        end_s, start_s = key[0], key[1]
        if not isinstance(end_s, int | float) or not isinstance(start_s, int | float):
            continue
        if after_s is not None and end_s < after_s:
            break
        if before_s is not None and start_s >= before_s:
            continue
        if len(key) > 2 and key[2] is False:
            if after_s is None or end_s > after_s or end_s == start_s == after_s:
                exact.add(event_id)
        else:
            floating.add(event_id)
    return exact, floating


MANY_CANDIDATES = 256


def _narrowed(snap: Snapshot, ids: set[str], comparators: Sequence[Any]) -> Candidates:
    if not comparators:
        return Candidates(sorted(ids), ordered=True)
    first = comparators[0]
    if len(ids) > MANY_CANDIDATES and len(comparators) == 1 and first.sort.indexed:
        walk = snap.scan_index(EVENT, f"sort:{first.name}", reverse=not first.ascending)
        return Candidates((event_id for _, event_id in walk if event_id in ids), ordered=True)
    return Candidates(ids, ordered=False)


def narrow(snap: Snapshot, conditions: list[Mapping[str, Any]]) -> set[str] | None:
    """Ids from indexes and the search role that a superset of the matches
    lies in, or None when no condition narrows."""
    found: set[str] | None = None

    def meet(ids: set[str]) -> None:
        nonlocal found
        found = ids if found is None else found & ids

    for condition in conditions:
        if isinstance(condition.get("uid"), str):
            meet(_index_ids(snap, UID_INDEX, condition["uid"]))
        if isinstance(condition.get("text"), str):
            meet(snap.search(EVENT, None, condition["text"]))
        for name, (field, _) in TEXT_FILTERS.items():
            if isinstance(condition.get(name), str):
                meet(snap.search(EVENT, field, condition[name]))
    for condition in conditions:
        after, before = condition.get("after"), condition.get("before")
        if isinstance(after, str) or isinstance(before, str):
            exact, floating = span_candidates(
                snap,
                _window_bound(after) if isinstance(after, str) else None,
                _window_bound(before) if isinstance(before, str) else None,
            )
            meet(exact | floating)
            break
    for condition in conditions:
        if isinstance(condition.get("inCalendar"), str) and found is None:
            meet(_index_ids(snap, CALENDAR_INDEX, condition["inCalendar"]))
    return found


def plan(snap: Snapshot, tree: Mapping[str, Any] | None, comparators: Sequence[Any]) -> Candidates | None:
    """Offer candidates from an index or the search role instead of a scan."""
    if tree is not None and "operator" not in tree and tree and set(tree) <= {"after", "before", "inCalendar"}:
        return _time_plan(snap, tree, comparators)
    found = narrow(snap, _top_conditions(tree))
    if found is None:
        return None
    return _narrowed(snap, found, comparators)


def _time_plan(snap: Snapshot, tree: Mapping[str, Any], comparators: Sequence[Any]) -> Candidates | None:
    """Exact matches of a window (and calendar) from the indexes alone: the
    span index is exact for events with a time zone; floating ones are read
    and checked in the query's time zone."""
    if set(tree) == {"inCalendar"}:
        if comparators:
            return None  # the standard /query walks the sort index
        walk = (event_id for _, event_id in snap.scan_index(EVENT, CALENDAR_INDEX, (tree["inCalendar"],)))
        return Candidates(walk, ordered=True, exact=True)
    for name in ("after", "before"):
        if name in tree and not isinstance(tree[name], str):
            return None
    after = _window_bound(tree["after"]) if "after" in tree else None
    before = _window_bound(tree["before"]) if "before" in tree else None
    exact, floating = span_candidates(snap, after, before)
    if floating:
        checks = [FILTERS[name].predicate(snap, tree[name]) for name in ("after", "before") if name in tree]
        records = snap.get_many(EVENT, sorted(floating))
        exact |= {r["id"] for r in records if r is not None and all(check(r) for check in checks)}
    if "inCalendar" in tree:
        exact &= _index_ids(snap, CALENDAR_INDEX, tree["inCalendar"])
    if not comparators:
        return Candidates(sorted(exact), ordered=True, exact=True)
    first = comparators[0]
    if len(comparators) == 1 and first.sort.indexed and first.sort.key is not None:
        walk = snap.scan_index(EVENT, f"sort:{first.name}", reverse=not first.ascending)
        return Candidates((event_id for _, event_id in walk if event_id in exact), ordered=True, exact=True)
    return Candidates(exact, ordered=False)


CalendarEvent = DataType(
    name=EVENT,
    capability=CALENDARS,
    properties=EventProperties(),
    methods=(),
    filters=FILTERS,
    sorts=SORTS,
    id_prefix="E",
    get_all=True,
    validate=_validate,
    compute=_compute,
    extra_indexes=INDEXES,
    plan=plan,
)


# -- /set ---------------------------------------------------------------------------------


def _identity_addresses(snap: Snapshot) -> set[str]:
    addresses = set()
    for record in snap.get_many(IDENTITY, list(snap.ids(IDENTITY))):
        if record is not None and isinstance(record.get("calendarAddress"), str):
            addresses.add(normalise_address(record["calendarAddress"]))
    return addresses


def normalise_address(uri: str) -> str:
    """[cal-3-matching] RFC 3986 §6.2.2 syntax normalisation (scheme and
    mailto: domain case, percent-encoding case)."""
    scheme, sep, rest = uri.partition(":")
    if not sep:
        return uri
    scheme = scheme.lower()
    if scheme == "mailto":
        local, at, domain = rest.rpartition("@")
        rest = f"{local}@{domain.lower()}" if at else rest
    return f"{scheme}:{rest}"


def _check_uids(snap: Snapshot, outcome: SetOutcome) -> None:
    """[cal-1.4.1-uid] two events of the account share a uid only if all of
    them have distinct non-null recurrenceIds (the state the call leaves)."""
    destroyed = {d.id for d in outcome.batch.destroys if d.type_name == EVENT}
    puts = [put for put in outcome.batch.puts if put.type_name == EVENT]
    written = {put.record["id"]: put.record for put in puts}
    failed: dict[str, SetError] = {}
    by_uid: dict[str, list[Record]] = {}
    for put in puts:
        uid = put.record.get("uid")
        if isinstance(uid, str):
            by_uid.setdefault(uid, []).append(put.record)
    for uid, records in by_uid.items():
        holders = _index_ids(snap, UID_INDEX, uid) - destroyed - set(written)
        others = [r for r in snap.get_many(EVENT, sorted(holders)) if r is not None]
        kept: list[Record] = list(others)
        for record in records:
            group = [*kept, record]
            rids = [r.get("recurrenceId") for r in group]
            if len(group) > 1 and (None in rids or len(set(rids)) != len(rids)):
                old = snap.get(EVENT, record["id"])
                if old is not None and old.get("uid") == uid and old.get("recurrenceId") == record.get("recurrenceId"):
                    kept.append(record)  # it held the uid already
                    continue
                failed[record["id"]] = SetError.invalid_properties(
                    ["uid"], "Another event in this account has that uid [cal-1.4.1-uid]."
                )
            else:
                kept.append(record)
    if failed:
        _fail(outcome, failed)


def _fail(outcome: SetOutcome, errors: dict[str, SetError]) -> None:
    outcome.batch.puts = [p for p in outcome.batch.puts if not (p.type_name == EVENT and p.record["id"] in errors)]
    for creation_id, record_id in list(outcome.created_ids.items()):
        if record_id in errors:
            del outcome.created_ids[creation_id]
            outcome.created.pop(creation_id, None)
            outcome.not_created[creation_id] = errors[record_id]
    for record_id in list(outcome.updated):
        if record_id in errors:
            del outcome.updated[record_id]
            outcome.not_updated[record_id] = errors[record_id]


def _finish_batch(ctx: CallContext, snap: Snapshot, outcome: SetOutcome, args: Any) -> None:
    """uid uniqueness, isOrigin, what the server set on updates, and the
    search documents of every event written."""
    _check_uids(snap, outcome)
    addresses: set[str] | None = None
    # [cal-5.9-updated] the client's own updated, kept on events that are not origin.
    given: dict[str, Any] = {}
    for creation_id, record_id in outcome.created_ids.items():
        given[record_id] = ((args.create or {}).get(creation_id) or {}).get("updated")
    for key, patch in (args.update or {}).items():
        if isinstance(patch, dict) and "updated" in patch:
            given[ctx.resolve_id(key) or key] = patch["updated"]
    for put in outcome.batch.puts:
        if put.type_name != EVENT:
            continue
        record = put.record
        organizer = record.get("organizerCalendarAddress")
        if isinstance(organizer, str):
            if addresses is None:
                addresses = _identity_addresses(snap)
            # [cal-5-props] origin iff no organizer or this account receives for it.
            record["isOrigin"] = normalise_address(organizer) in addresses
            if not record["isOrigin"]:
                old = None if put.created else snap.get(EVENT, record["id"])
                # [cal-5.9-updated] not origin: updated is not set by the server.
                kept = given.get(record["id"]) or (old or {}).get("updated")
                if isinstance(kept, str):
                    record["updated"] = kept
        outcome.batch.search.append(search_document(record))
        if record["id"] in outcome.updated:
            old = snap.get(EVENT, record["id"]) or {}
            outcome.updated[record["id"]] = {
                k: record.get(k) for k in ("updated", "sequence", "isOrigin") if record.get(k) != old.get(k)
            } or None
    for creation_id, record_id in outcome.created_ids.items():
        created = outcome.created.get(creation_id)
        record = next((p.record for p in outcome.batch.puts if p.record.get("id") == record_id), None)
        if created is not None and record is not None:
            created["isOrigin"] = record["isOrigin"]
            created["updated"] = record.get("updated")


def _fill_calendars(ctx: CallContext, account_id: str, create: dict[str, dict[str, Any]] | None) -> list[str]:
    """Creates without calendarIds go into the default calendar."""
    missing = [cid for cid, values in (create or {}).items() if "calendarIds" not in values]
    if not missing:
        return []
    with ctx.snapshot(account_id) as snap:
        calendar = default_calendar_id(snap)
    if calendar is None:
        return []
    for cid in missing:
        create[cid] = {**create[cid], "calendarIds": {calendar: True}}  # type: ignore[index]
    return missing


class EventSetArgs(SetArgs, kw_only=True):
    #: [cal-5.9-sendSchedulingMessages] accepted; no iTIP is sent yet.
    sendSchedulingMessages: bool = False


_UTC_CONFLICTS = (("utcStart", "start"), ("utcEnd", "duration"))


def _utc_conflicts(values: dict[str, Any], patch: bool) -> list[str]:
    """[cal-5-utcStart] utcStart with start, utcEnd with duration, or either in overrides."""
    names = {top_level(k) for k in values} if patch else set(values)
    bad = [utc for utc, local in _UTC_CONFLICTS if utc in names and local in names]
    for key, value in values.items():
        if top_level(key) == "recurrenceOverrides":
            patches = value.values() if isinstance(value, dict) and key == "recurrenceOverrides" else [value]
            for item in patches:
                if isinstance(item, dict) and ({"utcStart", "utcEnd"} & set(item)):
                    bad.append(key)
    return bad


@dataclass(slots=True)
class _InstanceWrites:
    """Writes on synthetic instance ids, turned into base-event patches."""

    #: instance id -> base id, for updates and destroys.
    updates: dict[str, str]
    destroys: dict[str, str]
    errors_update: dict[str, SetError]
    errors_destroy: dict[str, SetError]


def _rewrite_instances(ctx: CallContext, args: EventSetArgs) -> tuple[EventSetArgs, _InstanceWrites]:
    """[cal-5.9-synthetic] an update of an instance id patches the base
    event's override for it; a destroy excludes the instance."""
    writes = _InstanceWrites({}, {}, {}, {})
    update = dict(args.update or {})
    destroy = list(args.destroy or [])
    touched = [k for k in update if parse_instance_id(k)] + [k for k in destroy if parse_instance_id(k)]
    if not touched:
        return args, writes
    patches: dict[str, dict[str, Any]] = {}
    with ctx.snapshot(args.accountId) as snap:
        bases: dict[str, Record | None] = {}

        def base(event_id: str) -> Record | None:
            if event_id not in bases:
                bases[event_id] = snap.get(EVENT, event_id)
            return bases[event_id]

        for key in list(update):
            parsed = parse_instance_id(key)
            if parsed is None:
                continue
            patch = update.pop(key)
            event_id, rid = parsed
            event = base(event_id)
            if event is None or _recurrence.instance_object(event, rid) is None:  # type: ignore[union-attr]
                writes.errors_update[key] = SetError.not_found()
                continue
            try:
                override = _recurrence.override_for_update(event, rid, patch)  # type: ignore[union-attr]
            except (ValueError, KeyError, TypeError) as ex:
                writes.errors_update[key] = SetError.invalid_properties(list(patch), f"Cannot apply: {ex}.")
                continue
            patches.setdefault(event_id, {})[rid] = override
            writes.updates[key] = event_id
        for key in list(destroy):
            parsed = parse_instance_id(key)
            if parsed is None:
                continue
            destroy.remove(key)
            event_id, rid = parsed
            event = base(event_id)
            if event is None or _recurrence.instance_object(event, rid) is None:  # type: ignore[union-attr]
                writes.errors_destroy[key] = SetError.not_found()
                continue
            patches.setdefault(event_id, {})[rid] = {"excluded": True}
            writes.destroys[key] = event_id
    for event_id, entries in patches.items():
        # The whole map is written: the base may have no overrides yet.
        overrides = dict((bases[event_id] or {}).get("recurrenceOverrides") or {})
        overrides.update(entries)
        update[event_id] = {**update.get(event_id, {}), "recurrenceOverrides": overrides}
    rewritten = EventSetArgs(
        accountId=args.accountId,
        ifInState=args.ifInState,
        create=args.create,
        update=update or None,
        destroy=destroy or None,
        sendSchedulingMessages=args.sendSchedulingMessages,
    )
    return rewritten, writes


def _remap_instances(result: dict[str, Any], args: EventSetArgs, writes: _InstanceWrites) -> None:
    """Answer under the ids the client used."""
    updated = dict(result.get("updated") or {})
    not_updated = dict(result.get("notUpdated") or {})
    destroyed = list(result.get("destroyed") or [])
    not_destroyed = dict(result.get("notDestroyed") or {})
    direct = set(args.update or {})
    bases = set(writes.updates.values()) | set(writes.destroys.values())
    for key, event_id in writes.updates.items():
        if event_id in updated:
            updated[key] = None
        elif event_id in not_updated:
            not_updated[key] = not_updated[event_id]
    for key, event_id in writes.destroys.items():
        if event_id in updated:
            destroyed.append(key)
        elif event_id in not_updated:
            not_destroyed[key] = not_updated[event_id]
    for event_id in bases - direct:
        updated.pop(event_id, None)
        not_updated.pop(event_id, None)
    not_updated.update(writes.errors_update)
    not_destroyed.update(writes.errors_destroy)
    result["updated"] = updated or None
    result["notUpdated"] = not_updated or None
    result["destroyed"] = destroyed or None
    result["notDestroyed"] = not_destroyed or None


def event_set(ctx: CallContext, args: EventSetArgs) -> dict[str, Any]:
    """CalendarEvent/set: the standard /set plus the default calendar,
    uid uniqueness, search documents and synthetic instance ids."""
    ctx.account(args.accountId, CALENDARS, write=True)
    ensure_default_calendar(ctx, args.accountId)
    early_not_created: dict[str, SetError] = {}
    early_not_updated: dict[str, SetError] = {}
    if args.create:
        for cid, values in list(args.create.items()):
            bad = _utc_conflicts(values, patch=False)
            if "baseEventId" in values and values["baseEventId"] is None:
                values = {k: v for k, v in values.items() if k != "baseEventId"}
                args.create[cid] = values
            if bad:
                early_not_created[cid] = SetError.invalid_properties(bad, "utcStart/utcEnd conflict [cal-5-utcStart].")
                del args.create[cid]
    if args.update:
        for key, patch in list(args.update.items()):
            bad = _utc_conflicts(patch, patch=True)
            if bad:
                early_not_updated[key] = SetError.invalid_properties(bad, "utcStart/utcEnd conflict [cal-5-utcStart].")
                del args.update[key]
    filled = _fill_calendars(ctx, args.accountId, args.create)
    rewritten, writes = _rewrite_instances(ctx, args)
    result = run_set(ctx, CalendarEvent, rewritten, extend=_finish_batch)
    _remap_instances(result, args, writes)
    created = result.get("created") or {}
    for cid in filled:
        if cid in created:
            created[cid]["calendarIds"] = args.create[cid]["calendarIds"]  # type: ignore[index]
    for cid, values in (args.create or {}).items():
        if cid in created and ("utcStart" in values or "utcEnd" in values):
            record = created[cid]
            for name in ("start", "duration", "timeZone"):
                record.setdefault(name, None)
    if early_not_created:
        result["notCreated"] = {**(result.get("notCreated") or {}), **early_not_created}
    if early_not_updated:
        result["notUpdated"] = {**(result.get("notUpdated") or {}), **early_not_updated}
    return result


def event_copy(ctx: CallContext, args: CopyArgs) -> None:
    """[cal-5.10-copy] CalendarEvent/copy through CalendarEvent/set (validated,
    indexed, searchable there); without ``calendarIds`` the copy goes into
    the target's default calendar."""
    copy_through_set(
        ctx, args, type_name=EVENT, capability=CALENDARS, source_only=("calendarIds", "isOrigin"),
        set_method=event_set, set_args_type=EventSetArgs,
    )


# -- /get ----------------------------------------------------------------------------------


class EventGetArgs(GetArgs, kw_only=True):
    """[cal-5.7-getArgs]"""

    recurrenceOverridesBefore: str | None = None
    recurrenceOverridesAfter: str | None = None
    reduceParticipants: bool = False
    timeZone: str = "Etc/UTC"


#: [cal-5.7-defaultProps] always returned, whatever ``properties`` says.
_ALWAYS = ("id", "calendarIds", "isDraft", "isOrigin")


def _trim_overrides(event: dict[str, Any], after: datetime | None, before: datetime | None) -> None:
    overrides = event.get("recurrenceOverrides")
    if not isinstance(overrides, dict) or (after is None and before is None):
        return
    tz = zone(event.get("timeZone")) if event.get("timeZone") else None
    kept = {}
    for key, patch in overrides.items():
        local = parse_local(key)
        if local is None:
            continue
        when = to_utc(local, tz)
        if (after is None or when >= after) and (before is None or when < before):
            kept[key] = patch
    event["recurrenceOverrides"] = kept


def _reduce(event: dict[str, Any], addresses: set[str]) -> None:
    """[cal-5.7-getArgs] reduceParticipants: owners and the user's own only."""
    participants = event.get("participants")
    if not isinstance(participants, dict):
        return
    event["participants"] = {
        key: p
        for key, p in participants.items()
        if isinstance(p, dict)
        and ((p.get("roles") or {}).get("owner") or normalise_address(str(p.get("calendarAddress", ""))) in addresses)
    }


def _get_bounds(args: EventGetArgs) -> tuple[Any, datetime | None, datetime | None]:
    """Check the /get arguments; return (floating zone, overrides after, before)."""
    wants = set(args.properties or ())
    unknown = [p for p in args.properties or () if p not in CalendarEvent.properties]
    if unknown:
        raise MethodError.invalid_arguments(f"Unknown properties: {', '.join(unknown)}.")
    if wants & {"utcStart", "utcEnd"} and "recurrenceOverrides" in wants:
        raise MethodError.invalid_arguments(
            "utcStart/utcEnd cannot be asked for with recurrenceOverrides [cal-5.7-defaultProps]."
        )
    floating = _zone_arg(args.timeZone)
    bounds: list[datetime | None] = []
    for name in ("recurrenceOverridesAfter", "recurrenceOverridesBefore"):
        value = getattr(args, name)
        parsed = parse_utc(value) if value is not None else None
        if value is not None and parsed is None:
            raise MethodError.invalid_arguments(f"{name} must be a UTCDateTime.")
        bounds.append(parsed)
    return floating, bounds[0], bounds[1]


def _instance_view(base: Record | None, record_id: str, base_id: str, rid: str) -> dict[str, Any] | None:
    """[cal-5.7-syntheticGet] one instance: overrides resolved, start and
    recurrenceId set, rules and overrides null."""
    if base is None or _recurrence is None:
        return None
    event = _recurrence.instance_object(base, rid)
    if event is None:
        return None
    event = {**event, "id": record_id, "baseEventId": base_id, "recurrenceId": rid}
    for name in ("calendarIds", "isDraft", "isOrigin"):
        event[name] = base.get(name)
    for name in ("recurrenceRule", "recurrenceRules", "excludedRecurrenceRules", "recurrenceOverrides"):
        event[name] = None
    return event


def _shape(event: dict[str, Any], args: EventGetArgs, floating: Any, after: Any, before: Any, addresses: set[str]) -> dict[str, Any]:
    _trim_overrides(event, after, before)
    if args.reduceParticipants:
        _reduce(event, addresses)
    if {"utcStart", "utcEnd"} & set(args.properties or ()):
        span = jscalendar.event_utc_span(event, floating if event.get("timeZone") is None else None)
        if span is not None:
            event["utcStart"], event["utcEnd"] = format_utc(span[0]), format_utc(span[1])
    if args.properties is None:
        out = {k: v for k, v in event.items() if k not in ("utcStart", "utcEnd", "iCalendar")}
        if out.get("baseEventId") is None:
            out.pop("baseEventId", None)
        return out
    return {name: event.get(name) for name in dict.fromkeys([*_ALWAYS, *args.properties])}


def event_get(ctx: CallContext, args: EventGetArgs) -> dict[str, Any]:
    """CalendarEvent/get with the draft's arguments [cal-5.7-getArgs],
    computed utcStart/utcEnd and synthetic instance ids [cal-5.7-syntheticGet]."""
    ctx.account(args.accountId, CALENDARS)
    ensure_default_calendar(ctx, args.accountId)
    limit = ctx.limits.maxObjectsInGet
    if args.ids is not None and len(args.ids) > limit:
        raise request_too_large(limit, "ids")
    floating, after, before = _get_bounds(args)
    with ctx.snapshot(args.accountId) as snap:
        state = type_state(snap.epoch(), snap.type_modseq(EVENT))
        if args.ids is None:
            if snap.count(EVENT) > limit:
                raise request_too_large(limit, "records (ids: null)")
            wanted = list(snap.ids(EVENT))
        else:
            wanted = list(dict.fromkeys(args.ids))
        resolved = [ctx.resolve_id(record_id) for record_id in wanted]
        base_of = {r: p for r in resolved if r is not None and (p := parse_instance_id(r)) is not None}
        lookup = list(dict.fromkeys(base_of[r][0] if r in base_of else r for r in resolved if r is not None))
        records = dict(zip(lookup, snap.get_many(EVENT, lookup), strict=True))
        addresses = _identity_addresses(snap) if args.reduceParticipants else set()
    found: list[dict[str, Any]] = []
    not_found: list[str] = []
    for asked, record_id in zip(wanted, resolved, strict=True):
        event: dict[str, Any] | None = None
        if record_id is not None and record_id in base_of:
            base_id, rid = base_of[record_id]
            event = _instance_view(records.get(base_id), record_id, base_id, rid)
        elif record_id is not None and records.get(record_id) is not None:
            event = {**records[record_id], "baseEventId": None}  # type: ignore[dict-item]
        if event is None:
            not_found.append(asked)
        else:
            found.append(_shape(event, args, floating, after, before, addresses))
    return {"accountId": args.accountId, "state": state, "list": found, "notFound": not_found}


# -- /query ------------------------------------------------------------------------------------


class EventQueryArgs(QueryArgs, kw_only=True):
    """[cal-5.11-queryArgs]"""

    expandRecurrences: bool = False
    timeZone: str = "Etc/UTC"


class EventQueryChangesArgs(QueryChangesArgs, kw_only=True):
    expandRecurrences: bool = False
    timeZone: str = "Etc/UTC"


def _zone_arg(name: str) -> Any:
    tz = zone(name)
    if tz is None:
        raise MethodError.invalid_arguments(f"Unknown timeZone {name!r}.")
    return tz


def _expanded_window(tree: Any) -> tuple[str, str]:
    """[cal-5.11-expand] one FilterCondition with both after and before."""
    if not isinstance(tree, dict) or "operator" in tree:
        raise MethodError.invalid_arguments(
            "expandRecurrences needs a single FilterCondition (no operators) with after and before."
        )
    after, before = tree.get("after"), tree.get("before")
    if not isinstance(after, str) or not isinstance(before, str):
        raise MethodError.invalid_arguments("expandRecurrences needs both after and before in the filter.")
    return after, before


@dataclass(slots=True)
class _Hit:
    base: str
    #: The instance's recurrence id when the event recurs (its id is then synthetic).
    instance: str | None
    start: float
    uid: str
    recurrence_id: str | None
    created: float | None
    updated: float | None

    @property
    def id(self) -> str:
        return self.base if self.instance is None else instance_id(self.base, self.instance)


_TEXT_CONDITIONS = frozenset({"text", *TEXT_FILTERS})


def _record_matches(condition: Mapping[str, Any], base: Record) -> bool:
    """The conditions on the event itself (calendar, uid)."""
    if "inCalendar" in condition and condition["inCalendar"] not in (base.get("calendarIds") or {}):
        return False
    return "uid" not in condition or base.get("uid") == condition["uid"]


def _instance_matches(condition: Mapping[str, Any], inst_event: dict[str, Any]) -> bool:
    """The text conditions on one instance [cal-5.11.1-filter]."""
    view = {**inst_event, "recurrenceOverrides": None}
    if "text" in condition and not _matches(condition["text"], _all_text(view)):
        return False
    for name, (_, text) in TEXT_FILTERS.items():
        if name in condition and not _matches(condition[name], text(view)):
            return False
    return True


def _hits(snap: Snapshot, condition: Mapping[str, Any], after: datetime, before: datetime, tz: Any) -> list[_Hit]:
    """Every instance in [after, before) matching the condition."""
    candidates = sorted(narrow(snap, [condition]) or set())
    texts = bool(_TEXT_CONDITIONS & set(condition))
    hits: list[_Hit] = []
    slack = timedelta(seconds=FLOATING_SLACK)
    for first in range(0, len(candidates), 512):
        for record in snap.get_many(EVENT, candidates[first : first + 512]):
            if record is None or not _record_matches(condition, record):
                continue
            floating = record.get("timeZone") is None
            lo, hi = (after - slack, before + slack) if floating else (after, before)
            recurring = is_recurring(record)
            uid, created, updated = record.get("uid", ""), _seconds(record.get("created")), _seconds(record.get("updated"))
            for inst in instances(record, lo, hi, MAX_EXPANDED_INSTANCES):
                span = jscalendar.event_utc_span(inst.event, tz) if floating else (inst.utc_start, inst.utc_end)
                if span is None:
                    continue
                inst_start, inst_end = span
                if not (inst_start < before and (inst_end > after or inst_end == inst_start == after)):
                    continue
                if texts and not _instance_matches(condition, inst.event):
                    continue
                hits.append(
                    _Hit(
                        record["id"],
                        inst.recurrence_id if recurring else None,
                        inst_start.timestamp(),
                        uid,
                        inst.recurrence_id if recurring else record.get("recurrenceId"),
                        created,
                        updated,
                    )
                )
            if len(hits) > MAX_EXPANDED_INSTANCES:
                raise MethodError("cannotCalculateOccurrences", "Too many instances in the window [cal-9.3-dos].")
    return hits


def _expanded_hits(ctx: CallContext, snap: Snapshot, args: EventQueryArgs, tz: Any) -> list[_Hit]:
    """The instances of the window in the query's order (ties: by id)."""
    after_text, before_text = _expanded_window(args.filter)
    condition = args.filter or {}
    for name, value in condition.items():
        spec = FILTERS.get(name)
        if spec is None:
            raise MethodError("unsupportedFilter", f"CalendarEvent cannot be filtered by {name!r}.")
        if not isinstance(value, str):
            raise MethodError.invalid_arguments(f"filter.{name} must be a string.")
    after, before = _window_bound(after_text), _window_bound(before_text)
    if before <= after:
        return []
    if (before - after).total_seconds() > MAX_EXPANDED_QUERY_SECONDS:
        raise MethodError("expandDurationTooLarge", "The after→before window is longer than maxExpandedQueryDuration.")
    comparators = parse_sort(ctx, CalendarEvent, args.sort, snap)
    hits = _hits(snap, condition, after, before, tz)
    keys: dict[str, Callable[[_Hit], Any]] = {
        "start": lambda h: h.start,
        "uid": lambda h: h.uid,
        "recurrenceId": lambda h: h.recurrence_id,
        "created": lambda h: h.created,
        "updated": lambda h: h.updated,
    }
    order: list[Comparator] = comparators or []
    hits.sort(key=lambda h: (h.base, h.instance or ""), reverse=bool(order) and not order[0].ascending)
    if not order:
        hits.sort(key=lambda h: h.start)
    for comparator in reversed(order):
        key = keys[comparator.name]
        hits.sort(key=lambda h, key=key: sortable(key(h)), reverse=not comparator.ascending)
    return hits


def _page(hits: list[_Hit], args: QueryArgs, limit: int) -> tuple[int, list[str]]:
    if args.anchor is not None:
        ids = [h.id for h in hits]
        try:
            position = max(0, ids.index(args.anchor) + args.anchorOffset)
        except ValueError:
            raise MethodError("anchorNotFound", "The anchor is not in the results.") from None
        return position, ids[position : position + limit]
    position = args.position if args.position >= 0 else max(0, len(hits) + args.position)
    return position, [h.id for h in hits[position : position + limit]]


def event_query(ctx: CallContext, args: EventQueryArgs) -> dict[str, Any]:
    """CalendarEvent/query: the standard /query with the ``timeZone`` of
    after/before, or the instances of a window with ``expandRecurrences``
    [cal-5.11-expand]."""
    ctx.account(args.accountId, CALENDARS)
    ensure_default_calendar(ctx, args.accountId)
    tz = _zone_arg(args.timeZone)
    token = _QUERY_ZONE.set(tz)
    try:
        if not args.expandRecurrences:
            return _plain_query(ctx, args)
        limit = MAX_QUERY_LIMIT if args.limit is None else min(args.limit, MAX_QUERY_LIMIT)
        with ctx.snapshot(args.accountId) as snap:
            query_state = type_state(snap.epoch(), snap.type_modseq(EVENT))
            hits = _expanded_hits(ctx, snap, args, tz)
        position, page = _page(hits, args, limit)
        result: dict[str, Any] = {
            "accountId": args.accountId,
            "queryState": query_state,
            "canCalculateChanges": False,
            "position": position,
            "ids": page,
        }
        if args.calculateTotal:
            result["total"] = len(hits)
        if args.limit is None or args.limit > MAX_QUERY_LIMIT:
            result["limit"] = limit
        return result
    finally:
        _QUERY_ZONE.reset(token)


_plain_query = make_query(CalendarEvent)
_plain_query_changes = make_query_changes(CalendarEvent)


def event_query_changes(ctx: CallContext, args: EventQueryChangesArgs) -> dict[str, Any]:
    """CalendarEvent/queryChanges [cal-5.12-queryChanges]; expanded queries
    cannot be followed (their ids are not records)."""
    ctx.account(args.accountId, CALENDARS)
    if args.expandRecurrences:
        raise MethodError("cannotCalculateChanges", "Expanded queries cannot calculate changes; query again.")
    token = _QUERY_ZONE.set(_zone_arg(args.timeZone))
    try:
        return _plain_query_changes(ctx, args)
    finally:
        _QUERY_ZONE.reset(token)


__all__ = [
    "CalendarEvent",
    "EventGetArgs",
    "EventQueryArgs",
    "EventQueryChangesArgs",
    "EventSetArgs",
    "event_copy",
    "event_get",
    "event_query",
    "event_query_changes",
    "event_set",
    "search_document",
    "search_documents",
]
