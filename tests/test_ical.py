"""iCalendar ↔ JSCalendar in jmap_calendars.ical (draft-ietf-calext-jscalendar-icalendar, with
the jscalendarbis names): VEVENTs in, one VCALENDAR out, round trips both ways, recurring
series with moved, cancelled and extra instances, and the damaged files real exports contain.
Pure functions: no server."""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path
from typing import Any

import icalendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

_PATH = Path(__file__).resolve().parent.parent / "plugins" / "jmap_calendars" / "ical.py"
try:
    from jmap_calendars import ical
except ImportError:  # the package is not installed (yet): the module straight from the tree
    _spec = importlib.util.spec_from_file_location("jmap_calendars_ical", _PATH)
    ical = importlib.util.module_from_spec(_spec)
    sys.modules["jmap_calendars_ical"] = ical
    _spec.loader.exec_module(ical)


def crlf(text: str) -> str:
    return "".join(line.rstrip("\n") + "\r\n" for line in text.strip("\n").splitlines())


def calendar(*events: str, extra: str = "") -> bytes:
    body = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n" + extra + "".join(events) + "END:VCALENDAR\n"
    return crlf(body).encode("utf-8")


def vevent(lines: str) -> str:
    return "BEGIN:VEVENT\n" + "\n".join(line.strip() for line in lines.strip().splitlines()) + "\nEND:VEVENT\n"


def one(data: bytes) -> ical.ParsedEvent:
    parsed = ical.read_icalendar(data)
    assert len(parsed.events) == 1, parsed
    return parsed.events[0]


def comparable(event: dict[str, Any]) -> dict[str, Any]:
    """What both formats hold: the file's PRODID and a DTSTAMP-made ``updated`` are not the event's."""
    out = copy.deepcopy(event)
    out.pop("prodId", None)
    return out


def round_trip(event: dict[str, Any]) -> dict[str, Any]:
    text = ical.write_icalendar([event])
    icalendar.Calendar.from_ical(text)  # what we write parses
    back = one(text.encode())
    assert back.error is None and back.problems == [], (back, text)
    if "updated" not in event:  # DTSTAMP, which iCalendar requires, comes back as updated
        back.event.pop("updated")
    return comparable(back.event)


FULL = vevent("""
    UID:full-1@example.com
    DTSTAMP:20240102T030405Z
    CREATED:20231201T080000Z
    LAST-MODIFIED:20240102T030405Z
    SEQUENCE:3
    DTSTART;TZID=America/New_York:20240310T090000
    DTEND;TZID=America/New_York:20240310T103000
    SUMMARY:Planning\\, Q2
    DESCRIPTION:Agenda:\\n1. budget\\n2. hiring
    LOCATION:Room 1
    GEO:40.7;-74.0
    CONFERENCE;VALUE=URI;FEATURE=AUDIO,VIDEO;LABEL=Join:https://meet.example.com/abc
    URL:https://example.com/planning
    ATTACH;FMTTYPE=application/pdf:https://example.com/agenda.pdf
    ORGANIZER;CN=Alice:mailto:alice@example.com
    ATTENDEE;CN=Alice;ROLE=CHAIR;PARTSTAT=ACCEPTED:mailto:alice@example.com
    ATTENDEE;CN=Bob;ROLE=REQ-PARTICIPANT;PARTSTAT=TENTATIVE;RSVP=TRUE:mailto:bob@example.com
    ATTENDEE;CUTYPE=ROOM;ROLE=NON-PARTICIPANT:mailto:room1@example.com
    ATTENDEE;ROLE=OPT-PARTICIPANT;PARTSTAT=DECLINED;EMAIL=carol@example.org:urn:uuid:c1
    CATEGORIES:work,planning
    STATUS:TENTATIVE
    TRANSP:TRANSPARENT
    CLASS:CONFIDENTIAL
    PRIORITY:1
    COLOR:teal
    RELATED-TO;RELTYPE=PARENT:parent-uid
    BEGIN:VALARM
    UID:alarm-1
    ACTION:DISPLAY
    DESCRIPTION:soon
    TRIGGER:-PT15M
    END:VALARM
    BEGIN:VALARM
    ACTION:EMAIL
    SUMMARY:x
    DESCRIPTION:x
    TRIGGER;RELATED=END:PT5M
    END:VALARM
    BEGIN:VALARM
    ACTION:AUDIO
    TRIGGER;VALUE=DATE-TIME:20240310T130000Z
    ACKNOWLEDGED:20240310T130100Z
    END:VALARM
""")


