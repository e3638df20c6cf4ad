"""JMAP for Calendars (draft-ietf-jmap-calendars-27) with JSCalendar events
(RFC 8984 / draft-ietf-calext-jscalendarbis-08), in-process on every backend
(memory, LMDB, Maildir: there the events live in the sidecar).

Spec ids are from /work/shared/spec/calendars.md.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
from jmap_calendars import CALENDARS, validate_event

from jmapcore import Core
from jmapcore.accounts import add_account, principal_for
from jmapcore.push import PushFeed
from jmapcore.testing.client import Client
from tests.conftest import second_account

USING = [CALENDARS]
BERLIN = "Europe/Berlin"


@pytest.fixture
def dora(core: Core) -> Client:
    add_account(core, "dora", "dora-pass")
    second_account(core, "dora")  # made without the plugin's hook: a pre-existing account
    return Client(core, principal_for(core, "dora"), using=USING)


def other_account(client: Client) -> str:
    return [a for a in client.principal.account_ids if a != client.account_id][0]


def calendars(client: Client, account_id: str | None = None) -> list[dict[str, Any]]:
    return client.call("Calendar/get", {"accountId": account_id or client.account_id})["list"]


def default_calendar(client: Client, account_id: str | None = None) -> str:
    return next(c["id"] for c in calendars(client, account_id) if c["isDefault"])


def event_set(client: Client, account_id: str | None = None, **args: Any) -> dict[str, Any]:
    return client.call("CalendarEvent/set", {"accountId": account_id or client.account_id, **args})


def create_events(client: Client, events: dict[str, dict[str, Any]], account_id: str | None = None) -> dict[str, str]:
    result = event_set(client, account_id, create=events)
    assert not result["notCreated"], result["notCreated"]
    return {cid: created["id"] for cid, created in result["created"].items()}


def get_events(client: Client, ids: list[str], account_id: str | None = None, **args: Any) -> list[dict[str, Any]]:
    return client.call("CalendarEvent/get", {"accountId": account_id or client.account_id, "ids": ids, **args})["list"]


def query(client: Client, filter: Any = None, sort: Any = None, **args: Any) -> list[str]:
    arguments: dict[str, Any] = {"accountId": client.account_id, **args}
    if filter is not None:
        arguments["filter"] = filter
    if sort is not None:
        arguments["sort"] = sort
    return client.call("CalendarEvent/query", arguments)["ids"]


def event(title: str, start: str, duration: str = "PT1H", tz: str | None = BERLIN, **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"title": title, "start": start, "duration": duration, **extra}
    if tz is not None:
        values["timeZone"] = tz
    return values


def weekly(title: str, start: str, count: int | None = None, **extra: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"@type": "RecurrenceRule", "frequency": "weekly"}
    if count is not None:
        rule["count"] = count
    return event(title, start, recurrenceRule=rule, **extra)


# -- capability, session, default calendar -------------------------------------------------


def test_capability_and_account_capability(core: Core, dora: Client) -> None:
    """[cal-1.5.1-capability] session {} and the account's limits."""
    session = core.session(dora.principal, "http://x")
    assert session["capabilities"][CALENDARS] == {}
    account = session["accounts"][dora.account_id]["accountCapabilities"][CALENDARS]
    assert set(account) >= {
        "maxCalendarsPerEvent", "minDateTime", "maxDateTime", "maxExpandedQueryDuration",
        "maxParticipantsPerEvent", "mayCreateCalendar",
    }
    assert account["mayCreateCalendar"] is True
    assert account["minDateTime"].endswith("Z") and account["maxExpandedQueryDuration"].startswith("P")


def test_methods_need_the_capability_in_using(dora: Client) -> None:
    response = dora.request([["Calendar/get", {"accountId": dora.account_id}, "0"]], using=["urn:ietf:params:jmap:core"])
    assert response["methodResponses"][0][1]["type"] == "unknownMethod"


def test_default_calendar_on_account_creation(dora: Client) -> None:
    """[cal-4-props] one default calendar, owned: every right, isDefault true."""
    [calendar] = calendars(dora)
    assert calendar["isDefault"] is True and calendar["name"] == "Calendar"
    assert all(calendar["myRights"].values()) and calendar["shareWith"] is None
    assert calendar["isSubscribed"] is True and calendar["isVisible"] is True


def test_default_calendar_made_lazily_for_older_accounts(dora: Client) -> None:
    """An account that predates the plugin gets its default at its first calendars call."""
    other = other_account(dora)
    [calendar] = calendars(dora, other)
    assert calendar["isDefault"] is True
    assert len(calendars(dora, other)) == 1


# -- Calendar/set ------------------------------------------------------------------------------


