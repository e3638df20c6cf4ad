"""Recurrence of JSCalendar events (plugins/jmap_calendars/recurrence.py):
rules, exclusions, overrides, DST, floating events, windows, synthetic ids.

The module is loaded from its file so that these tests do not depend on the
rest of the calendars package."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dateutil import rrule as du

_PATH = Path(__file__).resolve().parent.parent / "plugins" / "jmap_calendars" / "recurrence.py"
_SPEC = importlib.util.spec_from_file_location("_jmap_calendars_recurrence_under_test", _PATH)
rec = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = rec
_SPEC.loader.exec_module(rec)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def event(start: str, *rules: dict, tz: str | None = "Etc/UTC", duration: str = "PT1H", **extra) -> dict:
    obj = {"@type": "Event", "uid": "u1", "title": "t", "start": start, "duration": duration}
    if tz is not None:
        obj["timeZone"] = tz
    if rules:
        obj["recurrenceRules"] = [{"@type": "RecurrenceRule", **rule} for rule in rules]
    obj.update(extra)
    return obj


def rids(ev: dict, after=None, before=None, limit: int = 1000, **kw) -> list[str]:
    return [inst.recurrence_id for inst in rec.instances(ev, after, before, limit, **kw)]


# -- rules ----------------------------------------------------------------


def test_daily_count_interval():
    """[jscal-4.3.3-rrule] frequency, interval, count."""
    ev = event("2024-01-30T10:00:00", {"frequency": "daily", "interval": 2, "count": 4})
    assert rids(ev) == ["2024-01-30T10:00:00", "2024-02-01T10:00:00",
                        "2024-02-03T10:00:00", "2024-02-05T10:00:00"]
    first, last = rec.utc_bounds(ev)
    assert first == utc(2024, 1, 30, 10) and last == utc(2024, 2, 5, 11)


def test_weekly_byday_until_inclusive():
    """[jscal-4.3.3-rrule] byDay and until (a LocalDateTime, inclusive)."""
    ev = event("2024-01-01T09:00:00",
               {"frequency": "weekly", "byDay": [{"@type": "NDay", "day": "mo"}, {"day": "we"}],
                "until": "2024-01-10T09:00:00"})
    assert rids(ev) == ["2024-01-01T09:00:00", "2024-01-03T09:00:00",
                        "2024-01-08T09:00:00", "2024-01-10T09:00:00"]


def test_weekly_interval_and_first_day_of_week():
    """[jscal-4.3.3-rrule] firstDayOfWeek changes which weeks an interval-2
    rule lands on (RFC 5545 WKST example)."""
    base = {"frequency": "weekly", "interval": 2, "count": 4, "byDay": [{"day": "tu"}, {"day": "su"}]}
    monday = event("1997-08-05T09:00:00", base)
    sunday = event("1997-08-05T09:00:00", {**base, "firstDayOfWeek": "su"})
    assert rids(monday) == ["1997-08-05T09:00:00", "1997-08-10T09:00:00",
                            "1997-08-19T09:00:00", "1997-08-24T09:00:00"]
    assert rids(sunday) == ["1997-08-05T09:00:00", "1997-08-17T09:00:00",
                            "1997-08-19T09:00:00", "1997-08-31T09:00:00"]


def test_monthly_nth_weekday_and_last_day():
    """[jscal-4.3.3-rrule] byDay with nthOfPeriod; negative byMonthDay."""
    second_tuesday = event("2024-01-09T18:00:00", {"frequency": "monthly", "count": 3,
                                                   "byDay": [{"day": "tu", "nthOfPeriod": 2}]})
    assert rids(second_tuesday) == ["2024-01-09T18:00:00", "2024-02-13T18:00:00", "2024-03-12T18:00:00"]
    last_friday = event("2024-01-26T18:00:00", {"frequency": "monthly", "count": 3,
                                                "byDay": [{"day": "fr", "nthOfPeriod": -1}]})
    assert rids(last_friday) == ["2024-01-26T18:00:00", "2024-02-23T18:00:00", "2024-03-29T18:00:00"]
    last_day = event("2024-01-31T08:00:00", {"frequency": "monthly", "count": 3, "byMonthDay": [-1]})
    assert rids(last_day) == ["2024-01-31T08:00:00", "2024-02-29T08:00:00", "2024-03-31T08:00:00"]


def test_monthly_on_the_31st_omits_short_months():
    """[jscal-4.3.3-rrule] skip defaults to omit: invalid dates are skipped."""
    ev = event("2024-01-31T08:00:00", {"frequency": "monthly", "count": 3})
    assert rids(ev) == ["2024-01-31T08:00:00", "2024-03-31T08:00:00", "2024-05-31T08:00:00"]


def test_yearly_by_month_and_set_position():
    """[jscal-4.3.3-rrule] byMonth strings, bySetPosition: the last weekday
    of March and of September."""
    ev = event("2024-03-29T12:00:00", {
        "frequency": "yearly", "byMonth": ["3", "9"], "count": 4, "bySetPosition": [-1],
        "byDay": [{"day": d} for d in ("mo", "tu", "we", "th", "fr")]})
    # Yearly with bySetPosition picks one per year: the last weekday of the
    # months set, i.e. of September.
    assert rids(ev) == ["2024-03-29T12:00:00", "2024-09-30T12:00:00",
                        "2025-09-30T12:00:00", "2026-09-30T12:00:00"]


def test_yearly_birthday_feb_29():
    """[jscal-4.3.3.1-expansion] implicit byMonth/byMonthDay from the start:
    29 February recurs only in leap years."""
    ev = event("2024-02-29T00:00:00", {"frequency": "yearly", "count": 3}, duration="P1D")
    assert rids(ev) == ["2024-02-29T00:00:00", "2028-02-29T00:00:00", "2032-02-29T00:00:00"]


def test_start_not_matching_rule_is_first_and_counted():
    """[jscal-4.3.3.1-expansion] the start is always the first occurrence
    and counts towards count, even when the rule would not produce it."""
    # 2024-01-02 is a Tuesday; the rule is Mondays.
    ev = event("2024-01-02T09:00:00", {"frequency": "weekly", "byDay": [{"day": "mo"}], "count": 3})
    assert rids(ev) == ["2024-01-02T09:00:00", "2024-01-08T09:00:00", "2024-01-15T09:00:00"]
    one = event("2024-01-02T09:00:00", {"frequency": "weekly", "byDay": [{"day": "mo"}], "count": 1})
    assert rids(one) == ["2024-01-02T09:00:00"]


def test_bis_single_recurrence_rule():
    """[jscal-A-obsolete] the bis ``recurrenceRule`` is read as well as
    RFC 8984's ``recurrenceRules``."""
    ev = event("2024-01-01T09:00:00")
    ev["recurrenceRule"] = {"@type": "RecurrenceRule", "frequency": "daily", "count": 2}
    assert rids(ev) == ["2024-01-01T09:00:00", "2024-01-02T09:00:00"]
    assert rec.validate_recurrence(ev) == []