def test_vevent_properties_map_to_jscalendar():
    """[jscal-4.1-metadata] [jscal-4.2-what] [jscal-4.4-scheduling] [jscal-4.4.5-participant]
    [jscal-4.5-alerts] [jscal-5.1-event] [jscal-4.6-timeZone]"""
    parsed = one(calendar(FULL))
    assert parsed.error is None and parsed.problems == []
    event = parsed.event
    assert event["@type"] == "Event" and event["uid"] == "full-1@example.com"
    assert event["prodId"] == "-//test//EN"
    assert (event["created"], event["updated"], event["sequence"]) == (
        "2023-12-01T08:00:00Z", "2024-01-02T03:04:05Z", 3)
    assert (event["start"], event["timeZone"], event["duration"]) == ("2024-03-10T09:00:00", "America/New_York", "PT1H30M")
    assert event["title"] == "Planning, Q2"
    assert event["description"] == "Agenda:\n1. budget\n2. hiring"
    assert list(event["locations"].values()) == [
        {"@type": "Location", "name": "Room 1", "coordinates": "geo:40.7,-74.0"}]
    assert list(event["virtualLocations"].values()) == [
        {"@type": "VirtualLocation", "uri": "https://meet.example.com/abc", "name": "Join",
         "features": {"audio": True, "video": True}}]
    links = sorted(event["links"].values(), key=lambda link: link["rel"])
    assert links == [
        {"@type": "Link", "href": "https://example.com/planning", "rel": "describedby"},
        {"@type": "Link", "href": "https://example.com/agenda.pdf", "rel": "enclosure", "contentType": "application/pdf"},
    ]
    assert event["organizerCalendarAddress"] == "mailto:alice@example.com"
    people = {p["calendarAddress"]: p for p in event["participants"].values()}
    assert len(people) == 4  # the organizer who attends is one participant
    alice = people["mailto:alice@example.com"]
    assert alice["roles"] == {"owner": True, "attendee": True, "chair": True}
    assert alice["participationStatus"] == "accepted" and alice["name"] == "Alice"
    bob = people["mailto:bob@example.com"]
    assert bob["roles"] == {"attendee": True, "required": True}
    assert (bob["participationStatus"], bob["expectReply"], bob["email"]) == ("tentative", True, "bob@example.com")
    room = people["mailto:room1@example.com"]
    assert room["kind"] == "location" and room["roles"] == {"attendee": True, "informational": True}
    carol = people["urn:uuid:c1"]
    assert carol["email"] == "carol@example.org" and carol["roles"] == {"attendee": True, "optional": True}
    assert carol["participationStatus"] == "declined"
    assert event["keywords"] == {"work": True, "planning": True}
    assert (event["status"], event["freeBusyStatus"], event["privacy"]) == ("tentative", "free", "secret")
    assert (event["priority"], event["color"]) == (1, "teal")
    assert event["relatedTo"] == {"parent-uid": {"@type": "Relation", "relation": {"parent": True}}}
    alerts = event["alerts"]
    assert alerts["alarm-1"] == {"@type": "Alert", "trigger": {"@type": "OffsetTrigger", "offset": "-PT15M"}}
    assert alerts["a2"] == {"@type": "Alert", "action": "email",
                            "trigger": {"@type": "OffsetTrigger", "offset": "PT5M", "relativeTo": "end"}}
    assert alerts["a3"] == {"@type": "Alert", "trigger": {"@type": "AbsoluteTrigger", "when": "2024-03-10T13:00:00Z"},
                            "acknowledged": "2024-03-10T13:01:00Z"}


def test_full_event_survives_ical_and_back():
    """iCalendar → JSCalendar → iCalendar → JSCalendar: the same Event, map keys included
    (JSID parameters, VALARM UID). [jscal-4.2-what] [jscal-4.4.5-participant] [jscal-4.5-alerts]"""
    event = comparable(one(calendar(FULL)).event)
    assert round_trip(event) == event


def test_start_forms_all_day_floating_utc_duration_end_zone():
    """[jscal-1.4-types] [jscal-4.6-timeZone] [jscal-5.1-event]"""
    parsed = ical.read_icalendar(calendar(
        vevent("UID:d\nDTSTART;VALUE=DATE:20240105\nDTEND;VALUE=DATE:20240108\nSUMMARY:trip"),
        vevent("UID:d1\nDTSTART;VALUE=DATE:20240105"),
        vevent("UID:f\nDTSTART:20240105T090000\nDURATION:PT45M"),
        vevent("UID:u\nDTSTART:20240105T090000Z\nDURATION:P1DT2H"),
        vevent("UID:z\nDTSTART;TZID=Europe/London:20240105T090000\nDTEND;TZID=America/New_York:20240105T120000"),
    ))
    events = {p.event["uid"]: p.event for p in parsed.events}
    assert events["d"] == {"@type": "Event", "uid": "d", "start": "2024-01-05T00:00:00", "showWithoutTime": True,
                           "duration": "P3D", "title": "trip", "prodId": "-//test//EN"}
    assert events["d1"]["duration"] == "P1D"  # a DATE DTSTART alone lasts the day
    assert "timeZone" not in events["f"] and events["f"]["duration"] == "PT45M"  # floating
    assert (events["u"]["timeZone"], events["u"]["duration"]) == ("Etc/UTC", "P1DT2H")
    assert (events["z"]["timeZone"], events["z"]["endTimeZone"], events["z"]["duration"]) == (
        "Europe/London", "America/New_York", "PT8H")
    for event in events.values():
        assert round_trip(comparable(event)) == comparable(event)


