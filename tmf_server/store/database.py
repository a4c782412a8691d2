"""The pymongo client and the names of the collections (each collection's indexes are its repository's)."""
from __future__ import annotations

import pymongo

from tmf_server.settings import Settings

SERVICE_PROBLEMS = "serviceProblem"
EVENTS = "serviceProblemEvent"  # one document per event: the ServiceProblemEventRecord and its fan-out state
SUBSCRIPTIONS = "hubSubscription"
DELIVERIES = "delivery"  # one document per (event, subscription)


def connect(uri: str, settings: Settings) -> pymongo.MongoClient:
    # Short timeouts: an unreachable database becomes a quick 503, and pymongo reconnects by itself.
    return pymongo.MongoClient(
        uri,
        serverSelectionTimeoutMS=settings.db_timeout_ms,
        connectTimeoutMS=settings.db_timeout_ms,
        socketTimeoutMS=max(10_000, settings.db_timeout_ms * 5),
        tz_aware=True,
    )
