"""The pymongo client and the names of the collections (each collection's indexes are its repository's)."""
from __future__ import annotations

import pymongo

from tmf_server.settings import Settings

SERVICE_PROBLEMS = "serviceProblem"
EVENTS = "serviceProblemEvent"  # one document per event: the ServiceProblemEventRecord and its fan-out state
SUBSCRIPTIONS = "hubSubscription"
DELIVERIES = "delivery"  # one document per (event, subscription)


DUPLICATE_KEY = 11000  # MongoDB's error code for a duplicate key, also the embedded engine's


def duplicate_key_indexes(error) -> list[int] | None:
    """The positions a bulk write refused as duplicate keys, or None when it failed for any other reason too."""
    errors = error.details.get("writeErrors", [])
    if not errors or any(e.get("code") != DUPLICATE_KEY for e in errors):
        return None
    return [e["index"] for e in errors]


def connect(uri: str, settings: Settings) -> pymongo.MongoClient:
    # Short timeouts: an unreachable database becomes a quick 503, and pymongo reconnects by itself.
    return pymongo.MongoClient(
        uri,
        serverSelectionTimeoutMS=settings.db_timeout_ms,
        connectTimeoutMS=settings.db_timeout_ms,
        socketTimeoutMS=max(10_000, settings.db_timeout_ms * 5),
        tz_aware=True,
    )