def test_two_rules_union_without_duplicates():
    """[jscal-4.3-recurrence] several recurrenceRules: the union of their
    occurrences, each once."""
    ev = event("2024-01-01T09:00:00", {"frequency": "weekly", "count": 3},
               {"frequency": "daily", "interval": 7, "count": 2, "byHour": [9, 17]})
    assert rids(ev) == ["2024-01-01T09:00:00", "2024-01-01T17:00:00",
                        "2024-01-08T09:00:00", "2024-01-15T09:00:00"]


def test_excluded_recurrence_rules():
    """[jscal-4.3-recurrence] excludedRecurrenceRules remove what they match."""
    ev = event("2024-01-01T09:00:00", {"frequency": "daily", "count": 10})
    ev["excludedRecurrenceRules"] = [{"@type": "RecurrenceRule", "frequency": "weekly",
                                      "byDay": [{"day": "sa"}, {"day": "su"}]}]
    assert rids(ev) == [f"2024-01-{d:02d}T09:00:00" for d in (1, 2, 3, 4, 5, 8, 9, 10)]


def test_hourly_rule_matches_dateutil_from_the_start():
    """[jscal-4.3.3.1-expansion] a windowed expansion far from the start
    gives exactly what expanding from the start gives."""
    ev = event("2020-01-01T00:17:00", {"frequency": "hourly", "interval": 5, "byMinute": [17, 47]},
               duration="PT10M")
    window = (utc(2023, 6, 1), utc(2023, 6, 3))
    got = rids(ev, *window)
    expected = [
        d.strftime("%Y-%m-%dT%H:%M:%S")
        for d in du.rrule(du.HOURLY, dtstart=datetime(2020, 1, 1, 0, 17), interval=5, byminute=[17, 47])
        .between(datetime(2023, 5, 31, 23, 51), datetime(2023, 6, 3), inc=False)
    ]
    assert got == expected and len(got) == 20


@pytest.mark.parametrize("rule", [
    {"frequency": "daily", "interval": 3},
    {"frequency": "weekly", "interval": 3, "byDay": [{"day": "tu"}, {"day": "sa"}], "firstDayOfWeek": "su"},
    {"frequency": "monthly", "interval": 5, "byDay": [{"day": "fr", "nthOfPeriod": -2}]},
    {"frequency": "monthly", "interval": 2},
    {"frequency": "yearly", "interval": 2, "byWeekNo": [20], "byDay": [{"day": "th"}]},
    {"frequency": "yearly", "byYearDay": [100, -1], "bySetPosition": [1]},
    {"frequency": "weekly", "interval": 2, "bySetPosition": [-1], "byDay": [{"day": "mo"}, {"day": "fr"}]},
])
def test_windowed_expansion_equals_full_expansion(rule):
    """[jscal-4.3.3.1-expansion] [cal-9.3-dos] skipping ahead to the window
    changes nothing: same occurrences as a walk from the start."""
    ev = event("2001-03-14T07:30:00", rule, tz="Europe/Berlin", duration="PT30M")
    after, before = utc(2029, 1, 1, 12), utc(2030, 12, 30, 12)
    full = rec.instances(ev, None, utc(2031, 1, 1), 100_000)
    inside = [i.recurrence_id for i in full if i.utc_end > after and i.utc_start < before]
    assert inside
    assert rids(ev, after, before, 100_000) == inside