def test_calendar_set_create_update_destroy(dora: Client) -> None:
    """[cal-4-props] [cal-4.3-setArgs] the properties, server-set myRights, changes."""
    state = dora.call("Calendar/get", {"accountId": dora.account_id, "ids": []})["state"]
    created = dora.call("Calendar/set", {"accountId": dora.account_id, "create": {"w": {
        "name": "Work", "description": "Job", "color": "#ff0000", "sortOrder": 3, "timeZone": BERLIN,
        "defaultAlertsWithTime": {"a1": {"trigger": {"@type": "OffsetTrigger", "offset": "-PT15M"}}},
    }}})["created"]["w"]
    assert created["isDefault"] is False and created["myRights"]["mayDelete"] is True
    work = created["id"]
    dora.call("Calendar/set", {"accountId": dora.account_id, "update": {work: {"isVisible": False, "name": "Job"}}})
    [got] = dora.call("Calendar/get", {"accountId": dora.account_id, "ids": [work]})["list"]
    assert got["name"] == "Job" and got["isVisible"] is False and got["timeZone"] == BERLIN
    assert got["defaultAlertsWithTime"]["a1"]["trigger"]["offset"] == "-PT15M"
    changes = dora.call("Calendar/changes", {"accountId": dora.account_id, "sinceState": state})
    assert changes["created"] == [work]
    result = dora.call("Calendar/set", {"accountId": dora.account_id, "destroy": [work]})
    assert result["destroyed"] == [work]


@pytest.mark.parametrize(
    ("values", "bad"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"name": "ok", "timeZone": "Mars/Olympus"}, "timeZone"),
        ({"name": "ok", "sortOrder": -1}, "sortOrder"),
        ({"name": "ok", "includeInAvailability": "sometimes"}, "includeInAvailability"),
        ({"name": "ok", "shareWith": {"someone": {"mayReadItems": True}}}, "shareWith"),
        ({"name": "ok", "myRights": {}}, "myRights"),
        ({"name": "ok", "defaultAlertsWithoutTime": {"a": {"trigger": {"@type": "AbsoluteTrigger", "when": "2026-01-01T00:00:00Z"}}}},
         "defaultAlertsWithoutTime/a/trigger"),
    ],
)
def test_calendar_bad_values(dora: Client, values: dict[str, Any], bad: str) -> None:
    """[cal-4-props] [cal-4.3-share]"""
    result = dora.call("Calendar/set", {"accountId": dora.account_id, "create": {"c": values}})
    error = result["notCreated"]["c"]
    assert error["type"] == "invalidProperties" and bad in error["properties"]


def test_on_success_set_is_default(dora: Client) -> None:
    """[cal-4.3-setArgs] onSuccessSetIsDefault moves the default to a new calendar."""
    old = default_calendar(dora)
    result = dora.call("Calendar/set", {"accountId": dora.account_id, "create": {"n": {"name": "New"}},
                                        "onSuccessSetIsDefault": "#n"})
    new = result["created"]["n"]["id"]
    assert result["created"]["n"]["isDefault"] is True and result["updated"][old] == {"isDefault": False}
    assert default_calendar(dora) == new


def test_destroy_calendar_with_events(dora: Client) -> None:
    """[cal-4.3-setArgs] calendarHasEvent without onDestroyRemoveEvents; with
    it, events only in that calendar go, events also elsewhere stay."""
    home = default_calendar(dora)
    work = dora.call("Calendar/set", {"accountId": dora.account_id, "create": {"w": {"name": "Work"}}})["created"]["w"]["id"]
    ids = create_events(dora, {
        "only": event("Only work", "2026-05-01T10:00:00", calendarIds={work: True}),
        "both": event("Both", "2026-05-02T10:00:00", calendarIds={work: True, home: True}),
    })
    refused = dora.call("Calendar/set", {"accountId": dora.account_id, "destroy": [work]})
    assert refused["notDestroyed"][work]["type"] == "calendarHasEvent"
    done = dora.call("Calendar/set", {"accountId": dora.account_id, "destroy": [work], "onDestroyRemoveEvents": True})
    assert done["destroyed"] == [work]
    assert [e["id"] for e in get_events(dora, list(ids.values()))] == [ids["both"]]
    assert get_events(dora, [ids["both"]])[0]["calendarIds"] == {home: True}
    assert query(dora, {"title": "work"}) == []


# -- CalendarEvent/set and /get ----------------------------------------------------------------------


def test_create_defaults_and_get(dora: Client) -> None:
    """[cal-5.9-defaults] [cal-5-props] @type, uid, created, updated, isOrigin,
    the default calendar; /get with properties null has every stored property."""
    result = event_set(dora, create={"e": event("Lunch", "2026-06-01T12:00:00", description="Pasta",
                                                 keywords={"food": True}, status="tentative",
                                                 freeBusyStatus="free", privacy="private",
                                                 **{"example.com:vendor": {"x": 1}})})
    created = result["created"]["e"]
    assert created["uid"].startswith("urn:uuid:") and created["isOrigin"] is True
    assert created["calendarIds"] == {default_calendar(dora): True}
    [got] = get_events(dora, [created["id"]], properties=None)
    assert got["@type"] == "Event" and got["title"] == "Lunch" and got["description"] == "Pasta"
    assert got["keywords"] == {"food": True} and got["example.com:vendor"] == {"x": 1}
    assert got["isDraft"] is False and "utcStart" not in got
    assert got["created"] == created["created"] and got["updated"].endswith("Z")


