"""The intake's only pymongo code: the received events (`intakeEvent`), the per-key processing locks
(`intakeLock`), and the read-only searches for open ServiceProblems.

Queries use the canonical forms of docs/mongodb.md: arrays only through `$elemMatch`, OR over an array path
as `$or` of `$elemMatch`, "no element equals" as `$nor` of `$elemMatch`, not-equal on a scalar as `$nin`,
never `$not`. Every string equality also carries `"$type": "string"`: on the embedded engine a string of
digits compared inside `$elemMatch` (`{"underlyingAlarm": {"$elemMatch": {"id": "4711"}}}`) finds nothing,
and the guard (a no-op in MongoDB) makes it compare exactly (docs/intake.md, "Engine notes").
"""
from __future__ import annotations

import time
import uuid

import pymongo
from pymongo.errors import DuplicateKeyError

from tmf_server.events.outbox import DELETING
from tmf_server.intake.merge import CAUSE_PATHS, GROUPED_BY, OPEN_EXCLUDED, is_parent
from tmf_server.store.database import SERVICE_PROBLEMS
from tmf_server.store.documents import to_api

INTAKE_EVENTS = "intakeEvent"  # one document per received notification, `_id` = "{source}:{sourceEventId}"
INTAKE_LOCKS = "intakeLock"  # short leases that serialise the processing of one customer/subject/metric or cause

RECEIVED = "received"  # stored, being processed (a lease in _leaseUntil)

# Indexes of the received events. The open-report searches use the server's ServiceProblem indexes
# (status, relatedParty.id, affectedService.id); none are added to that collection here, so that the
# differential test of tests/storage keeps covering every ServiceProblem index.
INDEXES = [[("receivedAt", pymongo.DESCENDING)], [("outcome", pymongo.ASCENDING)], [("source", pymongo.ASCENDING)],
           [("sourceEventId", pymongo.ASCENDING)], [("_problemId", pymongo.ASCENDING)]]


def s(value: str) -> dict:
    """A guarded string equality (see the module docstring)."""
    return {"$eq": value, "$type": "string"}


def now_ms() -> int:
    return int(time.time() * 1000)


OPEN = {"status": {"$nin": list(OPEN_EXCLUDED)}}
NOT_A_PARENT = {"$nor": [{"characteristic": {"$elemMatch": {"name": s(GROUPED_BY)}}}]}


def _customer(customer_id: str) -> dict:
    return {"relatedParty": {"$elemMatch": {"id": s(customer_id), "role": s("customer")}}}


def _subject(kind: str, subject_id: str) -> dict:
    if kind == "service":
        return {"affectedService": {"$elemMatch": {"id": s(subject_id)}}}
    referred = "Product" if kind == "product" else "ProductOffering"
    return {"relatedEntity": {"$elemMatch": {"id": s(subject_id), "@referredType": s(referred)}}}


def _cause(key: str) -> dict | None:
    kind, _, value = key.partition(":")
    path = CAUSE_PATHS.get(kind)
    return {path: {"$elemMatch": {"id": s(value)}}} if path else None


def ensure_indexes(db) -> None:
    for keys in INDEXES:
        db[INTAKE_EVENTS].create_index(keys)


