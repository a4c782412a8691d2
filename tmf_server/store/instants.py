"""Integer copies of date-times, for queries the embedded engine and MongoDB both answer from an index.

A top-level date-time attribute of a stored resource (`creationDate`) is kept twice: as the canonical text the API
returns (`2026-01-31T08:00:00.123Z`) and as integer epoch milliseconds in an internal field (`_creationDateMs`).
Filters and sorts on the attribute use the integer: exact to the millisecond (the text holds milliseconds), ordered
like the instants, and answered by the engine's SQL path with its index (a guarded string comparison is evaluated
in Python there, over every document: docs/mongodb.md). The API never shows the copy (internal `_` fields).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MILLISECOND = timedelta(milliseconds=1)


def instant_field(attribute: str) -> str:
    """The internal field holding the epoch-millisecond copy of a date-time attribute."""
    return f"_{attribute}Ms"


def epoch_ms(canonical: str) -> int:
    """Epoch milliseconds of a canonical date-time text (UTC, milliseconds, 'Z')."""
    moment = datetime.fromisoformat(canonical.replace("Z", "+00:00"))
    return (moment - _EPOCH) // _MILLISECOND


def with_instants(document: dict, attributes) -> dict:
    """`document` with the integer copy of each of `attributes` it holds as text (stale copies dropped)."""
    for attribute in attributes:
        value = document.get(attribute)
        if isinstance(value, str):
            document[instant_field(attribute)] = epoch_ms(value)
        else:
            document.pop(instant_field(attribute), None)
    return document
