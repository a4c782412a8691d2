"""When a failed delivery is tried again: the schedule with jitter, Retry-After, and when to give up."""
from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from tmf_server.dates import canonical_datetime

JITTER = 0.10  # each scheduled delay is drawn from [0.9 d, 1.1 d]


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None if absent or invalid."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def next_delay(failures: int, schedule: tuple[float, ...], retry_after: float | None = None,
               max_retry_after: float = 36000.0, rng: random.Random | None = None) -> float | None:
    """Seconds until the next attempt after `failures` failed attempts in this round, or None: park it.

    The n-th failure waits schedule[n-1] (from that failure, as in Standard Webhooks), jittered by ±10%; a
    Retry-After later than that wins, capped at `max_retry_after`.
    """
    if failures < 1 or failures > len(schedule):
        return None
    base = max(0.0, float(schedule[failures - 1]))
    delay = max(0.0, base * (rng or random).uniform(1 - JITTER, 1 + JITTER))
    if retry_after is not None:
        delay = max(delay, min(max(0.0, retry_after), max_retry_after))
    return delay


def utc_iso(epoch_seconds: float) -> str:
    """An epoch time in the project's one stored date form (UTC, milliseconds, 'Z')."""
    return canonical_datetime(datetime.fromtimestamp(epoch_seconds, tz=UTC))
