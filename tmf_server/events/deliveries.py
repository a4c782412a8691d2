"""pymongo access to the delivery collection (one document per event and subscription): the only code that queries it."""
from __future__ import annotations

import uuid

import pymongo

from tmf_server.events.schedule import utc_iso
from tmf_server.store.database import DELIVERIES, duplicate_key_indexes
from tmf_server.store.reader import CollectionReader

PENDING, RETRYING, DELIVERED, PARKED, CANCELLED = "pending", "retrying", "delivered", "parked", "cancelled"
UNFINISHED = [PENDING, RETRYING]  # the states that still owe an attempt (and block later events of the chain)

INDEXES = [  # none compound with _id: the embedded engine then rejects every insert (docs/mongodb.md)
    [("state", pymongo.ASCENDING), ("nextAttemptAt", pymongo.ASCENDING)],
    [("subscriptionId", pymongo.ASCENDING), ("problemId", pymongo.ASCENDING)],
    [("problemId", pymongo.ASCENDING)],
    [("eventId", pymongo.ASCENDING)],
    [("createdAt", pymongo.DESCENDING)],
]


def delivery_id(event_id: str, subscription_id: str) -> str:
    return f"{event_id}:{subscription_id}"


def new_token() -> str:
    return uuid.uuid4().hex


def new_delivery(event: dict, subscription_id: str, now_ms: int, state: str = PENDING,
                 reason: str | None = None) -> dict:
    """The delivery document of one stored event for one subscription."""
    stamp = utc_iso(now_ms / 1000)
    document = {
        "_id": delivery_id(event["_id"], subscription_id),
        "eventId": event["_id"], "subscriptionId": subscription_id, "eventType": event.get("eventType"),
        "eventTime": event.get("eventTime"), "problemId": event["_problemId"],
        "problemVersion": event["_problemVersion"], "seq": event["_seq"],
        "state": state, "reason": reason, "createdAt": stamp, "updatedAt": stamp,
        # Times the dispatcher compares are integer epoch milliseconds: the embedded engine compares
        # date strings only to the second (docs/mongodb.md).
        "nextAttemptAt": now_ms, "attemptCount": 0, "failures": 0, "attempts": [], "redriveCount": 0,
        # leaseToken changes with every claim, completion, release and redrive: a write conditioned on the
        # token it read succeeds only when nobody else wrote in between. Never null (see docs/mongodb.md).
        "leaseToken": new_token(), "leaseOwner": None, "leaseUntil": 0,
    }
    if state == PARKED:
        document["parkedAt"] = stamp
    return document


def representation(document: dict) -> dict:
    """The delivery as the admin API shows it (times as date-time strings, lease only while held)."""
    shown = {"id": document["_id"]}
    for key in ("eventId", "subscriptionId", "eventType", "eventTime", "problemId", "problemVersion", "seq",
                "state", "reason", "createdAt", "updatedAt", "deliveredAt", "parkedAt", "cancelledAt",
                "attemptCount", "redriveCount"):
        if document.get(key) is not None:
            shown[key] = document[key]
    if document.get("state") in UNFINISHED:
        shown["nextAttemptAt"] = utc_iso(document["nextAttemptAt"] / 1000)
        if document.get("leaseOwner"):
            shown["leaseOwner"] = document["leaseOwner"]
            shown["leaseUntil"] = utc_iso(document["leaseUntil"] / 1000)
    shown["attempts"] = [{k: v for k, v in attempt.items() if v is not None}
                         for attempt in document.get("attempts", [])]
    return shown


# What choosing a delivery reads of it (the claim reads the whole document back).
CANDIDATE_FIELDS = {"subscriptionId": 1, "problemId": 1, "problemVersion": 1, "seq": 1, "nextAttemptAt": 1,
                    "leaseUntil": 1}
NEWEST_FIRST = (("createdAt", -1), ("_id", 1))  # the admin list's order