def test_full_event_round_trip(dora: Client) -> None:
    """[jscal-4.2-what] [jscal-4.4-scheduling] [jscal-4.4.5-participant] [jscal-4.5-alerts]
    locations, virtual locations, participants, alerts, categories survive."""
    values = event(
        "Planning", "2026-06-03T14:00:00", "PT1H30M",
        showWithoutTime=False,
        locations={"l1": {"@type": "Location", "name": "Room 4", "coordinates": "geo:52.5,13.4"}},
        virtualLocations={"v1": {"@type": "VirtualLocation", "uri": "https://meet.example.com/x", "features": {"video": True}}},
        participants={
            "o": {"@type": "Participant", "name": "Dora", "email": "dora@example.com", "calendarAddress": "mailto:dora@example.com",
                  "roles": {"owner": True, "attendee": True}, "participationStatus": "accepted"},
            "a": {"@type": "Participant", "name": "Ada Lovelace", "calendarAddress": "mailto:ada@example.com",
                  "roles": {"attendee": True}, "participationStatus": "needs-action", "expectReply": True},
        },
        organizerCalendarAddress="mailto:dora@example.com",
        alerts={"al": {"@type": "Alert", "trigger": {"@type": "OffsetTrigger", "offset": "-PT10M", "relativeTo": "start"},
                       "action": "display"}},
        categories={"http://example.com/cat/meeting": True},
        priority=5,
    )
    [event_id] = create_events(dora, {"e": values}).values()
    [got] = get_events(dora, [event_id])
    for name in ("locations", "virtualLocations", "participants", "alerts", "categories", "priority", "duration"):
        assert got[name] == values[name], name


@pytest.mark.parametrize(
    ("values", "bad"),
    [
        ({"start": "2026-06-01 10:00"}, "start"),
        ({"start": "2026-02-30T10:00:00"}, "start"),
        ({"start": "2026-06-01T10:00:00Z"}, "start"),
        ({"timeZone": "Europe/Atlantis"}, "timeZone"),
        ({"duration": "-PT1H"}, "duration"),
        ({"duration": "1 hour"}, "duration"),
        ({"status": "maybe"}, "status"),
        ({"freeBusyStatus": "busyish"}, "freeBusyStatus"),
        ({"privacy": "hidden"}, "privacy"),
        ({"priority": 12}, "priority"),
        ({"title": 5}, "title"),
        ({"showWithoutTime": "yes"}, "showWithoutTime"),
        ({"uid": ""}, "uid"),
        ({"method": "request"}, "method"),
        ({"keywords": {"a": False}}, "keywords/a"),
        ({"locations": {"l1": {"@type": "Location"}}}, "locations/l1"),
        ({"virtualLocations": {"v": {"name": "no uri"}}}, "virtualLocations/v/uri"),
        ({"participants": {"p": {"roles": {"boss": True}}}}, "participants/p/roles/boss"),
        ({"participants": {"p": {"participationStatus": "perhaps"}}}, "participants/p/participationStatus"),
        ({"alerts": {"a": {"trigger": {"@type": "OffsetTrigger", "offset": "soon"}}}}, "alerts/a/trigger/offset"),
        ({"alerts": {"a": {"trigger": {"@type": "AbsoluteTrigger", "when": "tomorrow"}}}}, "alerts/a/trigger/when"),
        ({"recurrenceRule": {"frequency": "fortnightly"}}, "recurrenceRule/frequency"),
        ({"recurrenceRule": {"frequency": "weekly", "count": 2, "until": "2026-09-01T00:00:00"}}, "recurrenceRule/until"),
        ({"recurrenceOverrides": {"not a date": {"title": "x"}}}, "recurrenceOverrides/not a date"),
        ({"start": "1800-01-01T00:00:00"}, "start"),
    ],
)
def test_invalid_events_name_the_property(dora: Client, values: dict[str, Any], bad: str) -> None:
    """[jscal-1.4-types] [jscal-5.1-event] [jscal-4.6-timeZone] [cal-5-noMethod]
    [jscal-4.3.3-rrule] invalidProperties names the path."""
    result = event_set(dora, create={"e": {**event("Bad", "2026-06-01T10:00:00"), **values}})
    error = result["notCreated"]["e"]
    assert error["type"] == "invalidProperties", error
    assert bad in error["properties"], error


def test_validate_event_on_its_own() -> None:
    """jscalendar.validate_event: the validator without a server."""
    assert validate_event({"@type": "Event", "uid": "u", "start": "2026-01-01T10:00:00"}) == []
    assert validate_event({"@type": "Task", "uid": "u"}) == ["@type", "start"]


def test_update_patch_and_server_set(dora: Client) -> None:
    """[cal-5.9-updated] [cal-5.9-sequence] [cal-5.9-nullOptional] a patch into
    maps, null removes, sequence rises on a scheduling change, not on keywords."""
    [event_id] = create_events(dora, {"e": event("Call", "2026-06-05T09:00:00", keywords={"a": True},
                                                 locations={"l": {"name": "Desk"}})}).values()
    result = event_set(dora, update={event_id: {"locations/l/name": "Phone", "description": None}})
    assert result["updated"][event_id]["sequence"] == 1
    event_set(dora, update={event_id: {"keywords/b": True}})
    [got] = get_events(dora, [event_id])
    assert got["sequence"] == 1 and got["keywords"] == {"a": True, "b": True}
    assert got["locations"] == {"l": {"name": "Phone"}}
    bad = event_set(dora, update={event_id: {"timeZone": "Nowhere/Else"}})
    assert bad["notUpdated"][event_id]["properties"] == ["timeZone"]
    bad = event_set(dora, update={event_id: {"isOrigin": False}})
    assert bad["notUpdated"][event_id]["type"] == "invalidProperties"


