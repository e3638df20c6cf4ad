"""iCalendar import rate: ``jmapcore import NAME events.ics`` on LMDB, through the real CLI.

Generates ``--events`` VEVENT series (seeded; one VCALENDAR as calendar
programs export them, with a VTIMEZONE per zone used): each with UID,
DTSTAMP, DTSTART/DTEND in one of four IANA zones (one in twenty all-day),
SUMMARY, DESCRIPTION, LOCATION, an ORGANIZER and two or three ATTENDEEs with
PARTSTAT, CATEGORIES and a VALARM; 10% recur weekly (RRULE with COUNT, an
EXDATE, and a RECURRENCE-ID instance moved by two hours).  It makes a fresh
data directory with ``jmapcore account add`` and times:

* parsing alone (``jmap_calendars.ical.read_icalendar``, in-process):
  icalendar's content-line grammar plus the JSCalendar mapping;
* ``jmapcore import`` as a user runs it (a new process: start-up, opening
  LMDB, parsing, CalendarEvent/set in batches of 100 with validation, uid
  checks and indexes), wall clock, and the rate the command's own summary
  reports (the import without start-up);
* ``jmapcore export --calendar-events`` of the same events (query, get, iCalendar).

Prints one table.  Run: python benchmarks/bench_ical.py [--events 1000,4000]
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from _common import ROOT, machine, table

sys.path.insert(0, str(ROOT / "plugins"))

from jmap_calendars.ical import read_icalendar  # noqa: E402

ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Europe/London"]
TOPICS = ["Standup", "Planning", "Review", "1:1", "Lunch", "Design sync", "Retro", "Interview",
          "Dentist", "Budget", "Onboarding", "Demo", "Café with Zoë", "Réunion d'équipe"]
PEOPLE = ["ada", "grace", "alan", "edsger", "barbara", "donald", "frances", "john", "margaret", "dennis"]
PARTSTAT = ["ACCEPTED", "TENTATIVE", "NEEDS-ACTION", "DECLINED"]


def make_event(rng: random.Random, n: int) -> list[str]:
    zone = rng.choice(ZONES)
    start = datetime(2025, 1, 1, 8) + timedelta(days=rng.randint(0, 364), hours=rng.randint(0, 9),
                                                 minutes=rng.choice((0, 15, 30, 45)))
    end = start + timedelta(minutes=rng.choice((30, 45, 60, 90)))
    uid = f"{n:08d}-bench@example.com"
    organizer = rng.choice(PEOPLE)
    lines = ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20250101T000000Z"]
    if n % 20 == 7:
        lines += [f"DTSTART;VALUE=DATE:{start:%Y%m%d}", f"DTEND;VALUE=DATE:{start + timedelta(days=1):%Y%m%d}"]
    else:
        lines += [f"DTSTART;TZID={zone}:{start:%Y%m%dT%H%M%S}", f"DTEND;TZID={zone}:{end:%Y%m%dT%H%M%S}"]
    lines += [
        f"SUMMARY:{rng.choice(TOPICS)} #{n}",
        f"DESCRIPTION:Agenda for meeting {n}:\\n1. notes\\n2. actions\\, owners",
        f"LOCATION:Room {rng.randint(1, 40)}",
        f"ORGANIZER;CN={organizer.capitalize()}:mailto:{organizer}@example.com",
    ]
    for person in rng.sample(PEOPLE, rng.randint(2, 3)):
        lines.append(f"ATTENDEE;CN={person.capitalize()};ROLE=REQ-PARTICIPANT;PARTSTAT={rng.choice(PARTSTAT)};"
                     f"RSVP=TRUE:mailto:{person}@example.com")
    lines += ["CATEGORIES:work,bench", "BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:Reminder",
              "TRIGGER:-PT15M", "END:VALARM"]
    recurring = n % 10 == 3 and n % 20 != 7
    if recurring:
        lines += ["RRULE:FREQ=WEEKLY;COUNT=20",
                  f"EXDATE;TZID={zone}:{start + timedelta(weeks=2):%Y%m%dT%H%M%S}"]
    lines.append("END:VEVENT")
    if recurring:
        moved = start + timedelta(weeks=3)
        lines += ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20250101T000000Z",
                  f"RECURRENCE-ID;TZID={zone}:{moved:%Y%m%dT%H%M%S}",
                  f"DTSTART;TZID={zone}:{moved + timedelta(hours=2):%Y%m%dT%H%M%S}",
                  f"DTEND;TZID={zone}:{moved + timedelta(hours=2) + (end - start):%Y%m%dT%H%M%S}",
                  f"SUMMARY:{rng.choice(TOPICS)} #{n} (moved)",
                  f"ORGANIZER;CN={organizer.capitalize()}:mailto:{organizer}@example.com",
                  "END:VEVENT"]
    return lines


def make_file(count: int) -> str:
    import icalendar

    rng = random.Random(count)
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//bench//EN"]
    for zone in ZONES:
        lines += icalendar.Timezone.from_tzid(zone).to_ical().decode().splitlines()
    for n in range(count):
        lines += make_event(rng, n)
    lines.append("END:VCALENDAR")
    return "".join(line + "\r\n" for line in lines)


def jmapcore(*argv: str) -> tuple[float, str]:
    env_path = [str(ROOT), str(ROOT / "backends"), str(ROOT / "plugins")]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "jmapserver.cli", *argv], capture_output=True, text=True, check=True,
        env={"PYTHONPATH": ":".join(env_path), "PATH": "/usr/bin:/bin"},
    )
    return time.perf_counter() - started, done.stdout


def run(count: int, work: Path) -> list[object]:
    source = work / f"events-{count}.ics"
    source.write_text(make_file(count), encoding="utf-8")
    started = time.perf_counter()
    parsed = read_icalendar(source.read_bytes())
    parse_seconds = time.perf_counter() - started
    assert len(parsed.events) == count and all(p.event is not None and not p.problems for p in parsed.events)
    recurring = sum(1 for p in parsed.events if p.event.get("recurrenceRule"))

    data = work / f"data-{count}"
    jmapcore("account", "add", "alice", "--password", "pw", "--data", str(data))
    wall, output = jmapcore("import", "alice", str(source), "--data", str(data), "--quiet")
    imported = int(re.search(r"imported ([\d,]+) of", output).group(1).replace(",", ""))
    reported = float(re.search(r"\(([\d,]+) events/s\)", output).group(1).replace(",", ""))
    assert imported == count, output
    out = work / f"out-{count}.ics"
    export_wall, _ = jmapcore("export", "alice", "--calendar-events", str(out), "--data", str(data))
    assert out.read_text(encoding="utf-8").count("BEGIN:VEVENT") == count + recurring
    return [
        f"{count:,} ({recurring:,} recurring)",
        f"{source.stat().st_size / 1e6:.1f} MB",
        f"{count / parse_seconds:,.0f}",
        f"{count / wall:,.0f} ({wall:.1f} s)",
        f"{reported:,.0f}",
        f"{count / export_wall:,.0f} ({export_wall:.1f} s)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", default="1000,4000", help="comma-separated event counts")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ical-") as tmp:
        for count in (int(c) for c in args.events.split(",")):
            rows.append(run(count, Path(tmp)))
    print(f"iCalendar import through the CLI on LMDB ({machine()})\n")
    print(table(
        ["events", "file", "parse only (events/s)", "jmapcore import, wall (events/s)",
         "import as its summary reports (events/s)", "jmapcore export, wall (events/s)"],
        rows,
    ))


if __name__ == "__main__":
    main()
