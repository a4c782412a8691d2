"""The intake repository on the embedded engine: store-first with leases, the per-key locks, and the open-report
searches (including ids made of digits, which the engine only finds with the string guard)."""
from __future__ import annotations

import threading
import time

import pymongo
import pytest

from tests.support.polling import wait_for
from tmf_server.intake.merge import GROUPED_BY
from tmf_server.intake.repository import (
    INTAKE_EVENTS,
    LOCK_OWNER,
    LOCK_PREFIX,
    RELEASED_BATCH,
    IntakeRepository,
    ensure_indexes,
    lock_id,
)
from tmf_server.events.outbox import Outbox
from tmf_server.problems.repository import ServiceProblemRepository, with_derived_fields
from tmf_server.problems.repository import ensure_indexes as ensure_problem_indexes
from tmf_server.store.database import SERVICE_PROBLEMS


@pytest.fixture(scope="module")
def db(engine):
    client = pymongo.MongoClient(engine.uri)
    database = client["intake"]
    ensure_problem_indexes(database)
    ensure_indexes(database)
    yield database
    client.close()


@pytest.fixture()
def repo(db):
    for name in (INTAKE_EVENTS, SERVICE_PROBLEMS):
        db[name].delete_many({})
    return IntakeRepository(db, ServiceProblemRepository(db, Outbox(db)))


def record(event_id: str) -> dict:
    return {"_id": f"alarm:{event_id}", "source": "alarm", "sourceEventId": event_id, "eventType": "AlarmCreateEvent",
            "receivedAt": "2026-11-21T09:00:00.000Z", "payload": {"eventId": event_id}}


def held(repo, key: str) -> str | None:
    """The owner of a lock while it is held (None when free: never taken, released or expired)."""
    found = repo.events.find_one({"_id": lock_id(key)})
    return found[LOCK_OWNER] if found and found["_lockUntil"] > time.time() * 1000 else None


def held_keys(repo) -> list[str]:
    return sorted(d["_id"].removeprefix(LOCK_PREFIX) for d in repo.events.find({"_lockUntil": {"$gt": 0}})
                  if d["_lockUntil"] > time.time() * 1000)


def test_store_first_recognises_redeliveries(repo):
    state, stored, _locks = repo.store(record("e1"), lease_ms=60_000)
    assert state == "new" and stored["outcome"] == "received"
    assert repo.store(record("e1"), lease_ms=60_000)[0] == "busy"  # still being processed
    final = repo.finish(stored, {"outcome": "created", "reason": "r"})
    assert final == repo.get("alarm:e1") and final["outcome"] == "created"  # the record as now stored
    state, again, _locks = repo.store(record("e1"), lease_ms=60_000)
    assert state == "done" and again["outcome"] == "created"
    assert repo.get("alarm:e1")["duplicateCount"] == 1
    assert "_token" not in repo.get("alarm:e1") and repo.count(repo.record_query()) == 1


def test_storing_takes_the_free_locks_in_the_same_write_and_finishing_releases_them(repo):
    other = repo.lock(["k2"], lease_ms=60_000, wait_seconds=1)
    state, stored, locks = repo.store(record("e5"), 60_000, ["k3", "k1", "k2"])
    assert state == "new" and repo.get("alarm:e5")["outcome"] == "received"
    assert locks.keys == ["k1"] and held(repo, "k1") == locks.owner  # in order, up to the key another holds
    assert held(repo, "k2") == other.owner and held(repo, "k3") is None
    repo.unlock(other)
    assert repo.lock(["k1", "k2", "k3"], 60_000, 5, locks) is locks and locks.keys == ["k1", "k2", "k3"]
    final = repo.finish(stored, {"outcome": "created"}, locks)
    assert final == repo.get("alarm:e5") and final["outcome"] == "created" and "_token" not in final
    assert held_keys(repo) == []
    # A redelivery takes no lock: its write stops at the record.
    state, _again, locks = repo.store(record("e5"), 60_000, ["k0"])
    assert state == "done" and locks.keys == [] and held_keys(repo) == [] and held(repo, "k0") is None
    # Released locks are documents of the same collection, never shown as records, and dropped by the sweep.
    assert repo.count(repo.record_query()) == 1 and [d["_id"] for d in repo.find(repo.record_query(), 0, 10)] == [
        "alarm:e5"]
    assert repo.get(lock_id("k1")) is None
    assert repo.drop_released_locks() == 3 and repo.events.count_documents({}) == 1  # k1, k2, k3


