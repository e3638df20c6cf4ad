"""Calendars (draft-ietf-jmap-calendars-27) in-process on LMDB: one calendar
of 5,000 events, 10% of them weekly.

A fresh data directory (LMDB, the FTS search role) gets ``--events``
generated events (seeded) through CalendarEvent/set in batches of
``--batch``: single events spread over two years (2026-2027, Europe/Berlin,
30 min to 2 h), and ``--recurring`` (10%) weekly ones starting in 2025 or
2026 that never end, half of them with a moved and an excluded instance.
The import rate is reported.  Then, through ``Core.api`` (request bytes in,
response bytes out), p50/p99 over ``--iterations`` of:

* CalendarEvent/query over one year with ``expandRecurrences: true``
  (every instance of 2026 in the calendar, sorted by start; the page is
  capped at 10,000 ids, all are computed and sorted);
* the same for one week and one month (what a calendar view asks);
* an unexpanded query of one week (one id per event), and a text query;
* CalendarEvent/get of 500 of a week's instances (synthetic ids, the most
  one /get takes) with utcStart.

Prints one table.  Run: python benchmarks/bench_calendars.py [--events 5000] [--iterations 30]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
from _common import machine, table

CALENDARS = "urn:ietf:params:jmap:calendars"
USING = ["urn:ietf:params:jmap:core", CALENDARS]
WORDS = ["standup", "review", "lunch", "dentist", "planning", "retro", "call", "workshop", "gym", "dinner",
         "train", "flight", "interview", "budget", "demo", "yoga", "piano", "doctor", "haircut", "party"]  # fmt: skip


def make_event(rng: random.Random, recurring: bool) -> dict[str, Any]:
    if recurring:
        start = datetime(2025, 1, 6, 8) + timedelta(days=rng.randrange(0, 540), hours=rng.randrange(0, 10))
    else:
        start = datetime(2026, 1, 1, 7) + timedelta(days=rng.randrange(0, 730), hours=rng.randrange(0, 12),
                                                    minutes=rng.choice([0, 15, 30, 45]))
    values: dict[str, Any] = {
        "title": f"{rng.choice(WORDS).capitalize()} {rng.choice(WORDS)}",
        "start": start.strftime("%Y-%m-%dT%H:%M:%S"),
        "duration": rng.choice(["PT30M", "PT1H", "PT1H30M", "PT2H"]),
        "timeZone": "Europe/Berlin",
        "description": " ".join(rng.choice(WORDS) for _ in range(6)),
    }
    if recurring:
        values["recurrenceRule"] = {"@type": "RecurrenceRule", "frequency": "weekly"}
        if rng.random() < 0.5:
            moved = start + timedelta(weeks=rng.randrange(2, 40))
            excluded = moved + timedelta(weeks=1)
            values["recurrenceOverrides"] = {
                moved.strftime("%Y-%m-%dT%H:%M:%S"): {"start": (moved + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")},
                excluded.strftime("%Y-%m-%dT%H:%M:%S"): {"excluded": True},
            }
    return values


class Bench:
    def __init__(self, data: Path) -> None:
        from jmapcore.accounts import add_account, principal_for
        from jmapserver.config import Settings
        from jmapserver.wiring import build_core, check_data_dir

        settings = Settings(data=data, backend="lmdb")
        check_data_dir(settings, create=True)
        self.core = build_core(settings)
        self.account = add_account(self.core, "bench", "bench-pw").account_id
        self.principal = principal_for(self.core, "bench")

    def request(self, calls: list[list[Any]]) -> list[Any]:
        body = msgspec.json.encode({"using": USING, "methodCalls": calls})
        result = self.core.api(self.principal, body, "application/json")
        responses = msgspec.json.decode(result.body)["methodResponses"]
        for name, args, _ in responses:
            if name == "error":
                raise RuntimeError(args)
        return responses

    def call(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        return self.request([[name, {"accountId": self.account, **args}, "0"]])[0][1]


def timed(action: Callable[[], Any], iterations: int) -> tuple[float, float]:
    action()  # warm
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def window(first: datetime, days: int) -> dict[str, str]:
    return {"after": first.strftime("%Y-%m-%dT%H:%M:%S"), "before": (first + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--recurring", type=float, default=0.10, help="share of weekly events")
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--iterations", type=int, default=30)
    options = parser.parse_args()
    rng = random.Random(1)
    n_recurring = int(options.events * options.recurring)
    events = [make_event(rng, n < n_recurring) for n in range(options.events)]
    rng.shuffle(events)
    with tempfile.TemporaryDirectory(prefix="bench-calendars-") as tmp:
        bench = Bench(Path(tmp) / "data")
        start = time.perf_counter()
        for first in range(0, len(events), options.batch):
            chunk = {f"e{n}": e for n, e in enumerate(events[first : first + options.batch], first)}
            result = bench.call("CalendarEvent/set", {"create": chunk})
            if result["notCreated"]:
                raise RuntimeError(result["notCreated"])
        imported = time.perf_counter() - start
        del events, chunk, result
        gc.collect()
        pick = random.Random(2)
        by_start = [{"property": "start"}]
        tz = {"timeZone": "Europe/Berlin"}

        def expanded(days: int, first: datetime | None = None) -> Callable[[], Any]:
            def run() -> Any:
                when = first or datetime(2026, 1, 1) + timedelta(days=pick.randrange(0, 330))
                return bench.call("CalendarEvent/query", {"filter": window(when, days), "expandRecurrences": True,
                                                          "sort": by_start, **tz})
            return run

        year = bench.call("CalendarEvent/query", {"filter": window(datetime(2026, 1, 1), 365), "expandRecurrences": True,
                                                  "sort": by_start, "calculateTotal": True, **tz})
        week_ids = bench.call("CalendarEvent/query", {"filter": window(datetime(2026, 6, 1), 7),
                                                      "expandRecurrences": True, **tz})["ids"][:500]
        words = iter(WORDS * 1000)
        workloads: list[tuple[str, Callable[[], Any]]] = [
            (f"query 2026 (one year), expandRecurrences, by start ({year['total']:,} instances, page of "
             f"{len(year['ids']):,})", expanded(365, datetime(2026, 1, 1))),
            ("query one month, expandRecurrences, by start", expanded(30)),
            ("query one week, expandRecurrences, by start", expanded(7)),
            ("query one week, not expanded (one id per event)",
             lambda: bench.call("CalendarEvent/query", {"filter": window(datetime(2026, 1, 1) + timedelta(days=pick.randrange(0, 330)), 7),
                                                        "sort": by_start, **tz})),
            ("query title (a word), not expanded, first 50",
             lambda: bench.call("CalendarEvent/query", {"filter": {"title": next(words)}, "limit": 50})),
            (f"get {len(week_ids)} of a week's instances (synthetic ids) with utcStart",
             lambda: bench.call("CalendarEvent/get", {"ids": week_ids, "properties": ["title", "start", "utcStart"]})),
        ]
        rows = []
        for name, action in workloads:
            p50, p99 = timed(action, options.iterations)
            rows.append([name, f"{p50:.1f}", f"{p99:.1f}"])
        bench.core.backend.close()
    print(f"# Calendars on LMDB: {options.events} events in one calendar, {n_recurring} weekly; {machine()}")
    print(f"import through CalendarEvent/set (batches of {options.batch}): "
          f"{options.events / imported:,.0f} events/s ({imported:.1f} s)")
    print(table(["workload", "p50 ms", "p99 ms"], rows))


if __name__ == "__main__":
    sys.exit(main())