SERIES = vevent("""
    UID:weekly@example.com
    DTSTAMP:20240101T000000Z
    DTSTART;TZID=Europe/Berlin:20240101T100000
    DTEND;TZID=Europe/Berlin:20240101T110000
    RRULE:FREQ=WEEKLY;UNTIL=20240304T090000Z;BYDAY=MO
    EXDATE;TZID=Europe/Berlin:20240115T100000
    RDATE;TZID=Europe/Berlin:20240306T100000
    SUMMARY:Standup
    ORGANIZER;CN=Alice:mailto:alice@example.com
    ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED:mailto:bob@example.com
""") + vevent("""
    UID:weekly@example.com
    DTSTAMP:20240101T000000Z
    RECURRENCE-ID;TZID=Europe/Berlin:20240108T100000
    DTSTART;TZID=Europe/Berlin:20240108T140000
    DTEND;TZID=Europe/Berlin:20240108T150000
    SUMMARY:Standup (moved)
    ORGANIZER;CN=Alice:mailto:alice@example.com
    ATTENDEE;CN=Bob;PARTSTAT=DECLINED:mailto:bob@example.com
""") + vevent("""
    UID:weekly@example.com
    DTSTAMP:20240101T000000Z
    RECURRENCE-ID:20240122T090000Z
    DTSTART;TZID=Europe/Berlin:20240122T100000
    DTEND;TZID=Europe/Berlin:20240122T110000
    SUMMARY:Standup
    STATUS:CANCELLED
    ORGANIZER;CN=Alice:mailto:alice@example.com
    ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED:mailto:bob@example.com
""")


def test_recurring_series_with_moved_cancelled_and_extra_instances():
    """RRULE → recurrenceRule (UNTIL in the event's zone), EXDATE → excluded, RDATE → an extra
    instance, RECURRENCE-ID instances → patches in the master's recurrenceOverrides, keyed in the
    master's time zone (a UTC RECURRENCE-ID too). [jscal-4.3-recurrence] [jscal-4.3.3-rrule]"""
    parsed = one(calendar(SERIES))
    assert parsed.error is None and parsed.problems == []
    event = parsed.event
    assert event["recurrenceRule"] == {"@type": "RecurrenceRule", "frequency": "weekly",
                                       "byDay": [{"@type": "NDay", "day": "mo"}], "until": "2024-03-04T10:00:00"}
    bob = next(k for k, p in event["participants"].items() if p["calendarAddress"] == "mailto:bob@example.com")
    assert event["recurrenceOverrides"] == {
        "2024-01-15T10:00:00": {"excluded": True},
        "2024-03-06T10:00:00": {},
        "2024-01-08T10:00:00": {"start": "2024-01-08T14:00:00", "title": "Standup (moved)",
                                f"participants/{bob}/participationStatus": "declined"},
        "2024-01-22T10:00:00": {"status": "cancelled"},
    }


def test_recurring_series_round_trip_both_ways():
    """JSCalendar → iCalendar → JSCalendar keeps rule, excluded, extra and patched instances; the
    iCalendar written has EXDATE, RDATE and one RECURRENCE-ID VEVENT per patched instance.
    [jscal-4.3-recurrence]"""
    event = comparable(one(calendar(SERIES)).event)
    text = ical.write_icalendar([event])
    assert text.count("BEGIN:VEVENT") == 3 and "BEGIN:VTIMEZONE" in text and "TZID:Europe/Berlin" in text
    assert "UNTIL=20240304T090000Z" in text  # RFC 5545: UNTIL in UTC for a zoned DTSTART
    assert "EXDATE;TZID=Europe/Berlin:20240115T100000" in text
    assert "RDATE;TZID=Europe/Berlin:20240306T100000" in text
    assert round_trip(event) == event
    # and from JSCalendar first: a daily all-day series with a count and patches by path
    series = {"@type": "Event", "uid": "u-2", "title": "Holiday", "start": "2024-07-01T00:00:00",
              "showWithoutTime": True, "duration": "P1D",
              "recurrenceRule": {"@type": "RecurrenceRule", "frequency": "daily", "count": 5, "interval": 2},
              "keywords": {"off": True},
              "recurrenceOverrides": {"2024-07-03T00:00:00": {"excluded": True},
                                      "2024-07-05T00:00:00": {"title": "Holiday (half)", "keywords/half": True}}}
    assert round_trip(series) == series