def test_uid_unique_per_account(dora: Client) -> None:
    """[cal-1.4.1-uid] one event per uid, unless every one has its own recurrenceId."""
    create_events(dora, {"a": event("A", "2026-06-01T10:00:00", uid="same")})
    result = event_set(dora, create={"b": event("B", "2026-06-02T10:00:00", uid="same")})
    assert result["notCreated"]["b"]["properties"] == ["uid"]
    ok = event_set(dora, create={
        "i1": event("I1", "2026-06-01T10:00:00", uid="inst", recurrenceId="2026-06-01T10:00:00"),
        "i2": event("I2", "2026-06-08T10:00:00", uid="inst", recurrenceId="2026-06-08T10:00:00"),
    })
    assert ok["notCreated"] is None
    # The same uid in another account is another copy of the event.
    create_events(dora, {"c": event("A", "2026-06-01T10:00:00", uid="same")}, other_account(dora))


def test_utc_start_and_end_on_get_and_set(dora: Client) -> None:
    """[cal-5-utcStart] [cal-5.7-defaultProps] computed when asked for; given on a
    write, they become start/duration (timeZone Etc/UTC when it had none)."""
    [event_id] = create_events(dora, {"e": event("Flight", "2026-07-01T10:00:00", "PT2H")}).values()
    [got] = get_events(dora, [event_id], properties=["utcStart", "utcEnd"])
    assert (got["utcStart"], got["utcEnd"]) == ("2026-07-01T08:00:00Z", "2026-07-01T10:00:00Z")
    err = dora.error("CalendarEvent/get", {"accountId": dora.account_id, "ids": [event_id],
                                          "properties": ["utcStart", "recurrenceOverrides"]})
    assert err["type"] == "invalidArguments"
    result = event_set(dora, create={"u": {"title": "UTC", "utcStart": "2026-07-02T08:00:00Z", "utcEnd": "2026-07-02T09:30:00Z"}})
    [got] = get_events(dora, [result["created"]["u"]["id"]], properties=["start", "duration", "timeZone"])
    assert (got["start"], got["duration"], got["timeZone"]) == ("2026-07-02T08:00:00", "PT1H30M", "Etc/UTC")
    conflict = event_set(dora, create={"c": {"title": "C", "start": "2026-07-02T08:00:00", "utcStart": "2026-07-02T08:00:00Z"}})
    assert conflict["notCreated"]["c"]["properties"] == ["utcStart"]
    backwards = event_set(dora, create={"b": {"title": "B", "utcStart": "2026-07-02T08:00:00Z", "utcEnd": "2026-07-02T07:00:00Z"}})
    assert backwards["notCreated"]["b"]["properties"] == ["utcEnd"]


def test_dst_gap_start_in_berlin(dora: Client) -> None:
    """[jscal-1.4-types] 02:30 on the spring-forward day (2026-03-29) does not
    exist in Europe/Berlin: the offset before the transition (+01:00) applies."""
    [event_id] = create_events(dora, {"e": event("Gap", "2026-03-29T02:30:00", "PT1H")}).values()
    [got] = get_events(dora, [event_id], properties=["start", "utcStart", "utcEnd"])
    assert got["start"] == "2026-03-29T02:30:00"
    assert (got["utcStart"], got["utcEnd"]) == ("2026-03-29T01:30:00Z", "2026-03-29T02:30:00Z")
    # Shown as 03:30-04:30 CEST that day.
    assert query(dora, {"after": "2026-03-29T03:40:00", "before": "2026-03-29T03:50:00"}, timeZone=BERLIN) == [event_id]
    assert query(dora, {"after": "2026-03-29T04:30:00", "before": "2026-03-29T05:00:00"}, timeZone=BERLIN) == []


def test_floating_event_reads_in_the_asked_zone(dora: Client) -> None:
    """[cal-5.7-getArgs] a floating event's utcStart in the /get timeZone."""
    [event_id] = create_events(dora, {"e": event("Wake", "2026-07-01T07:00:00", tz=None)}).values()
    [utc] = get_events(dora, [event_id], properties=["utcStart"])
    [tokyo] = get_events(dora, [event_id], properties=["utcStart"], timeZone="Asia/Tokyo")
    assert utc["utcStart"] == "2026-07-01T07:00:00Z" and tokyo["utcStart"] == "2026-06-30T22:00:00Z"
    assert query(dora, {"after": "2026-06-30T23:00:00", "before": "2026-07-01T00:00:00"}) == []
    assert query(dora, {"after": "2026-06-30T21:00:00", "before": "2026-06-30T23:00:00"}, timeZone="UTC") == []
    assert query(dora, {"after": "2026-07-01T06:30:00", "before": "2026-07-01T07:30:00"}, timeZone="Asia/Tokyo") == [event_id]


# -- recurrence ----------------------------------------------------------------------------------------


def expand(client: Client, after: str, before: str, **extra: Any) -> list[str]:
    return query(client, {"after": after, "before": before, **extra.pop("filter", {})}, expandRecurrences=True, **extra)


