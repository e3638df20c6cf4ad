"""JMAP dates ([core-1.4-date]): UTCDate strings as stored and compared.

Emails store ``receivedAt`` as ``YYYY-MM-DDTHH:MM:SSZ``: fixed width and
always UTC, so string order is time order and index keys sort by time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from msgspec import Meta

#: A date-time with an explicit offset, as filters and arguments take it.
AwareDateTime = Annotated[datetime, Meta(tz=True)]


def utc_date(moment: datetime) -> str:
    """The canonical UTCDate string of a moment (fractions dropped)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_utc() -> str:
    return utc_date(datetime.now(UTC))


def sort_seconds(date: str | None) -> float | None:
    """A JMAP Date (any offset) as seconds since the epoch, for sorting."""
    if not date:
        return None
    try:
        return datetime.fromisoformat(date.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