def test_rrule_parts():
    """[jscal-4.3.3-rrule]"""
    parsed = one(calendar(vevent(
        "UID:r\nDTSTART:20240131T090000\nRRULE:FREQ=MONTHLY;INTERVAL=2;COUNT=10;BYDAY=-1FR,2MO;BYMONTH=1,7;"
        "BYSETPOS=1;WKST=SU;BYMONTHDAY=1,-1;BYHOUR=9")))
    rule = parsed.event["recurrenceRule"]
    assert rule == {"@type": "RecurrenceRule", "frequency": "monthly", "interval": 2, "count": 10,
                    "firstDayOfWeek": "su",
                    "byDay": [{"@type": "NDay", "day": "fr", "nthOfPeriod": -1}, {"@type": "NDay", "day": "mo", "nthOfPeriod": 2}],
                    "byMonth": ["1", "7"], "byMonthDay": [1, -1], "byHour": [9], "bySetPosition": [1]}
    assert round_trip(comparable(parsed.event)) == comparable(parsed.event)


def test_date_until_on_a_timed_series_includes_that_day():
    """[jscal-4.3.3-rrule]"""
    parsed = one(calendar(vevent("UID:u\nDTSTART;TZID=Europe/Berlin:20240105T090000\nRRULE:FREQ=DAILY;UNTIL=20240110")))
    assert parsed.event["recurrenceRule"]["until"] == "2024-01-10T23:59:59"


def test_time_zone_names_resolved_to_iana():
    """TZIDs as Outlook, Thunderbird and others write them become IANA names. [jscal-4.6-timeZone]"""
    custom = crlf("""BEGIN:VTIMEZONE
TZID:My Office Zone
X-LIC-LOCATION:Asia/Tokyo
BEGIN:STANDARD
DTSTART:19700101T000000
TZOFFSETFROM:+0900
TZOFFSETTO:+0900
END:STANDARD
END:VTIMEZONE
""")
    parsed = ical.read_icalendar(calendar(
        vevent("UID:a\nDTSTART;TZID=/mozilla.org/20050126_1/Europe/Berlin:20240105T090000"),
        vevent("UID:b\nDTSTART;TZID=W. Europe Standard Time:20240105T090000"),
        vevent("UID:c\nDTSTART;TZID=My Office Zone:20240105T090000"),
        vevent('UID:d\nDTSTART;TZID="America/Chicago":20240105T090000'),
        extra=custom,
    ))
    zones = {p.event["uid"]: p.event["timeZone"] for p in parsed.events}
    assert zones == {"a": "Europe/Berlin", "b": "Europe/Berlin", "c": "Asia/Tokyo", "d": "America/Chicago"}
    assert all(p.problems == [] for p in parsed.events)


def test_unknown_time_zone_is_a_counted_best_effort():
    """An unknown TZID with its VTIMEZONE: converted to UTC through it; without: floating time.
    Either way imported and said so. [jscal-4.6-timeZone]"""
    custom = crlf("""BEGIN:VTIMEZONE
TZID:Somewhere Special
BEGIN:STANDARD
DTSTART:19700101T000000
TZOFFSETFROM:+0530
TZOFFSETTO:+0530
END:STANDARD
END:VTIMEZONE
""")
    parsed = ical.read_icalendar(calendar(
        vevent("UID:a\nDTSTART;TZID=Somewhere Special:20240105T090000\nDTEND;TZID=Somewhere Special:20240105T100000"),
        vevent("UID:b\nDTSTART;TZID=Mars/Olympus_Mons:20240105T090000\nDURATION:PT1H"),
        extra=custom,
    ))
    a, b = parsed.events
    assert (a.event["start"], a.event["timeZone"], a.event["duration"]) == ("2024-01-05T03:30:00", "Etc/UTC", "PT1H")
    assert a.problems == ["unknown time zone (converted to UTC with the file's VTIMEZONE): Somewhere Special"]
    assert (b.event["start"], b.event.get("timeZone"), b.event["duration"]) == ("2024-01-05T09:00:00", None, "PT1H")
    assert b.problems == ["unknown time zone (read as floating time): Mars/Olympus_Mons"]


def test_invalid_rrule_is_a_clear_error():
    """An RRULE that does not parse or means nothing: the event is not converted (a single
    instance would misstate it), with the reason. [jscal-4.3.3-rrule]"""
    for rule in ("FREQ=FORTNIGHTLY", "FREQ=WEEKLY;BYDAY=XX", "FREQ=DAILY;COUNT=3;UNTIL=20240101T000000Z",
                 "FREQ=DAILY;INTERVAL=0", "FREQ=MONTHLY;BYMONTHDAY=40", "BYDAY=MO", "garbage"):
        parsed = one(calendar(vevent(f"UID:x\nSUMMARY:bad rule\nDTSTART:20240105T090000\nRRULE:{rule}")))
        assert parsed.event is None, rule
        assert parsed.error.startswith("invalid RRULE"), (rule, parsed.error)
        assert parsed.label == "event at line 4 (uid x)"
    # its RECURRENCE-ID instances are skipped with it, not imported as events of their own
    parsed = ical.read_icalendar(calendar(
        vevent("UID:x\nDTSTART:20240105T090000\nRRULE:FREQ=SOMETIMES"),
        vevent("UID:x\nRECURRENCE-ID:20240106T090000\nDTSTART:20240106T100000")))
    assert [(p.event, p.error) for p in parsed.events] == [(None, "invalid RRULE: FREQ=SOMETIMES")]