# -- overrides ------------------------------------------------------------


def weekly_with_overrides() -> dict:
    ev = event("2024-01-01T09:00:00", {"frequency": "weekly", "count": 4}, tz="Europe/Berlin")
    ev["recurrenceOverrides"] = {
        "2024-01-08T09:00:00": {"excluded": True},
        "2024-01-15T09:00:00": {"start": "2024-01-16T14:00:00", "title": "moved"},
        "2024-01-20T11:00:00": {"title": "extra"},
        "2024-01-22T09:00:00": {"participants/p1/participationStatus": "declined"},
    }
    ev["participants"] = {"p1": {"@type": "Participant", "name": "A", "participationStatus": "accepted"}}
    return ev


def test_overrides_moved_excluded_added():
    """[jscal-4.3-recurrence] an excluded instance disappears, a patch may
    move the start, a key the rule does not produce adds an instance."""
    ev = weekly_with_overrides()
    found = rec.instances(ev, None, None, 100)
    assert [i.recurrence_id for i in found] == [
        "2024-01-01T09:00:00", "2024-01-15T09:00:00", "2024-01-20T11:00:00", "2024-01-22T09:00:00"]
    moved = found[1]
    assert moved.utc_start == utc(2024, 1, 16, 13) and moved.utc_end == utc(2024, 1, 16, 14)
    assert moved.event["title"] == "moved" and moved.event["recurrenceId"] == "2024-01-15T09:00:00"
    assert found[2].event["title"] == "extra" and found[2].utc_start == utc(2024, 1, 20, 10)
    assert found[3].event["participants"]["p1"]["participationStatus"] == "declined"
    # The master is untouched by patches of its instances.
    assert ev["participants"]["p1"]["participationStatus"] == "accepted"


def test_moved_instance_found_by_its_new_time():
    """[cal-5.11.1-filter] an instance matches the window by its own
    (overridden) time, not by its recurrence id."""
    ev = weekly_with_overrides()
    assert rids(ev, utc(2024, 1, 16), utc(2024, 1, 17)) == ["2024-01-15T09:00:00"]
    assert rids(ev, utc(2024, 1, 15), utc(2024, 1, 16)) == []


def test_override_moved_before_the_start_orders_first():
    """[jscal-4.3-recurrence] instances come in UTC start order."""
    ev = event("2024-01-10T09:00:00", {"frequency": "daily", "count": 3})
    ev["recurrenceOverrides"] = {"2024-01-12T09:00:00": {"start": "2024-01-01T09:00:00"}}
    assert rids(ev) == ["2024-01-12T09:00:00", "2024-01-10T09:00:00", "2024-01-11T09:00:00"]
    assert rec.utc_bounds(ev) == (utc(2024, 1, 1, 9), utc(2024, 1, 11, 10))


def test_ignored_override_properties():
    """[jscal-4.3-recurrence] patches of uid, recurrenceRules, @type... in an
    override are ignored."""
    ev = event("2024-01-01T09:00:00", {"frequency": "daily", "count": 2})
    ev["recurrenceOverrides"] = {"2024-01-02T09:00:00": {"uid": "other", "title": "kept",
                                                         "recurrenceRules": None}}
    obj = rec.instance_object(ev, "2024-01-02T09:00:00")
    assert obj["uid"] == "u1" and obj["title"] == "kept"


def test_override_only_event_without_rule():
    """[jscal-4.3-recurrence] overrides without a rule: the start plus the
    added instances (RDATEs)."""
    ev = event("2024-01-01T09:00:00")
    ev["recurrenceOverrides"] = {"2024-02-01T09:00:00": {}, "2024-03-01T09:00:00": {"duration": "PT2H"}}
    found = rec.instances(ev, None, None, 10)
    assert [i.recurrence_id for i in found] == [
        "2024-01-01T09:00:00", "2024-02-01T09:00:00", "2024-03-01T09:00:00"]
    assert found[2].utc_end - found[2].utc_start == timedelta(hours=2)
    assert rec.utc_bounds(ev) == (utc(2024, 1, 1, 9), utc(2024, 3, 1, 11))


# -- time zones and DST ---------------------------------------------------