def test_one_sweep_drops_released_locks_beyond_one_batch(repo):
    """A storm with a new customer per notification leaves several released locks per notification: a sweep
    deletes them batch after batch, not one batch per sweep."""
    keys = [f"customer-{i}" for i in range(RELEASED_BATCH + 100)]
    locks = repo.lock(keys, lease_ms=60_000, wait_seconds=5)
    assert locks is not None and len(locks.keys) == len(keys)
    repo.unlock(locks)
    assert repo.drop_released_locks() == len(keys) and repo.events.count_documents({}) == 0


def test_an_abandoned_event_is_taken_over_by_its_redelivery(repo):
    _state, first, locks = repo.store(record("e2"), lease_ms=60_000, keys=["k"])
    repo.abandon(first, locks)
    assert held_keys(repo) == []  # given back with the record
    state, second, _locks = repo.store(record("e2"), lease_ms=60_000)
    assert state == "taken over" and second["_token"] != first["_token"]
    assert repo.finish(first, {"outcome": "created"})["outcome"] == "received"  # the old holder can no longer finish
    assert repo.get("alarm:e2")["outcome"] == "received"
    repo.finish(second, {"outcome": "merged"})
    assert repo.get("alarm:e2")["outcome"] == "merged"


def test_a_lock_is_held_by_one_request_at_a_time(repo):
    owner = repo.lock(["report:C|service:S|m", "cause:alarm:1"], lease_ms=60_000, wait_seconds=5)
    assert owner is not None
    assert repo.lock(["cause:alarm:1"], lease_ms=60_000, wait_seconds=0.2) is None
    assert held_keys(repo) == ["cause:alarm:1", "report:C|service:S|m"]  # the failed attempt holds nothing
    waiting = IntakeRepository(repo.db, repo.problems)  # the waiter's own repository, whose attempts on the lock store are counted
    attempts = []
    waiting.events = AttemptCounter(waiting.events, attempts)
    taken = []
    waiter = threading.Thread(target=lambda: taken.append(waiting.lock(["cause:alarm:1", "cause:x"], 60_000, 30)))
    waiter.start()
    wait_for(lambda: len(attempts) >= 3, timeout=30)  # it has been refused the held key, again and again
    assert taken == [], "the waiter got a key while another request held it"
    repo.unlock(owner)
    waiter.join(30)
    assert taken and taken[0] is not None
    assert held(repo, "cause:alarm:1") == taken[0].owner


class AttemptCounter:
    """The intake collection, counting the bulk writes that try to take keys."""

    def __init__(self, collection, attempts: list):
        self._collection, self._attempts = collection, attempts

    def bulk_write(self, requests, *args, **kwargs):
        self._attempts.append(len(requests))
        return self._collection.bulk_write(requests, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._collection, name)


def test_an_expired_lock_is_taken_over(repo):
    assert repo.lock(["k"], lease_ms=1, wait_seconds=1) is not None
    time.sleep(0.01)
    assert repo.lock(["k"], lease_ms=60_000, wait_seconds=1) is not None


def problem(problem_id: str, *, customer: str, service: str, metric: str, status: str = "acknowledged",
            alarm: str | None = None, parent_key: str | None = None, created: str = "2026-11-21T09:00:00.000Z") -> dict:
    characteristic = [{"name": "metric", "value": metric}]
    if parent_key:
        characteristic.append({"name": GROUPED_BY, "value": parent_key})
    document = {"_id": problem_id, "_version": 1, "href": f"http://x/serviceProblem/{problem_id}", "status": status,
                "creationDate": created, "relatedParty": [{"id": customer, "role": "customer"}],
                "affectedService": [{"id": service}], "characteristic": characteristic}
    if alarm:
        document["underlyingAlarm"] = [{"id": alarm}]
    return with_derived_fields(document)  # as the ServiceProblem repository stores it


