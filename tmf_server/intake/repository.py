"""The intake's only pymongo code: the received events and the per-key processing locks (both in `intakeEvent`),
and the read-only searches for open ServiceProblems.

A lock is a document of the same collection as the records (`_id` = "~lock:" + key, which no record id can be:
record ids start with their source's name), so that storing a record and taking its locks is one write command,
and so is finishing it and releasing them (docs/intake.md, "Concurrency"). Record reads never return a lock: their
queries name a record field, and `get` refuses the lock prefix.

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
from dataclasses import dataclass, field

import pymongo
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from tmf_server.intake.merge import CAUSE_PATHS, customers, is_parent
from tmf_server.problems.lifecycle import NOT_OPEN_STATUSES, is_open_status
from tmf_server.problems.lookups import ids_of
from tmf_server.problems.repository import ServiceProblemRepository
from tmf_server.problems.service import Stored
from tmf_server.query.filters import exact_string
from tmf_server.store.database import duplicate_key_indexes
from tmf_server.store.documents import to_api

# One document per received notification (`_id` = "{source}:{sourceEventId}"), and the processing locks: short
# leases that serialise the processing of one customer/subject/metric, ticket, alarm or cause.
INTAKE_EVENTS = "intakeEvent"
# Where earlier versions kept the locks (only leases: nothing to carry over; dropped when indexes are ensured).
RETIRED_LOCK_COLLECTION = "intakeLock"

RECEIVED = "received"  # stored, being processed (a lease in _leaseUntil)
NOT_A_RECORD = "~"  # how the ids of the documents beside the records begin (no source's name does)
LOCK_PREFIX = "~lock:"
# The report a trouble ticket was last appended to beside another first ticket: `_id` = "~ticket:" + ticket id,
# `_report` (not `_problemId`, which the record lists filter on), written with the outcome of the record that
# appended it (the same write); a report whose only or first ticket it is is found by the report's ticket key. How
# the intake finds the report of a ticket without reading every report that names several tickets
# (open_report_of_ticket).
TICKET_PREFIX = "~ticket:"
TICKET_REPORT = "_report"
# Written once the tickets of the records of earlier versions (stored without these documents) were carried over.
TICKETS_CARRIED_OVER = "~ticketsCarriedOver"
_CARRY_OVER_BATCH = 500
LOCK_OWNER = "_lockOwner"
LOCK_UNTIL = "_lockUntil"  # epoch ms; 0 once released. Released and expired locks are deleted by the sweep
# Lock documents a sweep deletes per command, and commands per sweep at most: released locks stay (releasing is
# part of the write that finishes the record, one command) until a sweep deletes them, and a storm with a new
# customer per notification leaves a few per notification; a sweep deletes up to 10,000 (1,000/s at the default
# sweep interval of 10 s) without holding the engine for long in one command.
RELEASED_BATCH = 500
RELEASED_BATCHES = 20

# Indexes of the received events (and of the locks' lease, for the sweep). The open-report searches use the
# ServiceProblem repository's lookup keys.
INDEXES = [[("receivedAt", pymongo.DESCENDING)], [("outcome", pymongo.ASCENDING)], [("source", pymongo.ASCENDING)],
           [("sourceEventId", pymongo.ASCENDING)], [("_problemId", pymongo.ASCENDING)],
           [(LOCK_UNTIL, pymongo.ASCENDING)]]
# The condition every stored record meets and no lock does: a list with no other term (receivedAt is never empty).
ANY_RECORD = {"receivedAt": {"$gt": ""}}


s = exact_string  # a string equality the engine answers exactly (see the module docstring)


def now_ms() -> int:
    return int(time.time() * 1000)


def lock_id(key: str) -> str:
    return LOCK_PREFIX + key


@dataclass
class Locks:
    """The keys one request holds (taken in sorted order), under its owner token."""

    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    keys: list[str] = field(default_factory=list)


def _taking(key: str, owner: str, lease_ms: int) -> UpdateOne:
    """Takes a key that is free (never taken, released or expired); a key another holds refuses the upsert as a
    duplicate `_id`."""
    now = now_ms()
    return UpdateOne({"_id": lock_id(key), LOCK_UNTIL: {"$lte": now}},
                     {"$set": {LOCK_OWNER: owner, LOCK_UNTIL: now + lease_ms}}, upsert=True)


def _releasing(locks: Locks) -> list[UpdateOne]:
    return [UpdateOne({"_id": lock_id(key), LOCK_OWNER: s(locks.owner)}, {"$set": {LOCK_UNTIL: 0}})
            for key in locks.keys]


def _taken_before_refusal(exc: BulkWriteError) -> int:
    """The position of the first statement an ordered bulk write refused as a duplicate key (an upsert on a key
    held by another, or on a record stored before); any other failure is raised."""
    refused = duplicate_key_indexes(exc)
    if refused is None:
        raise exc
    return min(refused)


OPEN = {"status": {"$nin": sorted(NOT_OPEN_STATUSES)}}
# Candidates read per search: the open reports of one customer and metric, of one alarm or one cause.
MAX_CANDIDATES = 1000
# A request waiting for a lock tries again after 2 ms, then twice as long each time, up to 20 ms: a holder
# usually finishes within a few milliseconds.
LOCK_POLL_FIRST = 0.002
LOCK_POLL_MAX = 0.02


def _names_subject(report: dict, kind: str, subject_id: str) -> bool:
    if kind == "service":
        return any(e.get("id") == subject_id for e in report.get("affectedService", ()))
    referred = "Product" if kind == "product" else "ProductOffering"
    return any(e.get("id") == subject_id and e.get("@referredType") == referred
               for e in report.get("relatedEntity", ()))


def ensure_indexes(db) -> None:
    for keys in INDEXES:
        db[INTAKE_EVENTS].create_index(keys)
    if RETIRED_LOCK_COLLECTION in db.list_collection_names():
        db.drop_collection(RETIRED_LOCK_COLLECTION)
    _carry_tickets_over(db[INTAKE_EVENTS])


def _carry_tickets_over(events) -> int:
    """Writes, once, the ticket documents of the trouble ticket records stored by earlier versions (without them):
    for each ticket, the report of its latest record; a ticket document written meanwhile by this version stays.
    Returns how many tickets it wrote."""
    if events.find_one({"_id": TICKETS_CARRIED_OVER}) is not None:
        return 0
    latest: dict[str, tuple[str, str]] = {}  # ticket id -> (receivedAt, report id) of its latest record
    after = ""
    while True:
        batch = list(events.find({"source": {"$eq": "troubleTicket"}, "_problemId": {"$gt": ""}, "_id": {"$gt": after}},
                                 {"payload": 1, "_problemId": 1, "receivedAt": 1})  # a nested projection comes back flat on the engine
                     .sort([("_id", 1)]).limit(_CARRY_OVER_BATCH))
        for record in batch:
            ticket = ((record.get("payload") or {}).get("event") or {}).get("troubleTicket") or {}
            received = record.get("receivedAt") or ""
            if isinstance(ticket.get("id"), str) and latest.get(ticket["id"], ("",))[0] <= received:
                latest[ticket["id"]] = (received, record["_problemId"])
        if len(batch) < _CARRY_OVER_BATCH:
            break
        after = batch[-1]["_id"]
    writes = [UpdateOne({"_id": TICKET_PREFIX + ticket}, {"$setOnInsert": {TICKET_REPORT: problem}}, upsert=True)
              for ticket, (_received, problem) in latest.items()]
    for start in range(0, len(writes), _CARRY_OVER_BATCH):
        events.bulk_write(writes[start:start + _CARRY_OVER_BATCH], ordered=False)
    events.update_one({"_id": TICKETS_CARRIED_OVER}, {"$set": {"tickets": len(writes)}}, upsert=True)
    return len(writes)


class IntakeRepository:
    def __init__(self, db, problems: ServiceProblemRepository):
        self.db = db
        self.events = db[INTAKE_EVENTS]
        self.problems = problems

    # -- received events -------------------------------------------------------------------------------------

    def store(self, record: dict, lease_ms: int, keys: list[str] = ()) -> tuple[str, dict, Locks]:
        """Stores a received event first and, in the same write, takes the free locks of `keys` in sorted order up
        to the first one another request holds (`lock` waits for the rest). Returns (state, record, locks held):
        "new" (the record with its token), "taken over" for a redelivery of an event whose processing was abandoned
        (its lease ran out), "done" (the stored record) for an event already processed, or "busy" (the stored
        record) while another request processes it; in the last three, no lock is held."""
        token = uuid.uuid4().hex
        document = {**record, "outcome": RECEIVED, "reason": "being processed", "duplicateCount": 0,
                    "_token": token, "_leaseUntil": now_ms() + lease_ms}
        locks, wanted = Locks(), sorted(set(keys))
        # The record's upsert matches no stored document (every record has an outcome), so a record stored
        # before collides on its `_id` and the ordered write stops there, before any lock is taken.
        inserting = {k: v for k, v in document.items() if k != "_id"}
        writes = [UpdateOne({"_id": record["_id"], "outcome": {"$exists": False}}, {"$setOnInsert": inserting},
                            upsert=True),
                  *(_taking(key, locks.owner, lease_ms) for key in wanted)]
        try:
            self.events.bulk_write(writes, ordered=True)
            stopped_at = len(writes)
        except BulkWriteError as exc:
            stopped_at = _taken_before_refusal(exc)
        if stopped_at == 0:  # a redelivery
            state, stored = self._stored_again(record, lease_ms)
            return state, stored, locks
        locks.keys = wanted[:stopped_at - 1]
        return "new", document, locks

    def _stored_again(self, record: dict, lease_ms: int) -> tuple[str, dict]:
        stored = self.events.find_one({"_id": record["_id"]})
        if stored is None:  # deleted meanwhile: store again
            state, stored, _locks = self.store(record, lease_ms)
            return state, stored
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
            return self._stored_again(record, lease_ms)  # someone else took it or finished it: look again
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

    def finish(self, stored: dict, outcome: dict, locks: Locks | None = None, ticket: str | None = None) -> dict:
        """Records the outcome (only the holder of the processing lease can) and releases the locks, in one write;
        with the `ticket` of a record that appended it to a report (beside another first ticket), that report
        becomes the ticket's.
        Returns the record as stored now."""
        finished = UpdateOne({"_id": stored["_id"], "_token": s(stored["_token"])},
                             {"$set": outcome, "$unset": {"_token": "", "_leaseUntil": "", "_takeovers": ""}})
        writes = [finished, *_releasing(locks or Locks())]
        if ticket and outcome.get("_problemId"):
            writes.append(UpdateOne({"_id": TICKET_PREFIX + ticket}, {"$set": {TICKET_REPORT: outcome["_problemId"]}},
                                    upsert=True))
        result = self.events.bulk_write(writes, ordered=False)
        if result.matched_count + result.upserted_count == len(writes):
            done = {**stored, **outcome}
            for name in ("_token", "_leaseUntil", "_takeovers"):
                done.pop(name, None)
            return done
        # The lease ran out and another request took the record over (or a lock expired meanwhile): as stored.
        return self.events.find_one({"_id": stored["_id"]})

    def abandon(self, stored: dict, locks: Locks | None = None) -> None:
        """Processing failed: a redelivery may take the event over at once (and the locks are free again)."""
        self.events.bulk_write([UpdateOne({"_id": stored["_id"], "_token": s(stored["_token"])},
                                          {"$set": {"_leaseUntil": 0}}), *_releasing(locks or Locks())], ordered=False)

    def get(self, record_id: str) -> dict | None:
        if record_id.startswith(NOT_A_RECORD):
            return None
        return self.events.find_one({"_id": record_id})

    def find(self, query: dict, offset: int, limit: int) -> list[dict]:
        projection = {"payload": 0}
        return list(self.events.find(query, projection).sort([("receivedAt", -1), ("_id", 1)])
                    .skip(offset).limit(limit))

    def count(self, query: dict) -> int:
        return int(self.db.command("count", INTAKE_EVENTS, query=query)["n"])

    @staticmethod
    def record_query(outcome=None, source=None, source_event_id=None, problem_id=None) -> dict:
        """Records only: each term names a field that records have and locks lack; without terms, ANY_RECORD."""
        terms = [{name: s(value)} for name, value in (("outcome", outcome), ("source", source),
                                                        ("sourceEventId", source_event_id),
                                                        ("_problemId", problem_id)) if value is not None]
        return {"$and": terms} if len(terms) > 1 else (terms[0] if terms else dict(ANY_RECORD))

    # -- locks -----------------------------------------------------------------------------------------------

    def lock(self, keys: list[str], lease_ms: int, wait_seconds: float, held: Locks | None = None) -> Locks | None:
        """Takes every key (in sorted order, so two requests never wait for each other in a circle), beyond those
        `held` already; returns the locks held, or None (nothing held any more) when a key stayed taken for
        `wait_seconds`."""
        locks = held or Locks()
        waiting = [key for key in sorted(set(keys)) if key not in locks.keys]
        deadline = time.monotonic() + wait_seconds
        pause = LOCK_POLL_FIRST
        while waiting:
            taken = self._take(waiting, locks.owner, lease_ms)  # the free keys up to the first one held by another
            locks.keys += waiting[:taken]
            waiting = waiting[taken:]
            if not waiting:
                break
            if time.monotonic() > deadline:
                self.unlock(locks)
                return None
            time.sleep(pause)
            pause = min(pause * 2, LOCK_POLL_MAX)
        return locks

    def _take(self, keys: list[str], owner: str, lease_ms: int) -> int:
        """Takes the free keys in order, in one round trip, stopping at the first key another holds; returns how
        many it took."""
        try:
            self.events.bulk_write([_taking(key, owner, lease_ms) for key in keys], ordered=True)
        except BulkWriteError as exc:
            return _taken_before_refusal(exc)
        return len(keys)

    def unlock(self, locks: Locks) -> None:
        if locks.keys:
            self.events.bulk_write(_releasing(locks), ordered=False)
            locks.keys = []

    def drop_released_locks(self) -> int:
        """Deletes lock documents released or expired (a key used again is simply taken anew), in batches until
        none is left or RELEASED_BATCHES were deleted; returns how many."""
        dropped = 0
        for _batch in range(RELEASED_BATCHES):
            now = now_ms()
            ids = [d["_id"] for d in self.events.find({LOCK_UNTIL: {"$lte": now}}, {"_id": 1}).limit(RELEASED_BATCH)]
            if ids:
                dropped += self.events.delete_many({"_id": {"$in": ids}, LOCK_UNTIL: {"$lte": now}}).deleted_count
            if len(ids) < RELEASED_BATCH:
                break
        return dropped

    # -- open reports (read only; every write goes through ServiceProblemService) -----------------------------

    def _open_stored(self, kind: str, value: str, *terms: dict, limit: int = MAX_CANDIDATES,
                     first_only: bool = False) -> list[Stored]:
        """Open reports naming `value` among their ids of `kind` (as the only or first, with `first_only`) and
        matching every term, oldest first, as read (a change can be written against the version read, without
        reading the report again)."""
        return [Stored(to_api(d), d["_version"], d)
                for d in self.problems.naming(kind, value, OPEN, *terms, limit=limit, first_only=first_only)]

    def _open(self, kind: str, value: str, *terms: dict, limit: int = MAX_CANDIDATES) -> list[dict]:
        return [found.representation for found in self._open_stored(kind, value, *terms, limit=limit)]

    def open_report(self, customer: str, subjects: list[tuple[str, str]], metric: str) -> Stored | None:
        """The oldest open report (not a parent) of this customer, naming one of the subjects, for this metric."""
        found = self._open_stored("customer", customer,
                                  {"characteristic": {"$elemMatch": {"name": s("metric"), "value": s(metric)}}})
        return next((r for r in found if not is_parent(r.representation)
                     and any(_names_subject(r.representation, kind, value) for kind, value in subjects)), None)

    def open_report_of_ticket(self, ticket_id: str) -> Stored | None:
        """The oldest open report (not a parent) naming the ticket, among those whose only or first ticket it is
        (made from it, by the intake or a client) and the report the ticket was last appended to beside another
        first ticket (the ticket's document). Index-served reads, none of the reports that name several tickets."""
        found = self._open_stored("ticket", ticket_id, first_only=True)
        latest = self.events.find_one({"_id": TICKET_PREFIX + ticket_id})
        problem_id = latest.get(TICKET_REPORT) if latest else None
        if problem_id and all(r.representation["id"] != problem_id for r in found):
            document = self.problems.get(problem_id)
            if document is not None and is_open_status(document.get("status")) \
                    and ticket_id in ids_of(document, "ticket"):
                found.append(Stored(to_api(document), document["_version"], document))
        return min((r for r in found if not is_parent(r.representation)),
                   key=lambda r: (r.representation.get("creationDate", ""), r.representation["id"]), default=None)

    def open_reports_of_alarm(self, alarm_id: str) -> list[Stored]:
        """Every open report with this underlying alarm, children before their parent (parents last)."""
        return sorted(self._open_stored("alarm", alarm_id, limit=100), key=lambda r: is_parent(r.representation))

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