def test_weekly_berlin_keeps_local_time_across_dst():
    """[jscal-1.4-types] [jscal-4.6-timeZone] 09:00 Europe/Berlin stays 09:00
    local: 08:00Z in winter, 07:00Z in summer."""
    ev = event("2024-03-25T09:00:00", {"frequency": "weekly", "count": 3}, tz="Europe/Berlin")
    found = rec.instances(ev, None, None, 10)
    assert [i.utc_start for i in found] == [utc(2024, 3, 25, 8), utc(2024, 4, 1, 7), utc(2024, 4, 8, 7)]
    assert all(i.recurrence_id.endswith("T09:00:00") for i in found)


def test_spring_forward_gap_uses_offset_before_transition():
    """[jscal-1.4-types] 02:30 does not exist on 2024-03-31 in Berlin: the
    offset before the transition (+01:00) applies, i.e. 01:30Z."""
    ev = event("2024-03-30T02:30:00", {"frequency": "daily", "count": 3}, tz="Europe/Berlin")
    starts = [i.utc_start for i in rec.instances(ev, None, None, 10)]
    assert starts == [utc(2024, 3, 30, 1, 30), utc(2024, 3, 31, 1, 30), utc(2024, 4, 1, 0, 30)]
    ny = event("2024-03-09T02:30:00", {"frequency": "daily", "count": 2}, tz="America/New_York")
    assert [i.utc_start for i in rec.instances(ny, None, None, 10)] == [
        utc(2024, 3, 9, 7, 30), utc(2024, 3, 10, 7, 30)]


def test_fall_back_overlap_uses_first_occurrence():
    """[jscal-1.4-types] 01:30 happens twice on 2024-11-03 in New York: the
    offset before the transition (EDT, -04:00) applies."""
    ev = event("2024-11-02T01:30:00", {"frequency": "daily", "count": 3}, tz="America/New_York",
               duration="PT30M")
    found = rec.instances(ev, None, None, 10)
    assert [i.utc_start for i in found] == [utc(2024, 11, 2, 5, 30), utc(2024, 11, 3, 5, 30),
                                            utc(2024, 11, 4, 6, 30)]
    berlin = event("2024-10-27T02:30:00", tz="Europe/Berlin")
    assert rec.utc_bounds(berlin)[0] == utc(2024, 10, 27, 0, 30)


def test_duration_days_local_hours_absolute():
    """[jscal-1.4-types] a Duration's days are added in local time, its
    hours in absolute time: P1D over the spring change lasts 23 hours,
    PT24H lasts 24."""
    day = event("2024-03-30T12:00:00", tz="Europe/Berlin", duration="P1D")
    start, end = rec.utc_bounds(day)
    assert end - start == timedelta(hours=23)
    hours = event("2024-03-30T12:00:00", tz="Europe/Berlin", duration="PT24H")
    start, end = rec.utc_bounds(hours)
    assert end - start == timedelta(hours=24)


def test_floating_event_is_read_as_utc_by_default():
    """[jscal-4.6-timeZone] [cal-5.7-getArgs] a floating event (timeZone
    null) is placed in UTC unless another zone is given."""
    ev = event("2024-06-01T09:00:00", {"frequency": "daily", "count": 2}, tz=None)
    assert [i.utc_start for i in rec.instances(ev, None, None, 5)] == [utc(2024, 6, 1, 9), utc(2024, 6, 2, 9)]
    tokyo = rec.instances(ev, None, None, 5, floating_tz="Asia/Tokyo")
    assert tokyo[0].utc_start == utc(2024, 6, 1, 0)
    assert rec.utc_bounds(ev) == (utc(2024, 6, 1, 9), utc(2024, 6, 2, 10))
    obj = rec.instance_object(ev, "2024-06-02T09:00:00")
    assert obj["recurrenceIdTimeZone"] is None and "timeZone" not in obj


def test_hourly_rule_across_the_gap_stays_sorted():
    """[jscal-1.4-types] local times in the gap map before the transition;
    the instances still come in UTC order."""
    ev = event("2024-03-31T00:30:00", {"frequency": "hourly", "count": 5}, tz="Europe/Berlin",
               duration="PT15M")
    found = rec.instances(ev, None, None, 10)
    starts = [i.utc_start for i in found]
    assert starts == sorted(starts)
    assert [i.recurrence_id[11:16] for i in found] == ["00:30", "01:30", "02:30", "03:30", "04:30"]


# -- windows and limits ---------------------------------------------------


def test_infinite_rule_window_and_limit():
    """[cal-5.11-expand] an endless rule is expanded only inside the window
    and up to the limit; utc_bounds has no end."""
    ev = event("2000-01-03T09:00:00", {"frequency": "daily"}, tz="America/New_York")
    assert rec.utc_bounds(ev) == (utc(2000, 1, 3, 14), None)
    window = rids(ev, utc(2040, 1, 1), utc(2040, 1, 8))
    assert window == [f"2040-01-{d:02d}T09:00:00" for d in range(1, 8)]
    assert rids(ev, utc(2040, 1, 1), None, limit=3) == window[:3]
    assert rids(ev, None, None, limit=2) == ["2000-01-03T09:00:00", "2000-01-04T09:00:00"]
    assert rids(ev, None, None, limit=0) == []


