"""The intake's only pymongo code: the received events (`intakeEvent`), the per-key processing locks
(`intakeLock`), and the read-only searches for open ServiceProblems.

Queries use the canonical forms of docs/mongodb.md: arrays only through `$elemMatch`, not-equal on a scalar as
`$nin`, never `$not`. A string equality carries `"$type": "string"` where the embedded engine would otherwise
compare it as a number or a date (a string of digits inside `$elemMatch`, `{"underlyingAlarm": {"$elemMatch":
{"id": "4711"}}}`, finds nothing there), and only there: the guard, a no-op in MongoDB, makes the engine evaluate
the condition in Python over every document (docs/intake.md, "Engine notes").

The open-report searches go through the ServiceProblem repository's lookup keys (problems/lookups.py), index-served
on both engines; what would need `$or`/`$nor` (the subject among several, "not a parent", "another customer"),
which the engine evaluates in Python over every stored report, is checked on the few reports found.
"""
from __future__ import annotations

import time
import uuid

import pymongo
from pymongo.errors import BulkWriteError, DuplicateKeyError

from tmf_server.intake.merge import CAUSE_PATHS, customers, is_parent
from tmf_server.problems.lifecycle import NOT_OPEN_STATUSES
from tmf_server.problems.repository import ServiceProblemRepository
from tmf_server.query.filters import exact_string
from tmf_server.store.database import duplicate_key_indexes
from tmf_server.store.documents import to_api

INTAKE_EVENTS = "intakeEvent"  # one document per received notification, `_id` = "{source}:{sourceEventId}"
INTAKE_LOCKS = "intakeLock"  # short leases that serialise the processing of one customer/subject/metric or cause

RECEIVED = "received"  # stored, being processed (a lease in _leaseUntil)

# Indexes of the received events. The open-report searches use the ServiceProblem repository's lookup keys.
INDEXES = [[("receivedAt", pymongo.DESCENDING)], [("outcome", pymongo.ASCENDING)], [("source", pymongo.ASCENDING)],
           [("sourceEventId", pymongo.ASCENDING)], [("_problemId", pymongo.ASCENDING)]]


s = exact_string  # a string equality the engine answers exactly (see the module docstring)


def now_ms() -> int:
    return int(time.time() * 1000)


OPEN = {"status": {"$nin": sorted(NOT_OPEN_STATUSES)}}
# Candidates read per search: the open reports of one customer and metric, of one alarm or one cause.
MAX_CANDIDATES = 1000


def _names_subject(report: dict, kind: str, subject_id: str) -> bool:
    if kind == "service":
        return any(e.get("id") == subject_id for e in report.get("affectedService", ()))
    referred = "Product" if kind == "product" else "ProductOffering"
    return any(e.get("id") == subject_id and e.get("@referredType") == referred
               for e in report.get("relatedEntity", ()))


def ensure_indexes(db) -> None:
    for keys in INDEXES:
        db[INTAKE_EVENTS].create_index(keys)


