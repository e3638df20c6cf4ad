"""Names and limits of the calendars capability (draft-ietf-jmap-calendars-27)."""

from __future__ import annotations

CALENDARS = "urn:ietf:params:jmap:calendars"
CALENDAR = "Calendar"
EVENT = "CalendarEvent"
NOTIFICATION = "CalendarEventNotification"
IDENTITY = "ParticipantIdentity"

#: [cal-1.5.1-capability] null: an event may be in any number of calendars.
MAX_CALENDARS_PER_EVENT: int | None = None
#: [cal-1.5.1-capability] the range of dates (start, until, recurrence ids...) accepted.
MIN_DATE_TIME = "1900-01-01T00:00:00Z"
MAX_DATE_TIME = "2199-12-31T23:59:59Z"
#: [cal-1.5.1-capability] the longest after→before window of an expanded query.
MAX_EXPANDED_QUERY_DURATION = "P400D"
MAX_EXPANDED_QUERY_SECONDS = 400 * 86400
#: [cal-1.5.1-capability] participants per event.
MAX_PARTICIPANTS_PER_EVENT = 1000
#: The most instances one expanded query returns ([cal-9.3-dos]).
MAX_EXPANDED_INSTANCES = 100_000

#: [cal-4-props] a name is 1 to 255 octets of UTF-8.
MAX_NAME_OCTETS = 255
DEFAULT_CALENDAR_NAME = "Calendar"

#: [cal-4-rights] the owner may do everything.
OWNER_RIGHTS = {
    "mayReadFreeBusy": True,
    "mayReadItems": True,
    "mayWriteAll": True,
    "mayWriteOwn": True,
    "mayUpdatePrivate": True,
    "mayRSVP": True,
    "mayShare": True,
    "mayDelete": True,
}

#: Index of events by calendar id: (calendarId, eventId).
CALENDAR_INDEX = "calendar"
#: Index of events by uid.
UID_INDEX = "uid"
#: Index of events by their time span: (utcEnd, utcStart) in epoch seconds.
SPAN_INDEX = "span"
#: Index of notifications by created time.
NOTIFICATION_CREATED_INDEX = "sort:created"

#: An event that recurs forever ends here in the span index (epoch seconds).
FOREVER = 10.0**11
#: Floating events (no timeZone) may happen at any offset: their span is
#: widened by this much in the index, and checked exactly per query.
FLOATING_SLACK = 14 * 3600
