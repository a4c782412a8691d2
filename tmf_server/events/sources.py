"""pymongo access to what the event producer writes: stored events (read, fan-out lease and mark) and hub subscriptions."""
from __future__ import annotations

import uuid

import pymongo

from tmf_server.store.database import EVENTS, SUBSCRIPTIONS
from tmf_server.store.instants import epoch_ms
from tmf_server.store.reader import CollectionReader

FANOUT_PENDING, FANOUT_DONE = "pending", "done"
# The fan-out lease on an event; absent until a dispatcher claims it, removed when the fan-out is done.
LEASE_FIELDS = ("_fanoutToken", "_fanoutOwner", "_fanoutUntil")

EVENT_INDEXES = [
    [("_fanout", pymongo.ASCENDING)],
    [("_problemId", pymongo.ASCENDING), ("_problemVersion", pymongo.ASCENDING)],
]
FANOUT_FIELDS = {"_id": 1, "eventType": 1, "eventTime": 1, "_problemId": 1, "_problemVersion": 1, "_seq": 1,
                 "_fanoutToken": 1}


class EventSource:
    def __init__(self, db):
        self.collection = db[EVENTS]

    def ensure_indexes(self) -> None:
        for keys in EVENT_INDEXES:
            self.collection.create_index(keys)

    def claim_pending(self, owner: str, now_ms: int, lease_ms: int, limit: int) -> tuple[str, list[dict]]:
        """Leases up to `limit` events awaiting fan-out: (the lease token, the events this caller now owns)."""
        token = uuid.uuid4().hex
        lease = {"_fanoutToken": token, "_fanoutOwner": owner, "_fanoutUntil": now_ms + lease_ms}
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
                                          FANOUT_FIELDS))
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


class Subscriptions:
    def __init__(self, db):
        self.collection = db[SUBSCRIPTIONS]

    def active(self) -> list[dict]:
        return list(self.collection.find({"_active": {"$eq": True}}, {"_id": 1, "_filter": 1}))

    def counts(self) -> tuple[int, int]:
        """(active subscriptions, disabled ones)."""
        reader = CollectionReader(self.collection.database, SUBSCRIPTIONS)
        total, active = reader.count({}), reader.count({"_active": True})
        return active, total - active

    def get_many(self, subscription_ids: list[str]) -> dict[str, dict]:
        return {s["_id"]: s for s in self.collection.find({"_id": {"$in": list(set(subscription_ids))}},
                                                          {"callback": 1, "_secret": 1, "_active": 1,
                                                           "_disabledReason": 1})}

    def disable(self, subscription_id: str, reason: str, stamp: str) -> bool:
        """Stops a subscription (`_active: false`) with the reason and time."""
        return self.collection.update_one(
            {"_id": subscription_id, "_active": True},
            {"$set": {"_active": False, "_disabledReason": reason, "_disabledAt": stamp}}).modified_count == 1
