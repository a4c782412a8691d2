"""The one stored form of a date-time, and how a date-time in a body or a query string is read.

Shared by the query translation, the problem rules, the intake and the event schedule: it lives here, above them.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone


def canonical_datetime(value: datetime) -> str:
    """The one stored form of a date-time: UTC, milliseconds, 'Z' (so strings order like times)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    try:
        value = value.astimezone(timezone.utc)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00 is in the year 10000 in UTC
        raise ValueError(f"{value.isoformat()} is outside the years 0001 to 9999 in UTC.") from None
    # Not strftime: its %Y does not pad years before 1000 to four digits, which RFC 3339 requires.
    return (f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:"
            f"{value.second:02d}.{value.microsecond // 1000:03d}Z")


_DECODED_PLUS_OFFSET = re.compile(r"(T[\d:.]+) (\d\d:?\d\d)$")


def parse_datetime(text: str) -> datetime:
    # An unencoded '+' of an offset arrives as a space in a query string: read it back as '+'.
    text = _DECODED_PLUS_OFFSET.sub(r"\1+\2", text.strip())
    return datetime.fromisoformat(text.replace("z", "Z"))