def test_the_open_report_of_a_customer_service_and_metric(repo, db):
    db[SERVICE_PROBLEMS].insert_many([
        problem("closed", customer="4711", service="123", metric="latency", status="closed"),
        problem("other-metric", customer="4711", service="123", metric="jitter"),
        problem("other-customer", customer="4712", service="123", metric="latency"),
        problem("newer", customer="4711", service="123", metric="latency", created="2026-11-21T10:00:00.000Z"),
        problem("older", customer="4711", service="123", metric="latency", created="2026-11-21T08:00:00.000Z"),
        problem("parent", customer="4711", service="123", metric="latency", parent_key="alarm:9",
                created="2026-11-21T07:00:00.000Z"),
    ])
    found = repo.open_report("4711", [("service", "123")], "latency")
    assert found.representation["id"] == "older" and found.version == 1 and found.document["_id"] == "older"
    assert repo.open_report("4711", [("service", "999"), ("service", "123")], "latency").representation["id"] == "older"
    assert repo.open_report("4711", [("product", "123")], "latency") is None
    assert repo.open_report("4713", [("service", "123")], "latency") is None


def test_reports_of_an_alarm_parents_and_siblings(repo, db):
    db[SERVICE_PROBLEMS].insert_many([
        problem("a", customer="C1", service="S1", metric="m", alarm="42"),
        problem("b", customer="C2", service="S2", metric="m", alarm="42"),
        problem("c", customer="C3", service="S3", metric="m", alarm="42", status="resolved"),
        problem("p", customer="C1", service="S1", metric="m", alarm="42", parent_key="alarm:42"),
    ])
    assert [r.representation["id"] for r in repo.open_reports_of_alarm("42")] == ["a", "b", "p"]  # children first
    assert repo.open_parent(["resource:x", "alarm:42"])["id"] == "p"
    assert repo.open_parent(["alarm:43"]) is None
    assert [r["id"] for r in repo.open_siblings(["alarm:42"], "C1", exclude="a")] == ["b"]
    assert [r["id"] for r in repo.open_siblings(["service:S2"], "C9", exclude="x")] == ["b"]


def test_record_listing_filters(repo):
    for event_id, outcome in (("1", "created"), ("2", "rejected"), ("3", "created")):
        _state, stored, locks = repo.store(record(event_id), 60_000, [f"k{event_id}"])
        repo.finish(stored, {"outcome": outcome}, locks)
    repo.lock(["held"], 60_000, 1)  # lock documents, released and held, are no records
    query = repo.record_query(outcome="created", source="alarm")
    assert sorted(d["_id"] for d in repo.find(query, 0, 10)) == ["alarm:1", "alarm:3"] and repo.count(query) == 2
    assert [d["_id"] for d in repo.find(repo.record_query(source_event_id="2"), 0, 10)] == ["alarm:2"]
    everything = repo.find(repo.record_query(), 0, 10)
    assert sorted(d["_id"] for d in everything) == ["alarm:1", "alarm:2", "alarm:3"]
    assert repo.count(repo.record_query()) == 3 and all("payload" not in d for d in everything)


def test_a_lock_waits_for_a_key_in_the_middle_and_then_holds_every_key(repo):
    other = repo.lock(["k2"], lease_ms=60_000, wait_seconds=1)
    taken = []
    waiter = threading.Thread(target=lambda: taken.append(repo.lock(["k3", "k1", "k2"], 60_000, 30)))
    waiter.start()
    wait_for(lambda: held(repo, "k1"), message="the free key before the held one taken")
    assert held(repo, "k3") is None, "a key after the held one was taken out of order"
    repo.unlock(other)
    waiter.join(30)
    assert taken and {key: held(repo, key) for key in ("k1", "k2", "k3")} == dict.fromkeys(("k1", "k2", "k3"),
                                                                                           taken[0].owner)
    repo.unlock(taken[0])
    assert held_keys(repo) == []