def test_end_before_start_is_imported_with_zero_duration():
    """[jscal-5.1-event]"""
    parsed = one(calendar(vevent("UID:x\nDTSTART:20240105T090000Z\nDTEND:20240105T080000Z")))
    assert parsed.event["start"] == "2024-01-05T09:00:00" and "duration" not in parsed.event
    assert parsed.problems == ["end before start (duration set to zero)"]


def test_broken_folding_and_other_damage_are_repaired_and_counted():
    data = calendar(vevent(
        "UID:fold\nSUMMARY:" + "x" * 75 + "\nyz\nDESCRIPTION:line one\nline two\nDTSTART:20240105T090000Z"))
    parsed = one(data)
    assert parsed.event["title"] == "x" * 75 + "yz"  # a long line: a fold that lost its space
    assert parsed.event["description"] == "line one\nline two"  # a short one: a line break
    assert [p.split(":")[0] for p in parsed.problems] == ["broken folding (continuation line without its leading space)"] * 2
    # Latin-1 bytes in a UTF-8 file, a VEVENT without END, a VTODO, a line outside the calendar
    raw = (b"junk before\r\nBEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:l1\r\nDTSTART:20240105T090000Z\r\n"
           b"SUMMARY:Caf\xe9\r\nBEGIN:VEVENT\r\nUID:l2\r\nDTSTART:20240106T090000Z\r\nEND:VEVENT\r\n"
           b"BEGIN:VTODO\r\nUID:t\r\nEND:VTODO\r\nEND:VCALENDAR\r\n")
    parsed = ical.read_icalendar(raw)
    first, second = parsed.events
    assert first.event["title"] == "Café" and second.event["uid"] == "l2"
    assert {p.split(": ")[0] for p in first.problems} == {
        "lines not UTF-8 (read as Windows-1252)", "no END:VEVENT (ended at the next BEGIN:VEVENT)"}
    assert parsed.problems == ["1 lines outside the calendar ignored", "1 VTODO components not imported (only VEVENT is)"]


def test_events_that_cannot_be_read():
    parsed = ical.read_icalendar(calendar(
        vevent("UID:n\nSUMMARY:no start"),
        vevent("UID:s\nDTSTART:garbage"),
        vevent("UID:dup\nDTSTART:20240105T090000Z"),
        vevent("UID:dup\nDTSTART:20240106T090000Z"),
        vevent("SUMMARY:no uid\nDTSTART:20240105T090000Z"),
    ))
    errors = [p.error for p in parsed.events]
    assert errors[:4] == ["no DTSTART", "no valid DTSTART", None,
                          "a second VEVENT with UID dup and no RECURRENCE-ID (the first one kept)"]
    last = parsed.events[4]
    assert last.event["uid"].endswith("-ical-import") and last.problems == ["no UID (one made from the event's text)"]


def test_exrule_and_orphan_instances():
    """A bounded EXRULE becomes excluded instances (jscalendarbis has no excludedRecurrenceRules);
    an unbounded one is left out and said so.  A RECURRENCE-ID without its master is an event of
    its own with recurrenceId (invited to one instance). [jscal-4.3-recurrence]"""
    parsed = ical.read_icalendar(calendar(
        vevent("UID:e\nDTSTART:20240101T090000\nRRULE:FREQ=DAILY;COUNT=10\nEXRULE:FREQ=DAILY;INTERVAL=3;COUNT=2"),
        vevent("UID:e2\nDTSTART:20240101T090000\nRRULE:FREQ=DAILY\nEXRULE:FREQ=WEEKLY"),
        vevent("UID:o\nRECURRENCE-ID;TZID=Europe/Paris:20240108T100000\nDTSTART;TZID=Europe/Paris:20240108T110000"),
    ))
    e, e2, orphan = parsed.events
    assert e.event["recurrenceOverrides"] == {"2024-01-01T09:00:00": {"excluded": True},
                                              "2024-01-04T09:00:00": {"excluded": True}}
    assert [p.split(":")[0] for p in e2.problems] == ["EXRULE not converted"]
    assert (orphan.event["recurrenceId"], orphan.event["recurrenceIdTimeZone"], orphan.event["start"]) == (
        "2024-01-08T10:00:00", "Europe/Paris", "2024-01-08T11:00:00")