def test_window_is_half_open_and_uses_end():
    """[cal-5.11.1-filter] an instance matches when it ends after ``after``
    and starts before ``before``."""
    ev = event("2024-01-01T09:00:00", {"frequency": "daily", "count": 3})
    assert rids(ev, utc(2024, 1, 2, 10), utc(2024, 1, 3, 9)) == []
    assert rids(ev, utc(2024, 1, 2, 9, 59), utc(2024, 1, 3, 9, 1)) == [
        "2024-01-02T09:00:00", "2024-01-03T09:00:00"]
    zero = event("2024-01-01T09:00:00", {"frequency": "daily", "count": 3}, duration="PT0S")
    assert rids(zero, utc(2024, 1, 2, 9), utc(2024, 1, 3, 9)) == ["2024-01-02T09:00:00"]


def test_non_recurring_event_is_one_instance():
    """[jscal-5.1-event] start and start + duration."""
    ev = event("2024-05-05T10:00:00", tz="Europe/Berlin", duration="PT1H30M")
    assert rec.utc_bounds(ev) == (utc(2024, 5, 5, 8), utc(2024, 5, 5, 9, 30))
    assert rids(ev) == ["2024-05-05T10:00:00"]
    assert rids(ev, utc(2024, 5, 5, 9, 30), None) == []
    assert rec.instance_object(ev, "2024-05-05T10:00:00") is None


def test_rule_that_never_matches_is_bounded():
    """[cal-9.3-dos] a rule that never produces an occurrence (30 February)
    does not run away: only the start is an instance."""
    ev = event("2024-01-30T09:00:00", {"frequency": "yearly", "byMonth": ["2"], "byMonthDay": [30]})
    assert rids(ev, None, None, 10) == ["2024-01-30T09:00:00"]
    daily = event("2024-01-30T09:00:00", {"frequency": "daily", "byMonth": ["2"], "byMonthDay": [31]})
    assert rids(daily, utc(2030, 1, 1), utc(2031, 1, 1), 10) == []


def test_too_much_work_is_refused():
    """[cal-5.11-errors] [cal-9.3-dos] a count-bounded secondly rule whose
    window lies past the work bound: cannotCalculateOccurrences."""
    ev = event("2024-01-01T00:00:00", {"frequency": "secondly", "count": 10_000_000}, duration="PT0S")
    with pytest.raises(rec.CannotCalculateOccurrences):
        rec.instances(ev, utc(2024, 6, 1), utc(2024, 6, 2), 10)


# -- validation ---------------------------------------------------------


@pytest.mark.parametrize("rule, path", [
    ({"frequency": "fortnightly"}, "recurrenceRules/0/frequency"),
    ({}, "recurrenceRules/0/frequency"),
    ({"frequency": "weekly", "byDay": [{"day": "xx"}]}, "recurrenceRules/0/byDay/0/day"),
    ({"frequency": "weekly", "byDay": [{"day": "mo", "nthOfPeriod": 1}]}, "recurrenceRules/0/byDay/0/nthOfPeriod"),
    ({"frequency": "monthly", "byDay": [{"day": "mo", "nthOfPeriod": 0}]}, "recurrenceRules/0/byDay/0/nthOfPeriod"),
    ({"frequency": "monthly", "byDay": "mo"}, "recurrenceRules/0/byDay"),
    ({"frequency": "daily", "count": 3, "until": "2024-02-01T00:00:00"}, "recurrenceRules/0/until"),
    ({"frequency": "daily", "until": "2024-02-01"}, "recurrenceRules/0/until"),
    ({"frequency": "daily", "until": "2024-02-01T00:00:00Z"}, "recurrenceRules/0/until"),
    ({"frequency": "daily", "count": 0}, "recurrenceRules/0/count"),
    ({"frequency": "daily", "interval": 0}, "recurrenceRules/0/interval"),
    ({"frequency": "daily", "interval": True}, "recurrenceRules/0/interval"),
    ({"frequency": "monthly", "byMonthDay": [0, 5]}, "recurrenceRules/0/byMonthDay/0"),
    ({"frequency": "yearly", "byMonth": ["13"]}, "recurrenceRules/0/byMonth/0"),
    ({"frequency": "yearly", "byMonth": ["2L"]}, "recurrenceRules/0/byMonth/0"),
    ({"frequency": "daily", "byHour": [24]}, "recurrenceRules/0/byHour/0"),
    ({"frequency": "monthly", "byWeekNo": [3]}, "recurrenceRules/0/byWeekNo"),
    ({"frequency": "daily", "rscale": "hebrew"}, "recurrenceRules/0/rscale"),
    ({"frequency": "daily", "firstDayOfWeek": "monday"}, "recurrenceRules/0/firstDayOfWeek"),
    ({"@type": "Rule", "frequency": "daily"}, "recurrenceRules/0/@type"),
])
def test_invalid_rules_name_their_path(rule, path):
    """[jscal-4.3.3-rrule] bad rules are reported by JSON pointer path."""
    ev = event("2024-01-01T09:00:00")
    ev["recurrenceRules"] = [rule]
    assert path in rec.validate_recurrence(ev)