def test_records_left_received_are_found_once_their_lease_ran_out_and_taken_over_once(repo):
    _state, running, _locks = repo.store({**record("e9"), "_recordBase": "http://x/intake/record"}, lease_ms=60_000)
    # stored before records kept their processing context
    _state, legacy, _locks = repo.store(record("e10"), lease_ms=0)
    _state, crashed, _locks = repo.store({**record("e11"), "_recordBase": "http://x/intake/record"}, lease_ms=0,
                                         keys=["k"])
    time.sleep(0.01)
    assert [r["_id"] for r in repo.left_received(10)] == ["alarm:e11"]  # its expired lock is no record
    taken = repo.take_over(crashed, lease_ms=60_000)
    assert taken is not None and taken["_token"] != crashed["_token"]
    assert repo.take_over(crashed, lease_ms=60_000) is None  # the old token no longer holds it
    assert repo.left_received(10) == []
    assert running["outcome"] == legacy["outcome"] == "received"


def test_the_tickets_of_records_stored_by_an_earlier_version_are_carried_over_once(repo, db):
    # records as an earlier version stored them: finished, with the report they made or changed, no ticket document
    def old_record(event_id: str, ticket_id, problem_id: str, received: str) -> dict:
        return {"_id": f"troubleTicket:{event_id}", "source": "troubleTicket", "sourceEventId": event_id,
                "eventType": "TroubleTicketCreateEvent", "receivedAt": received, "outcome": "merged",
                "_problemId": problem_id, "payload": {"eventId": event_id, "event": {"troubleTicket": {"id": ticket_id}}}}

    db[INTAKE_EVENTS].insert_many([
        old_record("e1", "TT-1", "P-old", "2026-11-21T09:00:00.000Z"),
        old_record("e2", "TT-1", "P-new", "2026-11-21T09:05:00.000Z"),  # the latest record of TT-1
        old_record("e0", "TT-1", "P-older", "2026-11-21T08:00:00.000Z"),
        old_record("e3", "4711", "P-digits", "2026-11-21T09:00:00.000Z"),
        old_record("e4", 4712, "P-number", "2026-11-21T09:00:00.000Z"),  # no ticket id the intake reads: none
        {**old_record("e5", "TT-5", "P-5", "2026-11-21T09:00:00.000Z"), "outcome": "rejected", "_problemId": None},
    ])
    db[INTAKE_EVENTS].insert_one({"_id": "~ticket:TT-9", "_report": "P-written-by-this-version"})
    db[INTAKE_EVENTS].insert_one(old_record("e9", "TT-9", "P-stale", "2026-11-21T09:00:00.000Z"))
    db[INTAKE_EVENTS].delete_many({"_id": "~ticketsCarriedOver"})
    ensure_indexes(db)

    def tickets() -> dict:
        return {d["_id"]: d["_report"] for d in db[INTAKE_EVENTS].find({"_id": {"$gt": "~ticket:", "$lt": "~ticket;"}})}

    assert tickets() == {"~ticket:TT-1": "P-new", "~ticket:4711": "P-digits", "~ticket:TT-9": "P-written-by-this-version"}
    # once: a later start reads no record again (a record stored now without its ticket document stays so)
    db[INTAKE_EVENTS].insert_one(old_record("e6", "TT-6", "P-6", "2026-11-21T09:00:00.000Z"))
    ensure_indexes(db)
    assert "~ticket:TT-6" not in tickets()
    # none of these documents is a record: the record lists and reads never show them
    assert repo.count(repo.record_query()) == 8
    assert repo.count(repo.record_query(problem_id="P-new")) == 1
    assert repo.get("~ticket:TT-1") is None and repo.get("~ticketsCarriedOver") is None
