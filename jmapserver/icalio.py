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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from jmapcore.api import Core

from .setimport import (
    LISTED,
    JmapApi,
    Parsed,
    SetImporter,
    SetImportSummary,
    api_for,
    find_collection,
    import_file,
    query_all,
    starts_like,
)

CALENDARS = "urn:ietf:params:jmap:calendars"
#: Properties an event is never imported without: then it is skipped instead.
ESSENTIAL = frozenset({"@type", "uid", "start", "calendarIds", "recurrenceRule", "recurrenceOverrides",
                       "timeZone", "duration", "showWithoutTime", "recurrenceId"})


def is_ical_file(path: Path) -> bool:
    """A .ics/.ical/.ifb file, or a file that starts with BEGIN:VCALENDAR."""
    return starts_like(path, (".ics", ".ical", ".icalendar", ".ifb"), b"BEGIN:VCALENDAR")


def _api(core: Core, name: str) -> JmapApi:
    return api_for(core, name, CALENDARS, "calendars")


def find_calendar(api: JmapApi, name: str | None) -> tuple[str, str]:
    """The calendar called ``name`` (the default one when None): its id and name."""
    return find_collection(api, "Calendar", name, "calendar")


# -- import --------------------------------------------------------------------------------


@dataclass
class ICalSummary(SetImportSummary):
    calendar: str = ""
    recurring: int = 0
    stripped: list[tuple[str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = self.head_lines("events", f"calendar {self.calendar}", f" ({self.recurring:,} recurring)")
        if self.stripped:
            out.append(f"  without properties the server refused: {len(self.stripped):,}")
            out.extend(f"    {label}: {what}" for label, what in self.stripped[:LISTED])
        return out + self.tail_lines()


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


class _EventImporter(SetImporter):
    """CalendarEvent/set; an event refused for some of its properties is created
    without them (never without an essential one), and recurring ones are counted."""

    type_name = "CalendarEvent"
    collection_property = "calendarIds"
    noun = "an event"
    summary: ICalSummary

    def rescue(self, label: str, event: dict[str, Any], problems: list[str],
               error: dict[str, Any]) -> dict[str, Any] | None:
        paths = error.get("properties") or []
        stripped = _without(event, paths) if error.get("type") == "invalidProperties" and paths else None
        if stripped is None:
            return error
        refusal = self.create_one(stripped)
        if refusal is None:
            self.summary.stripped.append((label, ", ".join(paths)))
            self.imported(event, problems)
            return None
        return refusal or error

    def imported(self, event: dict[str, Any], problems: list[str]) -> None:
        super().imported(event, problems)
        if event.get("recurrenceRule") or event.get("recurrenceOverrides"):
            self.summary.recurring += 1


def import_icalendar(core: Core, name: str, path: Path, *, calendar: str | None = None,
                     progress_stream: TextIO | None = None, quiet: bool = False) -> ICalSummary:
    """Import the iCalendar file ``path`` into ``name``'s calendar ``calendar`` (default: the default one)."""
    from jmap_calendars.ical import read_icalendar

    def read(data: bytes) -> tuple[list[Parsed], list[str]]:
        parsed = read_icalendar(data)
        return [(one.label, one.event, one.problems, one.error) for one in parsed.events], parsed.problems

    api = _api(core, name)
    calendar_id, calendar_name = find_calendar(api, calendar)
    summary = ICalSummary(source=str(path), account=name, calendar=calendar_name)
    import_file(_EventImporter(api, calendar_id, summary), path, read, "events", progress_stream, quiet)
    return summary


# -- export --------------------------------------------------------------------------------


def _events(api: JmapApi, calendar_id: str | None) -> Iterator[dict[str, Any]]:
    return query_all(api, "CalendarEvent", {"inCalendar": calendar_id} if calendar_id else None, "start")


def export_icalendar(core: Core, name: str, out: TextIO, *, calendar: str | None = None) -> int:
    """Write ``name``'s events (of calendar ``calendar``, or all) to ``out`` as one iCalendar file."""
    from jmap_calendars.ical import write_icalendar

    api = _api(core, name)
    calendar_id = find_calendar(api, calendar)[0] if calendar is not None else None
    events = list(_events(api, calendar_id))
    out.write(write_icalendar(events))
    return len(events)
