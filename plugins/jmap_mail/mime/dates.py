"""The Date form ([mail-4.1.2.6-date]): RFC 5322 date-time (with the obsolete syntax)
to a JMAP Date string that keeps the sender's offset, e.g. ``2024-01-02T03:04:05+01:00``.

Written here rather than taken from ``email.utils.parsedate_tz`` (which accepts
nonsense such as hour 99 and loses the distinction between ``-0000`` and ``+0000``)
or ``mailparser.dates`` (which reports the offset only to a tenth of an hour).
"""

from __future__ import annotations

import datetime
import re

_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_ZONES = {"ut": 0, "utc": 0, "gmt": 0, "z": 0, "est": -300, "edt": -240, "cst": -360,
          "cdt": -300, "mst": -420, "mdt": -360, "pst": -480, "pdt": -420}
_COMMENT = re.compile(r"\([^()]*\)")
_RFC5322 = re.compile(
    r"(?:[a-z]{3,9}\s*,?\s*)?"
    r"(?P<day>\d{1,2})\s*[-\s]\s*(?P<month>[a-z]{3})[a-z]*\.?\s*[-\s]\s*(?P<year>\d{2,4})\s+"
    r"(?P<hour>\d{1,2})\s*:\s*(?P<minute>\d{2})(?:\s*:\s*(?P<second>\d{2}))?(?:\.\d+)?"
    r"\s*(?P<zone>[+-]\s?\d{1,4}|[a-z]{1,5})?\b.*",
    re.I | re.S | re.ASCII,
)
# asctime-style, seen from old tools: "Mon Jan  1 10:00:00 2024 [+0000]"
_ASCTIME = re.compile(
    r"(?:[a-z]{3,9}\s*,?\s*)?(?P<month>[a-z]{3})[a-z]*\s+(?P<day>\d{1,2})\s+"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?\s+(?P<year>\d{4})"
    r"\s*(?P<zone>[+-]\d{4}|[a-z]{1,5})?\b.*",
    re.I | re.S | re.ASCII,
)
_ISO = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})[T ](?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:\.\d+)?)?\s*(?P<zone>Z|[+-]\d{2}:?\d{2})?\s*",
    re.I | re.ASCII,
)


def _zone_minutes(zone: str | None) -> int | None:
    """Offset in minutes; unknown/military/missing zones read as UTC (RFC 5322 §4.3)."""
    if not zone:
        return 0
    zone = zone.replace(" ", "").replace(":", "")
    if zone[0] in "+-":
        digits = zone[1:]
        if len(digits) <= 2:
            digits = digits.rjust(2, "0") + "00"
        elif len(digits) == 3:
            digits = "0" + digits
        hours, minutes = int(digits[:2]), int(digits[2:])
        if hours > 23 or minutes > 59:
            return None
        total = hours * 60 + minutes
        return -total if zone[0] == "-" else total
    return _ZONES.get(zone.lower(), 0)


def _year(text: str) -> int:
    year = int(text)
    if len(text) == 2:
        return year + (2000 if year < 50 else 1900)
    if len(text) == 3:
        return year + 1900
    return year


def parse_date(raw: str) -> datetime.datetime | None:
    """An aware datetime in the header's own offset, or None when unparsable."""
    if len(raw) > 512:
        raw = raw[:512]
    text = raw.strip()
    for _ in range(4):
        if "(" not in text:
            break
        text = _COMMENT.sub(" ", text)
    found = _RFC5322.match(text) or _ASCTIME.match(text)
    if found:
        month = _MONTHS.get(found.group("month").lower())
    else:
        found = _ISO.fullmatch(text)
        month = int(found.group("month")) if found else None
    if found is None or month is None:
        return None
    offset = _zone_minutes(found.group("zone"))
    if offset is None:
        return None
    second = int(found.group("second") or 0)
    try:
        return datetime.datetime(
            _year(found.group("year")), month, int(found.group("day")),
            int(found.group("hour")), int(found.group("minute")), min(second, 59),
            tzinfo=datetime.timezone(datetime.timedelta(minutes=offset)),
        )
    except ValueError:
        return None


def jmap_date(value: datetime.datetime) -> str:
    """RFC 3339 as JMAP wants it: no fractional seconds, ``Z`` for UTC, else ±hh:mm."""
    offset = value.utcoffset() or datetime.timedelta(0)
    base = (f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
            f"T{value.hour:02d}:{value.minute:02d}:{value.second:02d}")
    if not offset:
        return base + "Z"
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{base}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def date_form(raw: str) -> str | None:
    """The Date form of a Raw value, or None."""
    parsed = parse_date(raw)
    return jmap_date(parsed) if parsed is not None else None


_JMAP_DATE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})", re.ASCII
)


def parse_jmap_date(value: str) -> datetime.datetime | None:
    """A JMAP Date / UTCDate string (RFC 3339, uppercase T and Z) to an aware datetime."""
    found = _JMAP_DATE.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        return None
    year, month, day, hour, minute, second = (int(found.group(i)) for i in range(1, 7))
    zone = found.group(8)
    offset = 0 if zone == "Z" else (int(zone[1:3]) * 60 + int(zone[4:6])) * (-1 if zone[0] == "-" else 1)
    if abs(offset) >= 24 * 60:
        return None
    try:
        return datetime.datetime(year, month, day, hour, minute, min(second, 59),
                                 tzinfo=datetime.timezone(datetime.timedelta(minutes=offset)))
    except ValueError:
        return None
