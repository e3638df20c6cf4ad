"""``jmapcore import NAME file.ics`` and ``jmapcore export NAME --calendar-events out.ics``.

Events go in exactly as a client's would: each VEVENT series becomes a
JSCalendar Event (:mod:`jmap_calendars.ical`, the JSCalendar ↔ iCalendar
mapping draft), with its RECURRENCE-ID instances as recurrenceOverrides, and
``CalendarEvent/set`` creates them in batches of 100 through
:meth:`Core.api`, so the calendars plugin's validation, uid uniqueness and
indexes see nothing special.

Nothing stored is lost: the import only creates.  An event whose uid is
already in the account is skipped (and counted), never merged or replaced.
A batch refused as a whole is retried one event at a time; an event refused
for some of its properties is retried without the properties the server
named (never its uid, start or recurrence), and counted.

What the summary counts:

* **imported**: every event that became a CalendarEvent (of which recurring);
* **repaired** (imported all the same): an event read best effort, by reason
  (broken folding, lines not UTF-8, an unknown time zone, end before start,
  no END:VEVENT, ...);
* **skipped**: a VEVENT that could not be converted (an invalid RRULE, no
  DTSTART, ...) or that the server did not create, each with its reason;
* the file's own problems (VTODO/VJOURNAL not imported, text outside the calendar).
"""

from __future__ import annotations

import copy
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import msgspec

from jmapcore.api import Core
from jmapcore.auth import Principal
from jmapcore.wire import CORE

from .importer import ImportFailed, find_account
from .progress import Progress

CALENDARS = "urn:ietf:params:jmap:calendars"
BATCH = 100
LISTED = 20
#: Events asked for per CalendarEvent/get while exporting.
EXPORT_PAGE = 200
#: Properties an event is never imported without: then it is skipped instead.
ESSENTIAL = frozenset({"@type", "uid", "start", "calendarIds", "recurrenceRule", "recurrenceOverrides",
                       "timeZone", "duration", "showWithoutTime", "recurrenceId"})


def is_ical_file(path: Path) -> bool:
    """A .ics/.ical/.ifb file, or a file that starts with BEGIN:VCALENDAR."""
    if path.suffix.lower() in (".ics", ".ical", ".icalendar", ".ifb"):
        return True
    if not path.is_file():
        return False
    with path.open("rb") as handle:
        head = handle.read(64).lstrip(b"\xef\xbb\xbf\xff\xfe\r\n\t ").replace(b"\x00", b"")
    return head.upper().startswith(b"BEGIN:VCALENDAR")


class CalendarsApi:
    """JMAP calls in-process with the calendars capability."""

    def __init__(self, core: Core, principal: Principal, account_id: str) -> None:
        self.core, self.principal, self.account_id = core, principal, account_id

    def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        body = {"using": [CORE, CALENDARS], "methodCalls": [[name, {"accountId": self.account_id, **arguments}, "0"]]}
        result = self.core.api(self.principal, msgspec.json.encode(body))
        answer = msgspec.json.decode(result.body)
        if result.status != 200:
            raise ImportFailed(f"{name}: HTTP {result.status}: {answer.get('detail') or answer.get('type')}")
        response, args, _ = answer["methodResponses"][0]
        if response == "error":
            raise ImportFailed(f"{name}: {args.get('type')}: {args.get('description', '')}".rstrip(": "))
        return args


def _api(core: Core, name: str) -> CalendarsApi:
    if CALENDARS not in core.registry.plugins:
        raise ImportFailed(f"the calendars plugin ({CALENDARS}) is not installed")
    principal, account_id = find_account(core, name)
    return CalendarsApi(core, principal, account_id)


def find_calendar(api: CalendarsApi, name: str | None) -> tuple[str, str]:
    """The calendar called ``name`` (the default one when None): its id and name."""
    calendars = api.call("Calendar/get", {"properties": ["name", "isDefault"]})["list"]
    for calendar in calendars:
        if (name is None and calendar.get("isDefault")) or (name is not None and calendar["name"] == name):
            return calendar["id"], calendar["name"]
    if name is None and calendars:
        return calendars[0]["id"], calendars[0]["name"]
    raise ImportFailed(f"no calendar named {name!r}" if name else "the account has no calendar")


# -- import --------------------------------------------------------------------------------


@dataclass
class ICalSummary:
    source: str
    account: str
    calendar: str = ""
    read: int = 0
    imported: int = 0
    recurring: int = 0
    repaired: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    stripped: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    file_problems: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        return self.imported / self.elapsed if self.elapsed > 0 else 0.0

    def lines(self) -> list[str]:
        out = [
            f"imported {self.imported:,} of {self.read:,} events from {self.source} into {self.account} "
            f"(calendar {self.calendar}) in {self.elapsed:.1f} s ({self.rate:,.0f} events/s)",
            f"  imported:   {self.imported:,} ({self.recurring:,} recurring)",
            f"  repaired:   {self.repaired:,} (imported best effort)",
        ]
        out.extend(f"    {count:,} × {reason}" for reason, count in self.reasons.most_common())
        if self.stripped:
            out.append(f"  without properties the server refused: {len(self.stripped):,}")
            out.extend(f"    {label}: {what}" for label, what in self.stripped[:LISTED])
        out.append(f"  skipped:    {len(self.skipped):,}")
        out.extend(f"    {label}: {reason}" for label, reason in self.skipped[:LISTED])
        if len(self.skipped) > LISTED:
            out.append(f"    ... and {len(self.skipped) - LISTED:,} more")
        out.extend(f"  file: {problem}" for problem in self.file_problems)
        return out


def _reason(problem: str) -> str:
    """A problem without its detail (line numbers, names), to count events by reason."""
    return problem.split(": ", 1)[0]


