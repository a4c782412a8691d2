"""The event collection's owner: stored events (published from the outboxes, read as ServiceProblemEventRecords,
leased, fanned out and marked). Hub subscriptions are events/subscriptions.py's `SubscriptionRepository`."""
from __future__ import annotations

import uuid

import pymongo
from pymongo.errors import BulkWriteError

from tmf_server.store.database import EVENTS, duplicate_key_indexes
from tmf_server.store.instants import epoch_ms
from tmf_server.store.reader import CollectionReader

FANOUT_PENDING, FANOUT_DONE = "pending", "done"
# What an event published while no subscription is active carries: its fan-out is done when it is stored (the
# fan-out would find no subscription either; a lease and a second update per event saved).
FANOUT_STORED_DONE = {"_fanout": FANOUT_DONE}
# The fan-out lease on an event; absent until a dispatcher claims it, removed when the fan-out is done.
LEASE_FIELDS = ("_fanoutToken", "_fanoutOwner", "_fanoutUntil")

EVENT_INDEXES = [
    [("_fanout", pymongo.ASCENDING)],
    [("_problemId", pymongo.ASCENDING), ("_problemVersion", pymongo.ASCENDING)],
]
FANOUT_FIELDS = {"_id": 1, "eventType": 1, "eventTime": 1, "_problemId": 1, "_problemVersion": 1, "_seq": 1,
                 "_fanoutToken": 1}


def new_lease(owner: str, now_ms: int, lease_ms: int) -> tuple[str, dict]:
    """A fan-out lease: its token, and the fields an event it covers carries."""
    token = uuid.uuid4().hex
    return token, {"_fanoutToken": token, "_fanoutOwner": owner, "_fanoutUntil": now_ms + lease_ms}