def test_jscalendar_first_round_trip_keeps_ids_and_rfc8984_input():
    """A JSCalendar Event written by a client: to iCalendar and back unchanged (for what iCalendar
    holds); ``recurrenceRules`` (RFC 8984) is written as the one rule it holds. [jscal-4.2-what]"""
    event = {
        "@type": "Event", "uid": "c-1", "title": "Review", "description": "Read ; this, \\ please",
        "start": "2024-05-02T15:00:00", "timeZone": "Australia/Melbourne", "duration": "PT2H",
        "created": "2024-04-01T00:00:00Z", "updated": "2024-04-02T00:00:00Z", "sequence": 2,
        "locations": {"main": {"@type": "Location", "name": "HQ"}},
        "virtualLocations": {"zoom": {"@type": "VirtualLocation", "uri": "tel:+15551234", "features": {"phone": True}}},
        "links": {"doc": {"@type": "Link", "href": "https://example.com/d", "rel": "enclosure", "size": 120, "title": "d.txt"}},
        "organizerCalendarAddress": "mailto:o@example.com",
        "participants": {"org": {"@type": "Participant", "calendarAddress": "mailto:o@example.com", "email": "o@example.com",
                                 "roles": {"owner": True}},
                         "x": {"@type": "Participant", "calendarAddress": "mailto:x@example.com", "name": "X",
                               "email": "x@example.com", "roles": {"attendee": True}, "participationStatus": "delegated",
                               "delegatedTo": {"mailto:y@example.com": True}}},
        "alerts": {"k1": {"@type": "Alert", "trigger": {"@type": "OffsetTrigger", "offset": "-P1D"}}},
        "keywords": {"review": True}, "categories": {"https://example.com/cat/1": True},
        "privacy": "private", "freeBusyStatus": "busy", "status": "confirmed", "priority": 5,
    }
    assert round_trip(event) == event
    old = {"@type": "Event", "uid": "c-2", "start": "2024-05-02T15:00:00", "duration": "PT1H",
           "recurrenceRules": [{"@type": "RecurrenceRule", "frequency": "yearly"}]}
    assert round_trip(old)["recurrenceRule"] == {"@type": "RecurrenceRule", "frequency": "yearly"}


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_damaged_files_never_raise(data):
    """Random byte edits of a real file: reading and writing back never raise."""
    raw = bytearray(calendar(FULL, SERIES))
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "newline"]))
        if action == "flip":
            raw[at] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del raw[at: at + data.draw(st.integers(1, 40))]
        else:
            raw[at:at] = b"\r\n"
    parsed = ical.read_icalendar(bytes(raw))
    ical.write_icalendar([p.event for p in parsed.events if p.event is not None])


@pytest.mark.parametrize("text", ["", "not a calendar", "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"])
def test_empty_inputs(text):
    parsed = ical.read_icalendar(text.encode())
    assert parsed.events == [] and parsed.problems[-1] == "no VEVENT in the file"


# -- the real CLI: jmapcore import / export ------------------------------------------------

CALENDARS = "urn:ietf:params:jmap:calendars"
#: What the server adds to an Event: JMAP-only properties, not iCalendar's.
JMAP_ONLY = ("id", "calendarIds", "isDraft", "isOrigin", "baseEventId", "utcStart", "utcEnd",
             "useDefaultAlerts", "mayInviteSelf", "mayInviteOthers", "hideAttendees", "prodId")


def _client(data: Path):
    from jmapcore.accounts import principal_for
    from jmapcore.testing.client import Client
    from jmapserver.config import Settings
    from jmapserver.wiring import build_core

    core = build_core(Settings(data=data))
    if CALENDARS not in core.registry.plugins:
        core.close()
        pytest.skip("the calendars plugin is not installed")
    return core, Client(core, principal_for(core, "alice"), using=[CALENDARS])


def _events(data: Path) -> list[dict[str, Any]]:
    core, client = _client(data)
    try:
        return client.call("CalendarEvent/get", {"accountId": client.account_id, "ids": None})["list"]
    finally:
        core.close()


@pytest.fixture
def account(tmp_path: Path) -> Path:
    from tests.support import jmapcore

    data = tmp_path / "data"
    made = jmapcore("account", "add", "alice", "--password", "pw", "--data", str(data))
    assert made.returncode == 0, made.stderr
    _client(data)[0].close()  # skips when the calendars plugin is not there
    return data


#: A file as calendar programs write them, damage included.
EXPORTED = calendar(
    SERIES,
    vevent("UID:holiday-1\nDTSTAMP:20240101T000000Z\nDTSTART;VALUE=DATE:20240701\nDTEND;VALUE=DATE:20240703\n"
           "SUMMARY:Holiday\nTRANSP:TRANSPARENT"),
    vevent("UID:mars-1\nDTSTAMP:20240101T000000Z\nDTSTART;TZID=Mars/Olympus_Mons:20240105T090000\nDURATION:PT1H\n"
           "SUMMARY:Unknown zone"),
    vevent("UID:backwards-1\nDTSTAMP:20240101T000000Z\nDTSTART:20240105T090000Z\nDTEND:20240105T080000Z\n"
           "SUMMARY:Ends before it starts"),
    vevent("UID:folded-1\nDTSTAMP:20240101T000000Z\nDTSTART:20240106T090000Z\nSUMMARY:Folded\n"
           "DESCRIPTION:first line\nsecond line"),
    vevent("UID:badrule-1\nDTSTAMP:20240101T000000Z\nDTSTART:20240107T090000Z\nRRULE:FREQ=FORTNIGHTLY\n"
           "SUMMARY:Bad rule"),
)


