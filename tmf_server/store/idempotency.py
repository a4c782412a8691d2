"""The `idempotencyKey` collection: one record per Idempotency-Key a client sent with a POST (its owner).

A record is claimed (`pending`, with the request's fingerprint and the id the new resource will have) before the
operation writes anything, and completed with the answer once the operation is done. Records expire `ttl` seconds
after they were claimed: MongoDB removes them through a TTL index (within a minute or so); the embedded engine
hides them from reads once past but does not delete them. So an expired record is also treated as absent when
read, and expired records are purged now and then by the claims themselves.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pymongo
from pymongo.errors import DuplicateKeyError

IDEMPOTENCY_KEYS = "idempotencyKey"
PENDING, DONE = "pending", "done"
_PURGE_EVERY_SECONDS = 3600


@dataclass(frozen=True)
class KeyRecord:
    scope: str  # client, method, path and key
    fingerprint: str
    resource_id: str  # the id the created resource has (or will have)
    state: str
    answer: dict | None  # {"status", "body", "headers"} once done
    claimed_here: bool  # this request inserted the record (no earlier request with the key)


def ensure_indexes(db) -> None:
    db[IDEMPOTENCY_KEYS].create_index([("expiresAt", pymongo.ASCENDING)], expireAfterSeconds=0)


class IdempotencyKeys:
    def __init__(self, db, ttl_seconds: float, clock=lambda: datetime.now(timezone.utc)):
        self.collection = db[IDEMPOTENCY_KEYS]
        self.ttl = timedelta(seconds=ttl_seconds)
        self.clock = clock
        self._next_purge = 0.0
        self._lock = threading.Lock()

    def claim(self, scope: str, fingerprint: str, resource_id: str) -> KeyRecord:
        """The record of `scope`: a new pending one owned by this request, or the one an earlier request left."""
        now = self.clock()
        self._purge_now_and_then(now)
        document = {"_id": scope, "fingerprint": fingerprint, "resourceId": resource_id, "state": PENDING,
                    "createdAt": now, "expiresAt": now + self.ttl}
        for _attempt in range(3):
            try:
                self.collection.insert_one(document)
                return _record(document, claimed_here=True)
            except DuplicateKeyError:
                found = self.collection.find_one({"_id": scope})
                if found is None:
                    continue  # expired and removed meanwhile
                if _aware(found["expiresAt"]) > now:
                    return _record(found, claimed_here=False)
                # Expired (the embedded engine does not apply the TTL index): the key is free again.
                self.collection.delete_one({"_id": scope, "expiresAt": found["expiresAt"]})
        raise RuntimeError(f"idempotency key {scope!r} could not be claimed")

    def complete(self, scope: str, answer: dict) -> None:
        self.collection.update_one({"_id": scope}, {"$set": {"state": DONE, "answer": answer}})

    def release(self, scope: str) -> None:
        """Forgets a key whose request was refused (nothing was written), so that a corrected retry can run."""
        self.collection.delete_one({"_id": scope, "state": PENDING})

    def _purge_now_and_then(self, now: datetime) -> None:
        with self._lock:
            if time.monotonic() < self._next_purge:
                return
            self._next_purge = time.monotonic() + _PURGE_EVERY_SECONDS
        self.collection.delete_many({"expiresAt": {"$lt": now}})


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _record(document: dict, claimed_here: bool) -> KeyRecord:
    return KeyRecord(document["_id"], document["fingerprint"], document["resourceId"], document["state"],
                     document.get("answer"), claimed_here)