def test_invalid_event_level_input():
    """[jscal-4.3-recurrence] [jscal-4.6-timeZone] override keys, time zones,
    instances that carry rules, bis recurrenceRule and exclusions."""
    ev = event("2024-01-01T09:00:00", {"frequency": "daily"}, tz="Mars/Olympus_Mons")
    ev["recurrenceOverrides"] = {
        "2024-13-01T00:00:00": {},
        "2024-01-02T09:00:00": {"start": "tomorrow", "excluded": "yes"},
        "2024-01-03T09:00:00": {"utcStart": "2024-01-03T08:00:00Z", "isDraft": True},
        "2024-01-04T09:00:00": "x",
        "a/b": {},
    }
    ev["excludedRecurrenceRules"] = [{"frequency": "never"}]
    ev["recurrenceRule"] = {"frequency": "daily", "skip": "sideways"}
    errors = rec.validate_recurrence(ev)
    for path in ("timeZone", "recurrenceOverrides/2024-13-01T00:00:00",
                 "recurrenceOverrides/2024-01-02T09:00:00/start",
                 "recurrenceOverrides/2024-01-02T09:00:00/excluded",
                 "recurrenceOverrides/2024-01-03T09:00:00/utcStart",
                 "recurrenceOverrides/2024-01-03T09:00:00/isDraft",
                 "recurrenceOverrides/2024-01-04T09:00:00", "recurrenceOverrides/a~1b",
                 "excludedRecurrenceRules/0/frequency", "recurrenceRule/skip"):
        assert path in errors, path
    assert rec.validate_recurrence(event("2024-01-01", duration="1H")) == ["start", "duration"]
    instance = event("2024-01-01T09:00:00", {"frequency": "daily"}, recurrenceId="2024-01-01T09:00:00")
    assert "recurrenceRules" in rec.validate_recurrence(instance)
    assert rec.validate_recurrence(weekly_with_overrides()) == []


# -- synthetic ids and instances -------------------------------------------


@pytest.mark.parametrize("event_id", ["e1", "Abc-_x", "a" * 239])
def test_instance_id_round_trip(event_id):
    """[cal-5.11-expand] [cal-5.5-recurrence] synthetic ids are valid JMAP
    Ids and give back the base id and the recurrence id."""
    text = rec.instance_id(event_id, "2024-03-31T02:30:00")
    assert len(text) <= 255 and all(c.isalnum() or c in "-_" for c in text)
    assert rec.parse_instance_id(text) == (event_id, "2024-03-31T02:30:00")


def test_instance_id_rejects_and_refuses():
    """[core-1.2-idAllocation] ids outside the Id alphabet or too long are
    refused; plain ids are not instance ids."""
    with pytest.raises(ValueError):
        rec.instance_id("a" * 240, "2024-01-01T00:00:00")
    with pytest.raises(ValueError):
        rec.instance_id("bad id", "2024-01-01T00:00:00")
    with pytest.raises(ValueError):
        rec.instance_id("e1", "2024-01-01")
    assert rec.parse_instance_id("e1") is None
    assert rec.parse_instance_id("e1_20241301T000000") is None
    assert rec.parse_instance_id("e1_20240101T000000!") is None
    assert rec.parse_instance_id("_20240101T000000") is None


def test_instance_object_of_synthetic_id():
    """[cal-5.7-syntheticGet] the instance: override resolved, start and
    recurrenceId set, no rules nor overrides; None when there is none."""
    ev = weekly_with_overrides()
    plain = rec.instance_object(ev, "2024-01-01T09:00:00")
    assert plain["start"] == "2024-01-01T09:00:00" and plain["recurrenceId"] == "2024-01-01T09:00:00"
    assert plain["recurrenceIdTimeZone"] == "Europe/Berlin"
    assert not set(plain) & {"recurrenceRules", "recurrenceRule", "recurrenceOverrides",
                             "excludedRecurrenceRules"}
    moved = rec.instance_object(ev, "2024-01-15T09:00:00")
    assert moved["start"] == "2024-01-16T14:00:00" and moved["title"] == "moved"
    assert rec.instance_object(ev, "2024-01-08T09:00:00") is None  # excluded
    assert rec.instance_object(ev, "2024-01-29T09:00:00") is None  # past count
    assert rec.instance_object(ev, "2024-01-02T09:00:00") is None  # not produced
    assert rec.instance_object(ev, "2024-01-20T11:00:00")["title"] == "extra"
    assert rec.instance_object(ev, "nonsense") is None
    endless = event("2000-01-01T09:00:00", {"frequency": "daily"})
    assert rec.instance_object(endless, "2090-05-05T09:00:00")["start"] == "2090-05-05T09:00:00"
    assert rec.instance_object(endless, "2090-05-05T09:00:01") is None