class EventSource:
    """The only code that writes the event collection: the outbox's published events, then their fan-out state."""

    def __init__(self, db):
        self.collection = db[EVENTS]

    def insert_published(self, events: list[dict]) -> list[dict]:
        """Stores events moved out of an outbox; returns those not already stored (by an earlier, interrupted
        publishing of the same outbox: a repeat is a harmless duplicate key)."""
        try:
            self.collection.insert_many(events, ordered=False)
        except BulkWriteError as exc:
            repeated = duplicate_key_indexes(exc)
            if repeated is None:
                raise
            skipped = set(repeated)
            return [event for index, event in enumerate(events) if index not in skipped]
        return events

    def ensure_indexes(self) -> None:
        for keys in EVENT_INDEXES:
            self.collection.create_index(keys)

    def claim_pending(self, owner: str, now_ms: int, lease_ms: int, limit: int) -> tuple[str, list[dict]]:
        """Leases up to `limit` events awaiting fan-out: (the lease token, the events this caller now owns, each
        with its `notification` and `_retaken`: True when it was taken over from a lease that ended, so its
        fan-out may have begun)."""
        token, lease = new_lease(owner, now_ms, lease_ms)
        # Never leased: one conditional update_many, then read back what carries this token (per-document
        # atomic on MongoDB; on the embedded engine every command runs alone).
        fresh = [e["_id"] for e in self.collection.find(
            {"_fanout": {"$eq": FANOUT_PENDING}, "_fanoutUntil": {"$exists": False}}, {"_id": 1}).limit(limit)]
        leased = 0
        if fresh:
            leased += self.collection.update_many({"_id": {"$in": fresh}, "_fanout": FANOUT_PENDING,
                                                   "_fanoutUntil": {"$exists": False}}, {"$set": lease}).modified_count
        # Leased by a dispatcher that did not finish in time (it died): taken over one by one, within the batch
        # (not when fresh events filled it: limit(0) would mean no limit).
        room = limit - len(fresh)
        stale_events = self.collection.find({"_fanout": {"$eq": FANOUT_PENDING}, "_fanoutUntil": {"$lte": now_ms}},
                                            {"_id": 1, "_fanoutToken": 1}).limit(room) if room > 0 else []
        for stale in stale_events:
            leased += self.collection.update_one({"_id": stale["_id"], "_fanout": FANOUT_PENDING,
                                                  "_fanoutToken": stale.get("_fanoutToken")},
                                                 {"$set": lease}).modified_count
        if not leased:  # nothing carries the token: no read-back (the idle dispatcher's every round)
            return token, []
        owned = list(self.collection.find({"_fanoutToken": {"$eq": token}, "_fanout": {"$eq": FANOUT_PENDING}},
                                          {**FANOUT_FIELDS, "notification": 1}))
        never_leased = set(fresh)
        for event in owned:  # not stored: whether an earlier fan-out of it may have begun
            event["_retaken"] = event["_id"] not in never_leased
        return token, owned

    def fanout_backlog(self, limit: int) -> tuple[int, int | None]:
        """(events awaiting fan-out, the epoch ms of the oldest among up to `limit` of them), from the _fanout index."""
        query = {"_fanout": FANOUT_PENDING}
        count = CollectionReader(self.collection.database, EVENTS).count(query)
        if not count:
            return 0, None
        times = [epoch_ms(e["eventTime"]) for e in self.collection.find(query, {"eventTime": 1}).limit(limit)
                 if isinstance(e.get("eventTime"), str)]
        return count, min(times, default=None)

    def mark_done(self, event_ids: list[str], token: str) -> int:
        return self.collection.update_many(
            {"_id": {"$in": event_ids}, "_fanoutToken": token},
            {"$set": {"_fanout": FANOUT_DONE}, "$unset": {field: "" for field in LEASE_FIELDS}}).modified_count

    def release(self, event_ids: list[str], token: str) -> None:
        self.collection.update_many({"_id": {"$in": event_ids}, "_fanoutToken": token},
                                    {"$unset": {field: "" for field in LEASE_FIELDS}})

    def earlier_pending(self, problem_id: str, version: int, seq: int) -> bool:
        """Whether an earlier event of the problem (by version, then seq) still awaits fan-out."""
        for event in self.collection.find({"_problemId": {"$eq": problem_id}, "_fanout": {"$eq": FANOUT_PENDING},
                                           "_problemVersion": {"$lte": version}},
                                          {"_problemVersion": 1, "_seq": 1}):
            if (event["_problemVersion"], event["_seq"]) < (version, seq):
                return True
        return False

    def notifications(self, event_ids: list[str]) -> dict[str, dict]:
        """eventId -> the notification JSON to POST."""
        return {e["_id"]: e.get("notification") for e in
                self.collection.find({"_id": {"$in": event_ids}}, {"notification": 1})}


_BATCH = 100  # outboxes published per batch before a read of the event records
# At most this many outboxes are published before a read: what waits beyond it is a backlog the dispatchers are
# working through, and a read must not wait for all of it (a storm can leave tens of thousands).
PUBLISHED_BEFORE_READ = 500


class EventRecords(CollectionReader):
    """Reads events after publishing the outboxes still waiting for the dispatcher (up to `publish_limit`), so
    that a client reads the events of the changes it was just answered about."""

    def __init__(self, db, outbox, publish_limit: int = PUBLISHED_BEFORE_READ):
        """`outbox`: the `events.outbox.Outbox` whose waiting events are published before each read."""
        super().__init__(db, EVENTS)
        self.outbox = outbox
        self.publish_limit = publish_limit

    def _publish_waiting(self) -> None:
        left = self.publish_limit
        while left > 0:
            batch = min(_BATCH, left)
            if self.outbox.flush_pending(batch) < batch:
                return
            left -= batch

    def get(self, resource_id: str, projection: dict | None = None) -> dict | None:
        self._publish_waiting()
        return super().get(resource_id, projection)

    def find(self, filter_: dict, sort, offset: int, limit: int, projection: dict | None = None,
             max_time_ms: int | None = None) -> list[dict]:
        self._publish_waiting()
        return super().find(filter_, sort, offset, limit, projection, max_time_ms)