class DeliveryStore:
    def __init__(self, db):
        self.reader = CollectionReader(db, DELIVERIES)  # get, find and count, as for the TMF656 lists
        self.collection = self.reader.collection

    def ensure_indexes(self) -> None:
        for keys in INDEXES:
            self.collection.create_index(keys)

    # -- fan-out --------------------------------------------------------------------------------------

    def create_many(self, documents: list[dict]) -> int:
        """Inserts the deliveries that do not exist yet (the _id is the (event, subscription) pair)."""
        if not documents:
            return 0
        try:
            return len(self.collection.insert_many(documents, ordered=False).inserted_ids)
        except pymongo.errors.BulkWriteError as exc:
            if duplicate_key_indexes(exc) is None:
                raise
            return exc.details.get("nInserted", 0)

    # -- choosing and claiming ------------------------------------------------------------------------

    def due(self, now_ms: int, limit: int, excluding: list[str] | tuple[str, ...] = ()) -> list[dict]:
        """Unfinished deliveries whose time has come and that nobody holds, the longest waiting first;
        none of the subscriptions `excluding` (those that may not take another attempt now)."""
        found = []
        for state in UNFINISHED:  # one query per state: `$eq` is served by the index, `$in` is not (docs/mongodb.md)
            query = {"state": {"$eq": state}, "nextAttemptAt": {"$lte": now_ms}, "leaseUntil": {"$lte": now_ms}}
            if excluding:
                query["subscriptionId"] = {"$nin": list(excluding)}
            found += self.collection.find(query, CANDIDATE_FIELDS).sort([("nextAttemptAt", 1)]).limit(limit)
        return sorted(found, key=lambda d: d["nextAttemptAt"])[:limit]

    def chain_head(self, subscription_id: str, problem_id: str, up_to_version: int | None = None) -> dict | None:
        """The earliest unfinished delivery of one (subscription, problem) chain, up to a problem version if given."""
        query = {"subscriptionId": {"$eq": subscription_id}, "problemId": {"$eq": problem_id},
                 "state": {"$in": UNFINISHED}}
        if up_to_version is not None:
            query["problemVersion"] = {"$lte": up_to_version}
        found = list(self.collection.find(query).sort([("problemVersion", 1), ("seq", 1)]).limit(1))
        return found[0] if found else None

    def defer_chain(self, subscription_id: str, problem_id: str, until_ms: int) -> int:
        """Pending deliveries of a chain wait for its head (they would only be found blocked until then)."""
        return self.collection.update_many(
            {"subscriptionId": {"$eq": subscription_id}, "problemId": {"$eq": problem_id}, "state": {"$eq": PENDING},
             "nextAttemptAt": {"$lt": until_ms}},
            {"$set": {"nextAttemptAt": until_ms}}).modified_count

    def promote_next(self, subscription_id: str, problem_id: str, now_ms: int) -> None:
        """After a chain's head finished: its successor, if pending and deferred, is due now."""
        head = self.chain_head(subscription_id, problem_id)
        if head and head["state"] == PENDING and head["nextAttemptAt"] > now_ms:
            self.collection.update_one({"_id": head["_id"], "state": PENDING, "nextAttemptAt": head["nextAttemptAt"]},
                                       {"$set": {"nextAttemptAt": now_ms}})

    def claim_many(self, documents: list[dict], owner: str, now_ms: int, lease_ms: int) -> list[dict]:
        """Takes the leases of those of `documents` still due and unheld, in two round trips; the claimed
        documents as stored now (they share one new lease token, and each write after is conditioned on
        the _id and that token)."""
        if not documents:
            return []
        token = new_token()
        ids = [document["_id"] for document in documents]
        self.collection.update_many(
            {"_id": {"$in": ids}, "state": {"$in": UNFINISHED}, "nextAttemptAt": {"$lte": now_ms},
             "leaseUntil": {"$lte": now_ms}},
            {"$set": {"leaseToken": token, "leaseOwner": owner, "leaseUntil": now_ms + lease_ms}})
        claimed = {d["_id"]: d for d in self.collection.find({"_id": {"$in": ids}, "leaseToken": token})}
        return [claimed[i] for i in ids if i in claimed]

    def release(self, claimed: dict) -> bool:
        """Gives a claimed delivery back untouched (its lease ends now)."""
        return self.collection.update_one(
            {"_id": claimed["_id"], "leaseToken": claimed["leaseToken"]},
            {"$set": {"leaseToken": new_token(), "leaseOwner": None, "leaseUntil": 0}}).modified_count == 1

    def complete(self, claimed: dict, changes: dict, attempt: dict | None, now_ms: int) -> bool:
        """Records the outcome of a claimed delivery and ends the lease; False if the lease was lost.

        Attempts are appended by rewriting the array: `$push` turns sub-documents into JSON strings on the
        embedded engine (docs/mongodb.md). The lease makes the read-modify-write safe.
        """
        return claimed["_id"] not in self.complete_many([(claimed, changes, attempt)], now_ms)

    def complete_many(self, outcomes: list[tuple[dict, dict, dict | None]], now_ms: int) -> set[str]:
        """complete() for many (claimed, changes, attempt) in one bulk write; the ids whose lease was lost."""
        if not outcomes:
            return set()
        writes, tokens = [], {}
        for claimed, changes, attempt in outcomes:
            token = tokens[claimed["_id"]] = new_token()
            update = {**changes, "updatedAt": utc_iso(now_ms / 1000), "leaseToken": token, "leaseOwner": None,
                      "leaseUntil": 0}
            if attempt is not None:
                update["attempts"] = [*claimed.get("attempts", []), attempt]
                update["attemptCount"] = claimed.get("attemptCount", 0) + 1
            writes.append(pymongo.UpdateOne({"_id": claimed["_id"], "leaseToken": claimed["leaseToken"]},
                                            {"$set": update}))
        result = self.collection.bulk_write(writes, ordered=False)
        if result.modified_count == len(writes):
            return set()
        kept = {d["_id"] for d in self.collection.find({"_id": {"$in": list(tokens)}}, {"leaseToken": 1})
                if d.get("leaseToken") == tokens[d["_id"]]}
        return set(tokens) - kept

    def store_unattempted(self, held: dict) -> None:
        """Stores a delivery held since its fan-out that will not be attempted now: pending, unleased."""
        self.create_many([{**held, "leaseToken": new_token(), "leaseOwner": None, "leaseUntil": 0}])

    def store_attempted(self, outcomes: list[tuple[dict, dict, dict | None]], now_ms: int) -> set[str]:
        """Stores deliveries held since their fan-out (never stored) with the outcome of their first attempt, in
        one insert; the ids already stored by someone else (their event's lease ended and another fan-out stored
        them): those outcomes are not recorded, as for a lost lease."""
        if not outcomes:
            return set()
        documents = []
        for held, changes, attempt in outcomes:
            document = {**held, **changes, "updatedAt": utc_iso(now_ms / 1000), "leaseToken": new_token(),
                        "leaseOwner": None, "leaseUntil": 0}
            if attempt is not None:
                document["attempts"], document["attemptCount"] = [attempt], 1
            documents.append(document)
        try:
            self.collection.insert_many(documents, ordered=False)
        except pymongo.errors.BulkWriteError as exc:
            repeated = duplicate_key_indexes(exc)
            if repeated is None:
                raise
            return {documents[index]["_id"] for index in repeated}
        return set()

    def promote_next_of(self, chains: set[tuple[str, str]], now_ms: int) -> None:
        """promote_next() for the chains whose heads just finished, with one query when none has a deferred
        follower (the common case: a report's first event)."""
        if not chains:
            return
        deferred = self.collection.find(
            {"problemId": {"$in": sorted({problem for _s, problem in chains})}, "state": {"$eq": PENDING},
             "nextAttemptAt": {"$gt": now_ms}}, {"subscriptionId": 1, "problemId": 1})
        for chain in {(d["subscriptionId"], d["problemId"]) for d in deferred} & chains:
            self.promote_next(*chain, now_ms)

    def cancel_subscription(self, subscription_id: str, reason: str, now_ms: int) -> int:
        """Every unfinished delivery of a subscription is cancelled (deleted or disabled subscription)."""
        stamp = utc_iso(now_ms / 1000)
        return self.collection.update_many(
            {"subscriptionId": {"$eq": subscription_id}, "state": {"$in": UNFINISHED}},
            {"$set": {"state": CANCELLED, "reason": reason, "cancelledAt": stamp, "updatedAt": stamp}}).modified_count

    # -- admin ----------------------------------------------------------------------------------------

    def get(self, delivery_id_: str) -> dict | None:
        return self.reader.get(delivery_id_)

    def find(self, query: dict, offset: int, limit: int) -> list[dict]:
        return self.reader.find(query, NEWEST_FIRST, offset, limit)

    def count(self, query: dict) -> int:
        return self.reader.count(query)

    def redrive(self, delivery_id_: str, now_ms: int) -> dict | None:
        """A parked delivery starts a fresh schedule (pending, due now); None if it was not parked."""
        result = self.collection.update_one({"_id": delivery_id_, "state": PARKED}, self._redrive_update(now_ms))
        return self.get(delivery_id_) if result.modified_count == 1 else None

    def redrive_parked(self, subscription_id: str, now_ms: int) -> int:
        """Every parked delivery of one subscription starts a fresh schedule; how many did."""
        return self.collection.update_many({"subscriptionId": {"$eq": subscription_id}, "state": {"$eq": PARKED}},
                                           self._redrive_update(now_ms)).modified_count

    def send_now(self, delivery_id_: str, now_ms: int) -> dict | None:
        """A retrying delivery is due now, its schedule going on from its failures; None if it was not retrying."""
        result = self.collection.update_one({"_id": delivery_id_, "state": RETRYING}, self._send_now_update(now_ms))
        return self.get(delivery_id_) if result.modified_count == 1 else None

    def send_retrying_now(self, subscription_id: str, now_ms: int) -> int:
        """Every retrying delivery of one subscription is due now; how many were."""
        return self.collection.update_many({"subscriptionId": subscription_id, "state": RETRYING},
                                           self._send_now_update(now_ms)).modified_count

    @staticmethod
    def _send_now_update(now_ms: int) -> dict:
        return {"$set": {"nextAttemptAt": now_ms, "updatedAt": utc_iso(now_ms / 1000)}}

    @staticmethod
    def _redrive_update(now_ms: int) -> dict:
        return {"$set": {"state": PENDING, "reason": None, "failures": 0, "nextAttemptAt": now_ms,
                         "leaseToken": new_token(), "leaseOwner": None, "leaseUntil": 0,
                         "updatedAt": utc_iso(now_ms / 1000)},
                "$unset": {"parkedAt": ""},
                "$inc": {"redriveCount": 1}}