def test_override_for_update_keeps_only_differences():
    """[cal-5.9-synthetic] [cal-5.9.1-patchingOverrides] updating one
    instance stores an override with only what differs from the master."""
    ev = weekly_with_overrides()
    patch = rec.override_for_update(ev, "2024-01-01T09:00:00", {
        "title": "special", "participants/p1/participationStatus": "tentative", "uid": "ignored"})
    assert patch == {"participants/p1/participationStatus": "tentative", "title": "special"}
    # An existing override is kept and extended.
    moved = rec.override_for_update(ev, "2024-01-15T09:00:00", {"description": "d"})
    assert moved == {"description": "d", "start": "2024-01-16T14:00:00", "title": "moved"}
    # Setting a value back to the master's drops it from the override.
    back = rec.override_for_update(ev, "2024-01-15T09:00:00", {"title": "t"})
    assert back == {"start": "2024-01-16T14:00:00"}
    # A whole instance object: absent properties are removed.
    obj = rec.instance_object(ev, "2024-01-22T09:00:00")
    obj.pop("title")
    whole = rec.override_for_update(ev, "2024-01-22T09:00:00", obj)
    assert whole == {"participants/p1/participationStatus": "declined", "title": None}
    with pytest.raises(ValueError):
        rec.override_for_update(ev, "2024-01-08T09:00:00", {"title": "x"})
    with pytest.raises(ValueError):
        rec.override_for_update(ev, "2024-01-01T09:00:00", {"nothere/x": 1})


def test_override_round_trip_through_instances():
    """[cal-5.9-synthetic] storing the computed override gives the instance
    the client asked for."""
    ev = weekly_with_overrides()
    patch = rec.override_for_update(ev, "2024-01-01T09:00:00", {"start": "2024-01-01T11:00:00"})
    ev["recurrenceOverrides"]["2024-01-01T09:00:00"] = patch
    first = rec.instances(ev, None, None, 1)[0]
    assert first.recurrence_id == "2024-01-01T09:00:00" and first.utc_start == utc(2024, 1, 1, 10)


def test_apply_patch_semantics():
    """[jscal-1.4-types] PatchObject: paths, null removes, missing parent
    is an error, the input is not modified."""
    base = {"a": {"b": 1, "c": 2}, "x~y": 1, "s/t": 2}
    out = rec.apply_patch(base, {"a/b": None, "a/d": 3, "x~0y": 5, "s~1t": 6})
    assert out == {"a": {"c": 2, "d": 3}, "x~y": 5, "s/t": 6}
    assert base == {"a": {"b": 1, "c": 2}, "x~y": 1, "s/t": 2}
    with pytest.raises(ValueError):
        rec.apply_patch(base, {"q/r": 1})


def test_never_matching_rules_of_every_kind():
    """[cal-9.3-dos] rules that can never produce an occurrence are seen as
    such at once (no search up to year 9999): only the start remains."""
    for rule in (
        {"frequency": "hourly", "interval": 2, "byHour": [1]},
        {"frequency": "daily", "bySetPosition": [2]},
        {"frequency": "daily", "interval": 14, "byDay": [{"day": "tu"}]},
        {"frequency": "monthly", "interval": 24, "byMonth": ["3"]},
        {"frequency": "monthly", "byMonth": ["4", "6"], "byMonthDay": [31]},
        {"frequency": "minutely", "interval": 2, "byHour": [3], "byMinute": [7]},
    ):
        ev = event("2024-01-01T00:00:00", rule)
        assert rids(ev, None, None, 5) == ["2024-01-01T00:00:00"], rule
        assert rec.utc_bounds(ev) == (utc(2024, 1, 1), utc(2024, 1, 1, 1))


def test_weekly_new_york_whole_year_stays_local():
    """[jscal-4.6-timeZone] a weekly 09:00 America/New_York meeting over a
    year: 52 instances, all at 09:00 local, 13:00Z or 14:00Z."""
    from zoneinfo import ZoneInfo

    ev = event("2024-01-05T09:00:00", {"frequency": "weekly"}, tz="America/New_York")
    found = rec.instances(ev, utc(2024, 1, 1), utc(2025, 1, 1), 1000)
    assert len(found) == 52
    assert {i.utc_start.astimezone(ZoneInfo("America/New_York")).hour for i in found} == {9}
    assert {i.utc_start.hour for i in found} == {13, 14}


