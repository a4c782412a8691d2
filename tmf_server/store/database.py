"""The pymongo client, the collections and their indexes."""
from __future__ import annotations

import pymongo

from tmf_server.settings import Settings

SERVICE_PROBLEMS = "serviceProblem"
EVENTS = "serviceProblemEvent"  # one document per event: the ServiceProblemEventRecord and its fan-out state
SUBSCRIPTIONS = "hubSubscription"
DELIVERIES = "delivery"  # one document per (event, subscription)

# Attributes that lists filter and sort on. Arrays of sub-documents are indexed for $elemMatch.
SERVICE_PROBLEM_INDEXES = [
    # Not compound with _id: the embedded engine then rejects every insert (docs/mongodb.md).
    [("creationDate", pymongo.DESCENDING)],
    [("status", pymongo.ASCENDING)],
    [("priority", pymongo.ASCENDING)],
    [("category", pymongo.ASCENDING)],
    [("lastUpdate", pymongo.ASCENDING)],
    [("originatorParty.id", pymongo.ASCENDING)],
    [("relatedParty.id", pymongo.ASCENDING)],
    [("affectedService.id", pymongo.ASCENDING)],
    [("_outboxPending", pymongo.ASCENDING)],  # documents whose events are not yet published
]


def connect(uri: str, settings: Settings) -> pymongo.MongoClient:
    # Short timeouts: an unreachable database becomes a quick 503, and pymongo reconnects by itself.
    return pymongo.MongoClient(
        uri,
        serverSelectionTimeoutMS=settings.db_timeout_ms,
        connectTimeoutMS=settings.db_timeout_ms,
        socketTimeoutMS=max(10_000, settings.db_timeout_ms * 5),
        tz_aware=True,
    )


def ensure_indexes(db) -> None:
    for keys in SERVICE_PROBLEM_INDEXES:
        db[SERVICE_PROBLEMS].create_index(keys)