def test_weekly_over_dst_keeps_local_time(dora: Client) -> None:
    """[jscal-4.3.3.1-expansion] [cal-5.11-expand] a weekly 09:00 Berlin event
    stays at 09:00 local across the March change: UTC moves from 08:00 to 07:00."""
    [event_id] = create_events(dora, {"w": weekly("Standup", "2026-03-16T09:00:00", count=4)}).values()
    ids = expand(dora, "2026-03-01T00:00:00", "2026-05-01T00:00:00")
    assert len(ids) == 4
    got = get_events(dora, ids, properties=["start", "utcStart", "recurrenceId", "recurrenceRule", "baseEventId"])
    assert [g["start"][11:] for g in got] == ["09:00:00"] * 4
    assert [g["utcStart"][11:16] for g in got] == ["08:00", "08:00", "07:00", "07:00"]
    assert all(g["baseEventId"] == event_id and g["recurrenceRule"] is None for g in got)
    assert [g["recurrenceId"] for g in got] == [g["start"] for g in got]


def test_expanded_ids_in_get_and_set_override_and_exclusion(dora: Client) -> None:
    """[cal-5.5-recurrence] [cal-5.7-syntheticGet] [cal-5.9-synthetic] updating an
    instance writes a recurrenceOverride; destroying one excludes it; the
    synthetic ids never appear in /changes."""
    state = dora.call("CalendarEvent/get", {"accountId": dora.account_id, "ids": []})["state"]
    [event_id] = create_events(dora, {"w": weekly("Yoga", "2026-09-01T18:00:00", count=5)}).values()
    ids = expand(dora, "2026-09-01T00:00:00", "2026-10-01T00:00:00")
    assert len(ids) == 5
    result = event_set(dora, update={ids[1]: {"title": "Yoga (park)", "start": "2026-09-08T19:00:00"}}, destroy=[ids[2]])
    assert ids[1] in result["updated"] and result["destroyed"] == [ids[2]]
    [base] = get_events(dora, [event_id], properties=["recurrenceOverrides", "title"])
    assert base["title"] == "Yoga"
    assert base["recurrenceOverrides"]["2026-09-15T18:00:00"] == {"excluded": True}
    assert base["recurrenceOverrides"]["2026-09-08T18:00:00"]["title"] == "Yoga (park)"
    after = expand(dora, "2026-09-01T00:00:00", "2026-10-01T00:00:00")
    assert len(after) == 4 and ids[2] not in after
    moved = get_events(dora, [ids[1]], properties=["title", "start", "recurrenceId"])[0]
    assert (moved["title"], moved["start"], moved["recurrenceId"]) == ("Yoga (park)", "2026-09-08T19:00:00", "2026-09-08T18:00:00")
    gone = dora.call("CalendarEvent/get", {"accountId": dora.account_id, "ids": [ids[2], f"{event_id}_20260902T180000"]})
    assert gone["notFound"] == [ids[2], f"{event_id}_20260902T180000"]
    assert expand(dora, "2026-09-01T00:00:00", "2026-10-01T00:00:00", filter={"title": "park"}) == [ids[1]]
    changes = dora.call("CalendarEvent/changes", {"accountId": dora.account_id, "sinceState": state})
    assert changes["created"] == [event_id] and changes["updated"] == []
    missing = event_set(dora, update={f"{event_id}_20260902T180000": {"title": "x"}}, destroy=[f"{event_id}_20270101T000000"])
    assert list(missing["notUpdated"].values())[0]["type"] == "notFound"
    assert list(missing["notDestroyed"].values())[0]["type"] == "notFound"


def test_get_arguments_trim_overrides_and_participants(dora: Client) -> None:
    """[cal-5.7-getArgs] recurrenceOverridesAfter (inclusive) / Before in UTC,
    reduceParticipants (owners and the user's own only)."""
    dora.call("ParticipantIdentity/set", {"accountId": dora.account_id, "create": {"me": {"calendarAddress": "mailto:me@example.com"}}})
    overrides = {"2026-09-08T18:00:00": {"title": "second"}, "2026-09-22T18:00:00": {"excluded": True}}
    [event_id] = create_events(dora, {"w": weekly("Series", "2026-09-01T18:00:00", count=5, recurrenceOverrides=overrides,
                                                  participants={
                                                      "o": {"name": "Owner", "roles": {"owner": True}},
                                                      "m": {"name": "Me", "calendarAddress": "MAILTO:me@EXAMPLE.com", "roles": {"attendee": True}},
                                                      "x": {"name": "Someone", "calendarAddress": "mailto:x@example.com", "roles": {"attendee": True}},
                                                  })}).values()
    [got] = get_events(dora, [event_id], properties=["recurrenceOverrides", "participants"],
                       recurrenceOverridesAfter="2026-09-08T16:00:00Z", recurrenceOverridesBefore="2026-09-22T16:00:00Z",
                       reduceParticipants=True)
    assert list(got["recurrenceOverrides"]) == ["2026-09-08T18:00:00"]
    assert sorted(got["participants"]) == ["m", "o"]
    err = dora.error("CalendarEvent/get", {"accountId": dora.account_id, "ids": [event_id], "timeZone": "Nowhere/Zone"})
    assert err["type"] == "invalidArguments"


def test_rfc8984_rule_names_are_stored_as_bis(dora: Client) -> None:
    """[jscal-A-decision] recurrenceRules with one rule is stored as recurrenceRule;
    excludedRecurrenceRules are kept and expanded."""
    ids = create_events(dora, {
        "one": event("Daily", "2026-10-01T08:00:00", recurrenceRules=[{"frequency": "daily", "count": 3}]),
        "ex": event("Weekdays", "2026-10-05T08:00:00", recurrenceRules=[{"frequency": "daily", "count": 7}],
                    excludedRecurrenceRules=[{"frequency": "weekly", "byDay": [{"day": "sa"}, {"day": "su"}]}]),
    })
    [one] = get_events(dora, [ids["one"]])
    assert one["recurrenceRule"] == {"frequency": "daily", "count": 3} and "recurrenceRules" not in one
    window = expand(dora, "2026-10-05T00:00:00", "2026-10-12T00:00:00", filter={"title": "weekdays"})
    assert len(window) == 5