def test_utc_bounds_of_long_series_falls_back_to_until():
    """[cal-9.3-dos] utc_bounds never fails on a long series: past the work
    bound the end comes from until, or is open for a huge count."""
    until = event("2024-01-01T00:00:00", {"frequency": "secondly", "until": "2030-01-01T00:00:00"},
                  duration="PT1S")
    assert rec.utc_bounds(until) == (utc(2024, 1, 1), utc(2030, 1, 1, 0, 0, 1))
    counted = event("2024-01-01T00:00:00", {"frequency": "secondly", "count": 10_000_000})
    assert rec.utc_bounds(counted) == (utc(2024, 1, 1), None)
    short = event("2024-01-01T00:00:00", {"frequency": "minutely", "count": 3}, duration="PT0S")
    assert rec.utc_bounds(short) == (utc(2024, 1, 1), utc(2024, 1, 1, 0, 2))


def test_instance_object_of_override_only_event_and_rscale_case():
    """[cal-5.7-syntheticGet] an event with overrides but no rule: its start
    and its added instances are instances; [jscal-4.3.3-rrule] rscale is
    compared case-insensitively."""
    ev = event("2024-01-01T09:00:00")
    ev["recurrenceOverrides"] = {"2024-02-01T09:00:00": {"title": "second"}}
    assert rec.instance_object(ev, "2024-01-01T09:00:00")["title"] == "t"
    assert rec.instance_object(ev, "2024-02-01T09:00:00")["title"] == "second"
    assert rec.instance_object(ev, "2024-01-02T09:00:00") is None
    upper = event("2024-01-01T09:00:00", {"frequency": "daily", "rscale": "GREGORIAN"})
    assert rec.validate_recurrence(upper) == []


def test_recurrence_id_utc():
    """[cal-5.7-getArgs] recurrence ids compared in UTC for
    recurrenceOverridesBefore/After."""
    ev = event("2024-01-01T09:00:00", {"frequency": "daily"}, tz="America/New_York")
    assert rec.recurrence_id_utc(ev, "2024-07-01T09:00:00") == utc(2024, 7, 1, 13)
    floating = event("2024-01-01T09:00:00", {"frequency": "daily"}, tz=None)
    assert rec.recurrence_id_utc(floating, "2024-07-01T09:00:00") == utc(2024, 7, 1, 9)
    assert rec.recurrence_id_utc(floating, "2024-07-01T09:00:00", floating_tz="Asia/Tokyo") == utc(2024, 7, 1)
    assert rec.recurrence_id_utc(ev, "July") is None


def test_windowed_expansion_property():
    """[jscal-4.3.3.1-expansion] [cal-9.3-dos] for random rules, skipping
    ahead to a far window gives what a walk from the start gives."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    days = st.sampled_from(["mo", "tu", "we", "th", "fr", "sa", "su"])

    @st.composite
    def rules(draw):
        frequency = draw(st.sampled_from(["daily", "weekly", "monthly", "yearly", "hourly"]))
        rule = {"frequency": frequency, "interval": draw(st.integers(1, 5)),
                "firstDayOfWeek": draw(days)}
        if draw(st.booleans()):
            nth = frequency in ("monthly", "yearly") and draw(st.booleans())
            rule["byDay"] = [{"day": d, **({"nthOfPeriod": draw(st.sampled_from([1, 2, -1]))} if nth else {})}
                             for d in draw(st.lists(days, min_size=1, max_size=3, unique=True))]
        if frequency != "weekly" and draw(st.booleans()):
            rule["byMonthDay"] = draw(st.lists(st.sampled_from([1, 13, 29, 31, -1]), min_size=1, max_size=2))
        if draw(st.booleans()):
            rule["byMonth"] = [str(m) for m in draw(st.lists(st.integers(1, 12), min_size=1, max_size=3))]
        if frequency in ("daily", "weekly") and draw(st.booleans()):
            rule["byHour"] = draw(st.lists(st.integers(0, 23), min_size=1, max_size=2))
        if rule.get("byDay") and draw(st.booleans()):
            rule["bySetPosition"] = [draw(st.sampled_from([1, -1, 2]))]
        return rule

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(rules(), st.datetimes(datetime(2000, 1, 1), datetime(2003, 12, 31)), st.integers(0, 500))
    def check(rule, start, offset):
        ev = event(start.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%S"), rule,
                   tz="Europe/Berlin", duration="PT2H")
        assert rec.validate_recurrence(ev) == []
        after = utc(2005, 1, 1) + timedelta(days=offset)
        before = after + timedelta(days=40)
        full = rec.instances(ev, None, before, 100_000)
        expected = [i.recurrence_id for i in full if i.utc_end > after and i.utc_start < before]
        assert rids(ev, after, before, 100_000) == expected

    check()