def _without(event: dict[str, Any], paths: list[str]) -> dict[str, Any] | None:
    """``event`` without the JSON pointers ``paths``, or None when one is essential or absent."""
    out = copy.deepcopy(event)
    for path in paths:
        keys = [k.replace("~1", "/").replace("~0", "~") for k in path.strip("/").split("/")]
        if not keys or keys[0] in ESSENTIAL:
            return None
        target: Any = out
        for key in keys[:-1]:
            target = target.get(key) if isinstance(target, dict) else None
        if not isinstance(target, dict) or keys[-1] not in target:
            return None
        del target[keys[-1]]
    return out


class _EventImporter:
    def __init__(self, api: CalendarsApi, calendar_id: str, summary: ICalSummary) -> None:
        self.api, self.calendar_id, self.summary = api, calendar_id, summary
        self.pending: list[tuple[str, dict[str, Any], list[str]]] = []

    def add(self, label: str, event: dict[str, Any], problems: list[str]) -> None:
        self.pending.append((label, {**event, "calendarIds": {self.calendar_id: True}}, problems))
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        if not batch:
            return
        try:
            outcome = self._create([event for _, event, _ in batch])
        except ImportFailed:
            for one in batch:  # refused as a whole: one at a time, so only the culprit fails
                try:
                    self._record([one], self._create([one[1]]))
                except ImportFailed as ex:
                    self.summary.skipped.append((one[0], str(ex)))
            return
        self._record(batch, outcome)

    def _create(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        return self.api.call("CalendarEvent/set", {"create": {str(n): event for n, event in enumerate(events)}})

    def _record(self, batch: list[tuple[str, dict[str, Any], list[str]]], outcome: dict[str, Any]) -> None:
        created = outcome.get("created") or {}
        refused = outcome.get("notCreated") or {}
        for number, (label, event, problems) in enumerate(batch):
            key = str(number)
            if key in created:
                self._imported(event, problems)
                continue
            error = refused.get(key) or {"type": "missing from the response"}
            paths = error.get("properties") or []
            stripped = _without(event, paths) if error.get("type") == "invalidProperties" and paths else None
            if stripped is not None:
                retry = self.api.call("CalendarEvent/set", {"create": {"0": stripped}})
                if "0" in (retry.get("created") or {}):
                    self.summary.stripped.append((label, ", ".join(paths)))
                    self._imported(event, problems)
                    continue
                error = (retry.get("notCreated") or {}).get("0") or error
            self.summary.skipped.append((label, _describe(error, event)))

    def _imported(self, event: dict[str, Any], problems: list[str]) -> None:
        self.summary.imported += 1
        if event.get("recurrenceRule") or event.get("recurrenceOverrides"):
            self.summary.recurring += 1
        if problems:
            self.summary.repaired += 1
            self.summary.reasons.update({_reason(p) for p in problems})


def _describe(error: dict[str, Any], event: dict[str, Any]) -> str:
    properties = error.get("properties") or []
    if error.get("type") == "invalidProperties" and properties == ["uid"]:
        return f"an event with uid {event.get('uid')!r} is already in the account (not replaced)"
    text = str(error.get("type"))
    if properties:
        text += f" ({', '.join(properties)})"
    if error.get("description"):
        text += f": {error['description']}"
    return text


def import_icalendar(core: Core, name: str, path: Path, *, calendar: str | None = None,
                     progress_stream: TextIO | None = None, quiet: bool = False) -> ICalSummary:
    """Import the iCalendar file ``path`` into ``name``'s calendar ``calendar`` (default: the default one)."""
    from jmap_calendars.ical import read_icalendar

    api = _api(core, name)
    calendar_id, calendar_name = find_calendar(api, calendar)
    try:
        data = path.read_bytes()
    except OSError as ex:
        raise ImportFailed(f"cannot read {path}: {ex.strerror or ex}") from None
    summary = ICalSummary(source=str(path), account=name, calendar=calendar_name)
    started = time.monotonic()
    parsed = read_icalendar(data)
    summary.read = len(parsed.events)
    summary.file_problems = parsed.problems
    importer = _EventImporter(api, calendar_id, summary)
    progress = Progress(len(parsed.events), progress_stream or sys.stderr, enabled=not quiet, unit="events")
    for number, one in enumerate(parsed.events, 1):
        if one.event is None:
            summary.skipped.append((one.label, one.error or "unreadable"))
        else:
            importer.add(one.label, one.event, one.problems)
        progress.update(number)
    importer.flush()
    progress.finish(len(parsed.events))
    summary.elapsed = time.monotonic() - started
    return summary


# -- export --------------------------------------------------------------------------------


def _events(api: CalendarsApi, calendar_id: str | None) -> Iterator[dict[str, Any]]:
    position = 0
    query: dict[str, Any] = {"filter": {"inCalendar": calendar_id} if calendar_id else None,
                             "sort": [{"property": "start", "isAscending": True}]}
    while True:
        ids = api.call("CalendarEvent/query", {**query, "position": position, "limit": EXPORT_PAGE})["ids"]
        if not ids:
            return
        yield from api.call("CalendarEvent/get", {"ids": ids})["list"]
        position += len(ids)


def export_icalendar(core: Core, name: str, out: TextIO, *, calendar: str | None = None) -> int:
    """Write ``name``'s events (of calendar ``calendar``, or all) to ``out`` as one iCalendar file."""
    from jmap_calendars.ical import write_icalendar

    api = _api(core, name)
    calendar_id = find_calendar(api, calendar)[0] if calendar is not None else None
    events = list(_events(api, calendar_id))
    out.write(write_icalendar(events))
    return len(events)