def test_cli_import_of_an_ics_then_export_and_import_again(account: Path, tmp_path: Path) -> None:
    """The real CLI: a damaged .ics into the default calendar (counted; the invalid RRULE
    skipped with its reason), the events through CalendarEvent/get (the series with its moved,
    cancelled and excluded instances), exported as iCalendar and read back the same, and the
    export imported again skipped event by event: nothing stored replaced or lost.
    [jscal-4.3-recurrence] [jscal-5.1-event]"""
    from tests.support import jmapcore

    source = tmp_path / "export.ics"
    source.write_bytes(EXPORTED)
    done = jmapcore("import", "alice", str(source), "--data", str(account), "--quiet")
    assert done.returncode == 1, done.stdout + done.stderr  # one event skipped
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"imported 5 of 6 events from {source} into alice (calendar ")
    assert "  imported:   5 (1 recurring)" in lines
    assert "  repaired:   3 (imported best effort)" in lines
    assert "    1 × unknown time zone (read as floating time)" in lines
    assert "    1 × end before start (duration set to zero)" in lines
    assert "    1 × broken folding (continuation line without its leading space)" in lines
    assert "  skipped:    1" in lines
    assert any(line.startswith("    event at line ") and "invalid RRULE: FREQ=FORTNIGHTLY" in line for line in lines)

    core, client = _client(account)
    try:
        calendars = client.call("Calendar/get", {"accountId": client.account_id})["list"]
        (default,) = [c["id"] for c in calendars if c.get("isDefault")]
    finally:
        core.close()
    events = {event["uid"]: event for event in _events(account)}
    assert set(events) == {"weekly@example.com", "holiday-1", "mars-1", "backwards-1", "folded-1"}
    assert all(event["calendarIds"] == {default: True} for event in events.values())
    series = events["weekly@example.com"]
    assert series["recurrenceRule"]["frequency"] == "weekly"
    overrides = series["recurrenceOverrides"]
    assert overrides["2024-01-15T10:00:00"] == {"excluded": True}
    assert overrides["2024-01-08T10:00:00"]["start"] == "2024-01-08T14:00:00"
    assert overrides["2024-01-22T10:00:00"] == {"status": "cancelled"}
    assert events["holiday-1"]["showWithoutTime"] is True and events["holiday-1"]["duration"] == "P2D"
    assert events["folded-1"]["description"] == "first line\nsecond line"

    exported = tmp_path / "out.ics"
    done = jmapcore("export", "alice", "--calendar-events", str(exported), "--data", str(account))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"exported 5 events of alice to {exported}"
    text = exported.read_bytes().decode("utf-8")
    icalendar.Calendar.from_ical(text)
    assert text.count("BEGIN:VEVENT") == 7  # 5 events + the moved and the cancelled instance
    again = {p.event["uid"]: p.event for p in ical.read_icalendar(exported.read_bytes()).events}
    for uid, event in events.items():  # what the server holds comes back from its iCalendar
        stored = {k: v for k, v in event.items() if k not in JMAP_ONLY}
        back = {k: v for k, v in again[uid].items() if k not in JMAP_ONLY}
        for defaulted in set(back) ^ set(stored):  # defaults the server fills in (sequence 0, ...)
            assert defaulted in ("updated", "sequence", "created", "status", "freeBusyStatus", "privacy",
                                 "title", "description", "priority", "duration", "showWithoutTime",
                                 "@type", "timeZone"), (uid, defaulted)
            stored.pop(defaulted, None)
            back.pop(defaulted, None)
        assert back == stored, uid

    done = jmapcore("import", "alice", str(exported), "--data", str(account), "--quiet")
    assert done.returncode == 1
    assert "imported 0 of 5 events" in done.stdout
    assert "is already in the account (not replaced)" in done.stdout
    assert {event["uid"]: event for event in _events(account)} == events