class IntakeRepository:
    def __init__(self, db):
        self.db = db
        self.events = db[INTAKE_EVENTS]
        self.locks = db[INTAKE_LOCKS]
        self.problems = db[SERVICE_PROBLEMS]

    # -- received events -------------------------------------------------------------------------------------

    def store(self, record: dict, lease_ms: int) -> tuple[str, dict]:
        """Stores a received event first. Returns ("new", record with its token), ("taken over", ...) for a
        redelivery of an event whose processing was abandoned (its lease ran out), ("done", stored record) for an
        event already processed, or ("busy", stored record) while another request processes it."""
        token = uuid.uuid4().hex
        document = {**record, "outcome": RECEIVED, "reason": "being processed", "duplicateCount": 0,
                    "_token": token, "_leaseUntil": now_ms() + lease_ms}
        try:
            self.events.insert_one(document)
            return "new", document
        except DuplicateKeyError:
            pass
        stored = self.events.find_one({"_id": record["_id"]})
        if stored is None:  # deleted meanwhile: store again
            return self.store(record, lease_ms)
        if stored.get("outcome") != RECEIVED:
            self.events.update_one({"_id": stored["_id"]}, {"$inc": {"duplicateCount": 1},
                                                            "$set": {"lastDuplicateAt": record["receivedAt"]}})
            return "done", stored
        if stored.get("_leaseUntil", 0) > now_ms():
            return "busy", stored
        taken = self.events.update_one(
            {"_id": stored["_id"], "_token": s(stored["_token"]), "outcome": s(RECEIVED)},
            {"$set": {"_token": token, "_leaseUntil": now_ms() + lease_ms, "payload": record["payload"]}})
        if taken.modified_count != 1:
            return self.store(record, lease_ms)  # someone else took it or finished it: look again
        return "taken over", {**stored, "_token": token}

    def finish(self, record_id: str, token: str, outcome: dict) -> dict | None:
        """Records the outcome (only the holder of the processing lease can)."""
        self.events.update_one({"_id": record_id, "_token": s(token)},
                               {"$set": outcome, "$unset": {"_token": "", "_leaseUntil": ""}})
        return self.events.find_one({"_id": record_id})

    def abandon(self, record_id: str, token: str) -> None:
        """Processing failed: a redelivery may take the event over at once."""
        self.events.update_one({"_id": record_id, "_token": s(token)}, {"$set": {"_leaseUntil": 0}})

    def get(self, record_id: str) -> dict | None:
        return self.events.find_one({"_id": record_id})

    def find(self, query: dict, offset: int, limit: int) -> list[dict]:
        projection = {"payload": 0}
        return list(self.events.find(query, projection).sort([("receivedAt", -1), ("_id", 1)])
                    .skip(offset).limit(limit))

    def count(self, query: dict) -> int:
        return int(self.db.command("count", INTAKE_EVENTS, query=query)["n"])

    @staticmethod
    def record_query(outcome=None, source=None, source_event_id=None, problem_id=None) -> dict:
        terms = [{name: s(value)} for name, value in (("outcome", outcome), ("source", source),
                                                        ("sourceEventId", source_event_id),
                                                        ("_problemId", problem_id)) if value is not None]
        return {"$and": terms} if len(terms) > 1 else (terms[0] if terms else {})

    # -- locks -----------------------------------------------------------------------------------------------

    def lock(self, keys: list[str], lease_ms: int, wait_seconds: float) -> str | None:
        """Takes every key (in sorted order, so two requests never wait for each other in a circle); returns the
        owner token, or None (nothing held) when a key stayed taken for `wait_seconds`."""
        owner = uuid.uuid4().hex
        held: list[str] = []
        deadline = time.monotonic() + wait_seconds
        for key in sorted(set(keys)):
            while True:
                try:
                    self.locks.insert_one({"_id": key, "owner": owner, "until": now_ms() + lease_ms})
                    break
                except DuplicateKeyError:
                    expired = self.locks.update_one({"_id": key, "until": {"$lte": now_ms()}},
                                                    {"$set": {"owner": owner, "until": now_ms() + lease_ms}})
                    if expired.modified_count == 1:
                        break
                if time.monotonic() > deadline:
                    self.unlock(held, owner)
                    return None
                time.sleep(0.02)
            held.append(key)
        return owner

    def unlock(self, keys: list[str], owner: str) -> None:
        for key in set(keys):
            self.locks.delete_one({"_id": key, "owner": s(owner)})

    # -- open reports (read only; every write goes through ServiceProblemService) -----------------------------

    def _first(self, *terms: dict) -> dict | None:
        return next(iter(self._all(*terms, limit=1)), None)

    def _all(self, *terms: dict, limit: int = 100) -> list[dict]:
        found = self.problems.find({"$and": [OPEN, *terms]}).sort([("creationDate", 1), ("_id", 1)]).limit(limit)
        return [to_api(d) for d in found if not d.get(DELETING)]

    def open_report(self, customer: str, subjects: list[tuple[str, str]], metric: str) -> dict | None:
        """The oldest open report (not a parent) of this customer, naming one of the subjects, for this metric."""
        same_subject = [_subject(kind, value) for kind, value in subjects]
        return self._first(NOT_A_PARENT, _customer(customer),
                           {"characteristic": {"$elemMatch": {"name": s("metric"), "value": s(metric)}}},
                           {"$or": same_subject})

    def open_report_of_ticket(self, ticket_id: str) -> dict | None:
        return self._first(NOT_A_PARENT, {"troubleTicket": {"$elemMatch": {"id": s(ticket_id)}}})

    def open_reports_of_alarm(self, alarm_id: str) -> list[dict]:
        """Every open report with this underlying alarm, children before their parent (parents last)."""
        found = self._all({"underlyingAlarm": {"$elemMatch": {"id": s(alarm_id)}}})
        return sorted(found, key=is_parent)

    def open_parent(self, keys: list[str]) -> dict | None:
        """An open parent made for one of these causes."""
        if not keys:
            return None
        return self._first({"$or": [{"characteristic": {"$elemMatch": {"name": s(GROUPED_BY), "value": s(k)}}}
                                    for k in keys]})

    def open_siblings(self, keys: list[str], customer: str, exclude: str) -> list[dict]:
        """Open reports (not parents) of other customers that share one of these causes."""
        causes = [c for c in (_cause(k) for k in keys) if c]
        if not causes:
            return []
        return self._all(NOT_A_PARENT, {"$or": causes}, {"$nor": [_customer(customer)]}, {"_id": {"$nin": [exclude]}})

    def get_problem(self, problem_id: str) -> dict | None:
        found = self.problems.find_one({"_id": problem_id})
        return to_api(found) if found and not found.get(DELETING) else None
