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
    # Dates through their epoch-millisecond copies (store/instants.py), which filters and sorts use.
    [("_creationDateMs", pymongo.DESCENDING)],
    [("status", pymongo.ASCENDING)],
    [("priority", pymongo.ASCENDING)],
    [("category", pymongo.ASCENDING)],
    [("_lastUpdateMs", pymongo.ASCENDING)],
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


# Indexes of earlier versions that no query uses any more (each costs every write).
RETIRED_INDEXES = ("creationDate_-1", "lastUpdate_1")


def ensure_indexes(db) -> None:
    collection = db[SERVICE_PROBLEMS]
    for keys in SERVICE_PROBLEM_INDEXES:
        collection.create_index(keys)
    existing = {index["name"] for index in collection.list_indexes()}
    for name in RETIRED_INDEXES:
        if name in existing:
            collection.drop_index(name)