def test_cli_import_errors_and_calendar_choice(account: Path, tmp_path: Path) -> None:
    from tests.support import jmapcore

    source = tmp_path / "one.ics"
    source.write_bytes(calendar(vevent("UID:one\nDTSTAMP:20240101T000000Z\nDTSTART:20240105T090000Z\nSUMMARY:One")))
    done = jmapcore("import", "nobody", str(source), "--data", str(account))
    assert done.returncode == 1 and "nobody" in done.stderr
    done = jmapcore("import", "alice", str(tmp_path / "missing.ics"), "--data", str(account))
    assert done.returncode == 1 and "cannot read" in done.stderr
    done = jmapcore("import", "alice", str(source), "--data", str(account), "--calendar", "Work")
    assert done.returncode == 1 and "no calendar named 'Work'" in done.stderr
    plain = tmp_path / "events.txt"  # not .ics: found by its first line, or by --format
    plain.write_bytes(calendar(vevent("UID:two\nDTSTAMP:20240101T000000Z\nDTSTART:20240105T090000Z")))
    done = jmapcore("import", "alice", str(plain), "--data", str(account), "--quiet")
    assert done.returncode == 0 and "imported 1 of 1 events" in done.stdout, done.stdout + done.stderr
    empty = tmp_path / "empty.ics"
    empty.write_text("")
    done = jmapcore("import", "alice", str(empty), "--data", str(account), "--quiet", "--format", "ical")
    assert done.returncode == 1 and "file: no VEVENT in the file" in done.stdout
    done = jmapcore("export", "alice", "--data", str(account))
    assert done.returncode != 0 and "--calendar-events" in done.stderr
    done = jmapcore("export", "alice", "--calendar-events", "-", "--data", str(account))
    assert done.returncode == 0 and done.stdout.startswith("BEGIN:VCALENDAR")
    assert "UID:two" in done.stdout


def test_an_event_refused_for_some_properties_is_retried_without_them(tmp_path: Path) -> None:
    from jmapserver.icalio import _without, is_ical_file

    event = {"uid": "u", "start": "2024-01-01T00:00:00", "color": "not a colour",
             "links": {"k": {"href": "x", "rel": "a/b"}, "k2": {"href": "y"}}}
    assert _without(event, ["color", "links/k"]) == {"uid": "u", "start": "2024-01-01T00:00:00",
                                                    "links": {"k2": {"href": "y"}}}
    assert _without(event, ["start"]) is None  # never without its start: skipped instead
    assert _without(event, ["missing"]) is None
    plain = tmp_path / "x.txt"
    plain.write_bytes(b"\xef\xbb\xbfBEGIN:VCALENDAR\r\n")
    assert is_ical_file(plain) and is_ical_file(tmp_path / "y.ics") and not is_ical_file(tmp_path / "z.txt")


def test_cli_import_and_export_on_the_maildir_backend(tmp_path: Path) -> None:
    """On Maildir the events live in the sidecar store; import and export are the same.  An
    instance without its series (invited to one occurrence) goes in as an event of its own."""
    from jmapcore.accounts import principal_for
    from jmapcore.testing.client import Client
    from jmapserver.config import Settings
    from jmapserver.wiring import build_core
    from tests.support import jmapcore

    data, root = tmp_path / "data", tmp_path / "mail"
    common = ["--data", str(data), "--backend", "maildir", "--maildir-root", str(root / "%u")]
    assert jmapcore("account", "add", "alice", "--password", "pw", *common).returncode == 0
    settings = Settings(data=data, backend="maildir", maildir_root=root / "%u")
    core = build_core(settings)
    if CALENDARS not in core.registry.plugins:
        core.close()
        pytest.skip("the calendars plugin is not installed")
    core.close()
    source = tmp_path / "c.ics"
    source.write_bytes(calendar(SERIES, vevent(
        "UID:only-one@example.com\nDTSTAMP:20240101T000000Z\nRECURRENCE-ID;TZID=Europe/Paris:20240108T100000\n"
        "DTSTART;TZID=Europe/Paris:20240108T110000\nSUMMARY:The one I am invited to")))
    done = jmapcore("import", "alice", str(source), *common, "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "imported 2 of 2 events" in done.stdout
    core = build_core(settings)
    try:
        client = Client(core, principal_for(core, "alice"), using=[CALENDARS])
        events = client.call("CalendarEvent/get", {"accountId": client.account_id, "ids": None})["list"]
    finally:
        core.close()
    by_uid = {event["uid"]: event for event in events}
    assert sorted(by_uid) == ["only-one@example.com", "weekly@example.com"]
    assert by_uid["only-one@example.com"]["recurrenceId"] == "2024-01-08T10:00:00"
    assert len(by_uid["weekly@example.com"]["recurrenceOverrides"]) == 4
    out = tmp_path / "out.ics"
    done = jmapcore("export", "alice", "--calendar-events", str(out), *common)
    assert done.returncode == 0, done.stderr
    text = out.read_text(encoding="utf-8")
    assert text.count("BEGIN:VEVENT") == 4 and "RECURRENCE-ID;TZID=Europe/Paris:20240108T100000" in text
    again = {p.event["uid"]: p.event for p in ical.read_icalendar(out.read_bytes()).events}
    assert again["weekly@example.com"]["recurrenceOverrides"] == by_uid["weekly@example.com"]["recurrenceOverrides"]
    assert again["only-one@example.com"]["recurrenceId"] == "2024-01-08T10:00:00"