def test_bad_rrule_and_override_keys(dora: Client) -> None:
    """[jscal-4.3.3-rrule] the recurrence module's paths come back."""
    result = event_set(dora, create={
        "a": event("A", "2026-06-01T10:00:00", recurrenceRule={"frequency": "weekly", "byDay": [{"day": "xx"}]}),
        "b": weekly("B", "2026-06-01T10:00:00", count=0),
        "c": weekly("C", "2026-06-01T10:00:00", recurrenceOverrides={"2026-06-08T10:00:00": {"isDraft": True}}),
    })
    assert result["notCreated"]["a"]["type"] == "invalidProperties"
    assert any(p.startswith("recurrenceRule/byDay") for p in result["notCreated"]["a"]["properties"])
    assert any(p.startswith("recurrenceRule") for p in result["notCreated"]["b"]["properties"])
    assert result["notCreated"]["c"]["properties"] == ["recurrenceOverrides/2026-06-08T10:00:00/isDraft"]


def test_expand_requires_a_window_and_bounds_it(dora: Client) -> None:
    """[cal-5.11-expand] [cal-5.11-errors] one condition with after and before;
    a window longer than maxExpandedQueryDuration is expandDurationTooLarge."""
    args = {"accountId": dora.account_id, "expandRecurrences": True}
    err = dora.error("CalendarEvent/query", {**args, "filter": {"after": "2026-01-01T00:00:00"}})
    assert err["type"] == "invalidArguments"
    err = dora.error("CalendarEvent/query", {**args, "filter": {"operator": "AND", "conditions": [
        {"after": "2026-01-01T00:00:00", "before": "2026-02-01T00:00:00"}]}})
    assert err["type"] == "invalidArguments"
    err = dora.error("CalendarEvent/query", {**args, "filter": {"after": "2026-01-01T00:00:00", "before": "2028-01-01T00:00:00"}})
    assert err["type"] == "expandDurationTooLarge"


def test_forever_rule_and_query_windows(dora: Client) -> None:
    """[cal-5.11.1-filter] after: the event ends after it; before: starts before
    it; an endless rule matches every later window; unexpanded, one id per event."""
    ids = create_events(dora, {
        "forever": weekly("Forever", "2026-01-05T10:00:00"),
        "jan": event("January", "2026-01-20T10:00:00"),
        "long": event("Holiday", "2026-07-25T00:00:00", "P14D", showWithoutTime=True),
    })
    window = {"after": "2030-06-01T00:00:00", "before": "2030-06-15T00:00:00"}
    assert query(dora, window) == [ids["forever"]]
    assert len(expand(dora, **window)) == 2
    assert set(query(dora, {"after": "2026-08-01T00:00:00", "before": "2026-08-02T00:00:00"})) == {ids["forever"], ids["long"]}
    assert query(dora, {"before": "2026-01-06T00:00:00"}) == [ids["forever"]]
    late = {"after": "2026-01-20T10:59:59", "before": "2026-01-20T11:00:00", "title": "january"}
    assert query(dora, late, timeZone=BERLIN) == [ids["jan"]]
    assert query(dora, late) == []  # 10:59:59 UTC is after the end (10:00 UTC)
    assert query(dora, {**late, "after": "2026-01-20T11:00:00", "before": "2026-01-21T00:00:00"}, timeZone=BERLIN) == []
    sorted_ids = query(dora, sort=[{"property": "start", "isAscending": True}])
    assert sorted_ids == [ids["forever"], ids["jan"], ids["long"]]
    expanded = expand(dora, "2026-01-18T00:00:00", "2026-01-27T00:00:00", sort=[{"property": "start", "isAscending": False}])
    starts = [g["utcStart"] for g in get_events(dora, expanded, properties=["utcStart"])]
    assert starts == sorted(starts, reverse=True) and len(starts) == 3