class IntakeRepository:
    def __init__(self, db, problems: ServiceProblemRepository):
        self.db = db
        self.events = db[INTAKE_EVENTS]
        self.locks = db[INTAKE_LOCKS]
        self.problems = problems

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
            counted = self.events.find_one_and_update(
                {"_id": stored["_id"]}, {"$inc": {"duplicateCount": 1}, "$set": {"lastDuplicateAt": record["receivedAt"]}},
                return_document=pymongo.ReturnDocument.AFTER)
            return "done", counted or stored
        if stored.get("_leaseUntil", 0) > now_ms():
            return "busy", stored
        # the redelivery's payload and processing context (a record stored before they were kept lacks them)
        taken = self.take_over(stored, lease_ms, {k: v for k, v in record.items() if k == "payload" or k.startswith("_")
                                                  and k != "_id"})
        if taken is None:
            return self.store(record, lease_ms)  # someone else took it or finished it: look again
        return "taken over", taken

    def take_over(self, stored: dict, lease_ms: int, changes: dict | None = None) -> dict | None:
        """Takes the processing lease of a record left `received` whose lease ran out; the record with the new
        token, or None when another request or sweeper took it (or finished it) first."""
        token = uuid.uuid4().hex
        taken = self.events.update_one(
            {"_id": stored["_id"], "_token": s(stored["_token"]), "outcome": s(RECEIVED),
             "_leaseUntil": {"$lte": now_ms()}},
            {"$set": {"_token": token, "_leaseUntil": now_ms() + lease_ms, **(changes or {})}, "$inc": {"_takeovers": 1}})
        if taken.modified_count != 1:
            return None
        return {**stored, **(changes or {}), "_token": token, "_takeovers": stored.get("_takeovers", 0) + 1}

    def left_received(self, limit: int) -> list[dict]:
        """Records still `received` whose processing lease ran out (the request processing them died)."""
        # "received" is no digit string: `$eq` without the guard, served by the outcome index on both engines
        # (docs/mongodb.md); a record stored before records kept their processing context waits for its redelivery
        return list(self.events.find({"outcome": {"$eq": RECEIVED}, "_leaseUntil": {"$lte": now_ms()},
                                      "_recordBase": {"$exists": True}}).limit(limit))

    def finish(self, record_id: str, token: str, outcome: dict) -> dict | None:
        """Records the outcome (only the holder of the processing lease can)."""
        finished = self.events.find_one_and_update({"_id": record_id, "_token": s(token)},
                                                   {"$set": outcome,
                                                    "$unset": {"_token": "", "_leaseUntil": "", "_takeovers": ""}},
                                                   return_document=pymongo.ReturnDocument.AFTER)
        return finished or self.events.find_one({"_id": record_id})

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
        waiting = sorted(set(keys))
        held: list[str] = []
        deadline = time.monotonic() + wait_seconds
        while waiting:
            taken = self._take(waiting, owner, lease_ms)  # the free keys up to the first one held by another
            held += waiting[:taken]
            waiting = waiting[taken:]
            if not waiting:
                break
            expired = self.locks.update_one({"_id": waiting[0], "until": {"$lte": now_ms()}},
                                            {"$set": {"owner": owner, "until": now_ms() + lease_ms}})
            if expired.modified_count == 1:
                held.append(waiting.pop(0))
                continue
            if time.monotonic() > deadline:
                self.unlock(held, owner)
                return None
            time.sleep(0.02)
        return owner

    def _take(self, keys: list[str], owner: str, lease_ms: int) -> int:
        """Inserts the locks of `keys` in order, in one round trip, stopping at the first key another holds;
        returns how many it took."""
        until = now_ms() + lease_ms
        try:
            self.locks.insert_many([{"_id": key, "owner": owner, "until": until} for key in keys], ordered=True)
        except BulkWriteError as exc:
            refused = duplicate_key_indexes(exc)
            if refused is None:
                raise
            return min(refused)
        return len(keys)

    def unlock(self, keys: list[str], owner: str) -> None:
        if keys:
            self.locks.delete_many({"_id": {"$in": sorted(set(keys))}, "owner": s(owner)})

    # -- open reports (read only; every write goes through ServiceProblemService) -----------------------------

    def _open(self, kind: str, value: str, *terms: dict, limit: int = MAX_CANDIDATES) -> list[dict]:
        """Open reports naming `value` among their ids of `kind` and matching every term, oldest first."""
        return [to_api(d) for d in self.problems.naming(kind, value, OPEN, *terms, limit=limit)]

    def open_report(self, customer: str, subjects: list[tuple[str, str]], metric: str) -> dict | None:
        """The oldest open report (not a parent) of this customer, naming one of the subjects, for this metric."""
        found = self._open("customer", customer,
                           {"characteristic": {"$elemMatch": {"name": s("metric"), "value": s(metric)}}})
        return next((r for r in found if not is_parent(r)
                     and any(_names_subject(r, kind, value) for kind, value in subjects)), None)

    def open_report_of_ticket(self, ticket_id: str) -> dict | None:
        return next((r for r in self._open("ticket", ticket_id) if not is_parent(r)), None)

    def open_reports_of_alarm(self, alarm_id: str) -> list[dict]:
        """Every open report with this underlying alarm, children before their parent (parents last)."""
        return sorted(self._open("alarm", alarm_id, limit=100), key=is_parent)

    def open_parent(self, keys: list[str]) -> dict | None:
        """The oldest open parent made for one of these causes."""
        found = [report for key in keys for report in self._open("groupedBy", key, limit=1)]
        return min(found, key=lambda r: (r["creationDate"], r["id"]), default=None)

    def open_siblings(self, keys: list[str], customer: str, exclude: str) -> list[dict]:
        """Open reports (not parents) of other customers that share one of these causes, oldest first."""
        found: dict[str, dict] = {}
        for key in keys:
            kind, _, value = key.partition(":")
            if kind not in CAUSE_PATHS:
                continue
            for report in self._open(kind, value, {"_id": {"$nin": [exclude]}}):
                if not is_parent(report) and not any(p.get("id") == customer for p in customers(report)):
                    found.setdefault(report["id"], report)
        return sorted(found.values(), key=lambda r: (r["creationDate"], r["id"]))[:100]

    def get_problem(self, problem_id: str) -> dict | None:
        found = self.problems.get(problem_id)
        return to_api(found) if found else None