def test_filters_and_sorts(dora: Client) -> None:
    """[cal-5.11.1-filter] [cal-5.11.2-sort] inCalendar, uid, text, title,
    description, location, owner, attendee; sorts start, uid, created, updated."""
    work = dora.call("Calendar/set", {"accountId": dora.account_id, "create": {"w": {"name": "Work"}}})["created"]["w"]["id"]
    ids = create_events(dora, {
        "a": event("Board meeting", "2026-05-01T10:00:00", uid="u-b", description="Quarterly numbers",
                   locations={"l": {"name": "Berlin office"}}, calendarIds={work: True},
                   participants={"o": {"name": "Olga Owner", "roles": {"owner": True}},
                                 "x": {"name": "Xavier Attendee", "email": "xav@example.com", "roles": {"attendee": True}}}),
        "b": event("Dentist", "2026-04-01T10:00:00", uid="u-a", virtualLocations={"v": {"uri": "https://meet.example.com/teeth", "name": "Video dentist"}}),
    })
    a, b = ids["a"], ids["b"]
    assert query(dora, {"inCalendar": work}) == [a]
    assert query(dora, {"uid": "u-a"}) == [b]
    assert query(dora, {"text": "quarterly"}) == [a]
    assert query(dora, {"title": "dentist"}) == [b]
    assert query(dora, {"description": "numbers"}) == [a]
    assert query(dora, {"location": "berlin"}) == [a]
    assert query(dora, {"location": "video"}) == [b]
    assert query(dora, {"owner": "olga"}) == [a]
    assert query(dora, {"owner": "xavier"}) == []
    assert query(dora, {"attendee": "xav@example.com"}) == [a]
    assert query(dora, {"operator": "NOT", "conditions": [{"title": "board"}]}) == [b]
    assert query(dora, sort=[{"property": "start"}]) == [b, a]
    assert query(dora, sort=[{"property": "uid", "isAscending": False}]) == [a, b]
    assert query(dora, sort=[{"property": "created"}, {"property": "updated"}]) in ([a, b], [b, a])
    assert query(dora, sort=[{"property": "recurrenceId"}]) == sorted([a, b])
    err = dora.error("CalendarEvent/query", {"accountId": dora.account_id, "filter": {"colour": "red"}})
    assert err["type"] == "unsupportedFilter"


def test_query_changes(dora: Client) -> None:
    """[cal-5.12-queryChanges]"""
    first = dora.call("CalendarEvent/query", {"accountId": dora.account_id, "filter": {"title": "tea"}})
    [event_id] = create_events(dora, {"t": event("Tea", "2026-05-05T16:00:00")}).values()
    changes = dora.call("CalendarEvent/queryChanges", {"accountId": dora.account_id, "filter": {"title": "tea"},
                                                       "sinceQueryState": first["queryState"]})
    assert changes["added"] == [{"id": event_id, "index": 0}]
    err = dora.error("CalendarEvent/queryChanges", {"accountId": dora.account_id, "sinceQueryState": first["queryState"],
                                                    "expandRecurrences": True})
    assert err["type"] == "cannotCalculateChanges"


def test_destroy_event_and_changes(dora: Client) -> None:
    """[cal-5.8-changes] the standard /changes over stored ids."""
    [event_id] = create_events(dora, {"e": event("Gone", "2026-05-05T16:00:00")}).values()
    state = dora.call("CalendarEvent/get", {"accountId": dora.account_id, "ids": []})["state"]
    assert event_set(dora, destroy=[event_id])["destroyed"] == [event_id]
    changes = dora.call("CalendarEvent/changes", {"accountId": dora.account_id, "sinceState": state})
    assert changes["destroyed"] == [event_id]
    assert query(dora, {"title": "gone"}) == []


def test_copy_between_accounts(dora: Client) -> None:
    """[cal-5.10-copy] the copy keeps its uid and goes into the target's default
    calendar; onSuccessDestroyOriginal removes the original."""
    other = other_account(dora)
    [event_id] = create_events(dora, {"e": weekly("Copied", "2026-05-04T09:00:00", count=3, uid="copy-uid")}).values()
    response = dora.request([["CalendarEvent/copy", {
        "fromAccountId": dora.account_id, "accountId": other,
        "create": {"x": {"id": event_id}, "y": {"id": "Emissing"}}, "onSuccessDestroyOriginal": True}, "0"]])
    [copy, destroyed] = response["methodResponses"]
    assert copy[0] == "CalendarEvent/copy" and copy[1]["notCreated"]["y"]["type"] == "notFound"
    new_id = copy[1]["created"]["x"]["id"]
    assert destroyed[0] == "CalendarEvent/set" and destroyed[1]["destroyed"] == [event_id]
    [got] = get_events(dora, [new_id], other)
    assert got["uid"] == "copy-uid" and got["calendarIds"] == {default_calendar(dora, other): True}


# -- ParticipantIdentity and CalendarEventNotification ------------------------------------------


def test_participant_identities_and_is_origin(dora: Client) -> None:
    """[cal-3-props] [cal-3.3-set] [cal-3-matching] the first identity is the
    default; onSuccessSetIsDefault moves it; an event organised by another
    address is not origin (and its updated is not set by the server)."""
    result = dora.call("ParticipantIdentity/set", {"accountId": dora.account_id, "create": {
        "a": {"name": "Dora", "calendarAddress": "mailto:dora@Example.COM"}}})
    first = result["created"]["a"]["id"]
    second = dora.call("ParticipantIdentity/set", {"accountId": dora.account_id, "create": {
        "b": {"calendarAddress": "mailto:d@example.org"}}, "onSuccessSetIsDefault": "#b"})["created"]["b"]["id"]
    listed = {i["id"]: i for i in dora.call("ParticipantIdentity/get", {"accountId": dora.account_id})["list"]}
    assert listed[second]["isDefault"] is True and listed[first]["isDefault"] is False and listed[first]["name"] == "Dora"
    bad = dora.call("ParticipantIdentity/set", {"accountId": dora.account_id, "create": {"c": {"calendarAddress": "not a uri"}}})
    assert bad["notCreated"]["c"]["properties"] == ["calendarAddress"]
    ids = create_events(dora, {
        "mine": event("Mine", "2026-05-01T10:00:00", organizerCalendarAddress="mailto:dora@example.com"),
        "theirs": event("Theirs", "2026-05-01T10:00:00", organizerCalendarAddress="mailto:boss@example.net",
                        updated="2026-01-01T00:00:00Z"),
    })
    got = {e["id"]: e for e in get_events(dora, list(ids.values()), properties=["isOrigin", "updated"])}
    assert got[ids["mine"]]["isOrigin"] is True and got[ids["theirs"]]["isOrigin"] is False
    assert got[ids["theirs"]]["updated"] == "2026-01-01T00:00:00Z"


def test_notifications_empty_by_default_and_destroy_only(dora: Client) -> None:
    """[cal-7.3-set] [cal-7.4-query] no sharing: nothing creates notifications;
    the methods answer, and /set refuses create and update."""
    args = {"accountId": dora.account_id}
    assert dora.call("CalendarEventNotification/get", {**args, "ids": None})["list"] == []
    assert dora.call("CalendarEventNotification/query", {**args, "filter": {"type": "created"},
                                                          "sort": [{"property": "created"}]})["ids"] == []
    result = dora.call("CalendarEventNotification/set", {**args, "create": {"n": {"type": "created"}},
                                                         "update": {"Nx": {"comment": "hi"}}, "destroy": ["Nnone"]})
    assert result["notCreated"]["n"]["type"] == "forbidden" and result["notUpdated"]["Nx"]["type"] == "forbidden"
    assert result["notDestroyed"]["Nnone"]["type"] == "notFound"


def test_push_state_change_for_every_type(core: Core, dora: Client) -> None:
    """[cal-10-registrations] every type moves in StateChange."""
    calendars(dora)
    feed = PushFeed(core, dora.principal)
    calendars(dora, other_account(dora))
    feed.poll()
    create_events(dora, {"e": event("Push", "2026-05-01T10:00:00")})
    state = dora.call("CalendarEvent/get", {"accountId": dora.account_id, "ids": []})["state"]
    assert feed.poll()["changed"][dora.account_id] == {"CalendarEvent": state}
    dora.call("Calendar/set", {"accountId": dora.account_id, "create": {"c": {"name": "C"}}})
    assert set(feed.poll()["changed"][dora.account_id]) == {"Calendar"}
    dora.call("ParticipantIdentity/set", {"accountId": dora.account_id, "create": {"p": {"calendarAddress": "mailto:x@example.com"}}})
    assert set(feed.poll()["changed"][dora.account_id]) == {"ParticipantIdentity"}
    assert "CalendarEventNotification" in core.registry.push_types()


# -- over HTTP ----------------------------------------------------------------------------------------


@pytest.fixture
def http(tmp_path: Path) -> Iterator[falcon.testing.TestClient]:
    from jmapserver.app import create_app
    from jmapserver.config import Settings
    from jmapserver.wiring import build_core, check_data_dir

    settings = Settings(data=tmp_path / "data")
    check_data_dir(settings, create=True)
    core = build_core(settings)
    add_account(core, "erin", "erin-pw")
    yield falcon.testing.TestClient(create_app(core))
    core.backend.close()


def test_over_http(http: falcon.testing.TestClient) -> None:
    """[cal-1.5.1-capability] the session advertises calendars, and a batch
    creates a weekly event, expands a month and reads the instances."""
    auth = {"Authorization": "Basic " + base64.b64encode(b"erin:erin-pw").decode()}
    session = http.simulate_get("/.well-known/jmap", headers=auth).json
    assert CALENDARS in session["capabilities"]
    account = session["primaryAccounts"][CALENDARS]
    body = {
        "using": ["urn:ietf:params:jmap:core", CALENDARS],
        "methodCalls": [
            ["CalendarEvent/set", {"accountId": account, "create": {"e": weekly("Http", "2026-02-02T09:00:00", count=10)}}, "0"],
            ["CalendarEvent/query", {"accountId": account, "expandRecurrences": True, "timeZone": BERLIN,
                                     "filter": {"after": "2026-02-01T00:00:00", "before": "2026-03-01T00:00:00"}}, "1"],
            ["CalendarEvent/get", {"accountId": account, "#ids": {"resultOf": "1", "name": "CalendarEvent/query", "path": "/ids"},
                                   "properties": ["start", "utcStart"]}, "2"],
        ],
    }
    response = http.simulate_post("/jmap/api/", headers=auth, json=body)
    assert response.status_code == 200
    [created, queried, got] = response.json["methodResponses"]
    assert "e" in created[1]["created"]
    assert len(queried[1]["ids"]) == 4
    assert [e["start"] for e in got[1]["list"]] == [f"2026-02-{d:02d}T09:00:00" for d in (2, 9, 16, 23)]


def test_floating_recurring_event_in_the_query_zone(dora: Client) -> None:
    """[cal-5.11-queryArgs] a floating weekly event happens at 07:00 wherever the
    query's timeZone is, expanded or not."""
    [event_id] = create_events(dora, {"f": weekly("Run", "2026-07-06T07:00:00", count=3, tz=None)}).values()
    tokyo = {"after": "2026-07-13T06:30:00", "before": "2026-07-13T07:30:00"}
    assert query(dora, tokyo, timeZone="Asia/Tokyo") == [event_id]
    assert len(expand(dora, **tokyo, timeZone="Asia/Tokyo")) == 1
    assert query(dora, {"after": "2026-07-20T08:00:00", "before": "2026-07-21T00:00:00"}, timeZone="Asia/Tokyo") == []
