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
    INTAKE_LOCKS,
    IntakeRepository,
    ensure_indexes,
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
    for name in (INTAKE_EVENTS, INTAKE_LOCKS, SERVICE_PROBLEMS):
        db[name].delete_many({})
    return IntakeRepository(db, ServiceProblemRepository(db, Outbox(db)))


def record(event_id: str) -> dict:
    return {"_id": f"alarm:{event_id}", "source": "alarm", "sourceEventId": event_id, "eventType": "AlarmCreateEvent",
            "receivedAt": "2026-11-21T09:00:00.000Z", "payload": {"eventId": event_id}}


def test_store_first_recognises_redeliveries(repo):
    state, stored = repo.store(record("e1"), lease_ms=60_000)
    assert state == "new" and stored["outcome"] == "received"
    assert repo.store(record("e1"), lease_ms=60_000)[0] == "busy"  # still being processed
    repo.finish("alarm:e1", stored["_token"], {"outcome": "created", "reason": "r"})
    state, again = repo.store(record("e1"), lease_ms=60_000)
    assert state == "done" and again["outcome"] == "created"
    assert repo.get("alarm:e1")["duplicateCount"] == 1
    assert "_token" not in repo.get("alarm:e1") and repo.count({}) == 1


def test_an_abandoned_event_is_taken_over_by_its_redelivery(repo):
    _state, first = repo.store(record("e2"), lease_ms=60_000)
    repo.abandon("alarm:e2", first["_token"])
    state, second = repo.store(record("e2"), lease_ms=60_000)
    assert state == "taken over" and second["_token"] != first["_token"]
    repo.finish("alarm:e2", first["_token"], {"outcome": "created"})  # the old holder can no longer finish it
    assert repo.get("alarm:e2")["outcome"] == "received"
    repo.finish("alarm:e2", second["_token"], {"outcome": "merged"})
    assert repo.get("alarm:e2")["outcome"] == "merged"


def test_a_lock_is_held_by_one_request_at_a_time(repo):
    owner = repo.lock(["report:C|service:S|m", "cause:alarm:1"], lease_ms=60_000, wait_seconds=5)
    assert owner is not None
    assert repo.lock(["cause:alarm:1"], lease_ms=60_000, wait_seconds=0.2) is None
    assert repo.locks.count_documents({}) == 2  # the failed attempt holds nothing
    waiting = IntakeRepository(repo.db, repo.problems)  # the waiter's own repository, whose attempts on the lock store are counted
    attempts = []
    waiting.locks = AttemptCounter(waiting.locks, attempts)
    taken = []
    waiter = threading.Thread(target=lambda: taken.append(waiting.lock(["cause:alarm:1", "cause:x"], 60_000, 30)))
    waiter.start()
    wait_for(lambda: len(attempts) >= 3, timeout=30)  # it has been refused the held key, again and again
    assert taken == [], "the waiter got a key while another request held it"
    repo.unlock(["report:C|service:S|m", "cause:alarm:1"], owner)
    waiter.join(30)
    assert taken and taken[0] is not None
    assert repo.locks.find_one({"_id": "cause:alarm:1"})["owner"] == taken[0]


class AttemptCounter:
    """The lock collection, counting the inserts that try to take a key."""

    def __init__(self, collection, attempts: list):
        self._collection, self._attempts = collection, attempts

    def insert_many(self, documents, *args, **kwargs):
        self._attempts.append([document["_id"] for document in documents])
        return self._collection.insert_many(documents, *args, **kwargs)

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
    assert repo.open_report("4711", [("service", "123")], "latency")["id"] == "older"
    assert repo.open_report("4711", [("service", "999"), ("service", "123")], "latency")["id"] == "older"
    assert repo.open_report("4711", [("product", "123")], "latency") is None
    assert repo.open_report("4713", [("service", "123")], "latency") is None


def test_reports_of_an_alarm_parents_and_siblings(repo, db):
    db[SERVICE_PROBLEMS].insert_many([
        problem("a", customer="C1", service="S1", metric="m", alarm="42"),
        problem("b", customer="C2", service="S2", metric="m", alarm="42"),
        problem("c", customer="C3", service="S3", metric="m", alarm="42", status="resolved"),
        problem("p", customer="C1", service="S1", metric="m", alarm="42", parent_key="alarm:42"),
    ])
    assert [r["id"] for r in repo.open_reports_of_alarm("42")] == ["a", "b", "p"]  # children first
    assert repo.open_parent(["resource:x", "alarm:42"])["id"] == "p"
    assert repo.open_parent(["alarm:43"]) is None
    assert [r["id"] for r in repo.open_siblings(["alarm:42"], "C1", exclude="a")] == ["b"]
    assert [r["id"] for r in repo.open_siblings(["service:S2"], "C9", exclude="x")] == ["b"]


def test_record_listing_filters(repo):
    for event_id, outcome in (("1", "created"), ("2", "rejected"), ("3", "created")):
        _state, stored = repo.store(record(event_id), 60_000)
        repo.finish(stored["_id"], stored["_token"], {"outcome": outcome})
    query = repo.record_query(outcome="created", source="alarm")
    assert sorted(d["_id"] for d in repo.find(query, 0, 10)) == ["alarm:1", "alarm:3"] and repo.count(query) == 2
    assert [d["_id"] for d in repo.find(repo.record_query(source_event_id="2"), 0, 10)] == ["alarm:2"]
    assert all("payload" not in d for d in repo.find({}, 0, 10))


def test_a_lock_waits_for_a_key_in_the_middle_and_then_holds_every_key(repo):
    other = repo.lock(["k2"], lease_ms=60_000, wait_seconds=1)
    taken = []
    waiter = threading.Thread(target=lambda: taken.append(repo.lock(["k3", "k1", "k2"], 60_000, 30)))
    waiter.start()
    wait_for(lambda: repo.locks.find_one({"_id": "k1"}), message="the free key before the held one taken")
    assert repo.locks.find_one({"_id": "k3"}) is None, "a key after the held one was taken out of order"
    repo.unlock(["k2"], other)
    waiter.join(30)
    owners = {d["_id"]: d["owner"] for d in repo.locks.find({"_id": {"$in": ["k1", "k2", "k3"]}})}
    assert taken and owners == {"k1": taken[0], "k2": taken[0], "k3": taken[0]}
    repo.unlock(["k1", "k2", "k3"], taken[0])
    assert repo.locks.count_documents({}) == 0


def test_records_left_received_are_found_once_their_lease_ran_out_and_taken_over_once(repo):
    _state, running = repo.store({**record("e9"), "_recordBase": "http://x/intake/record"}, lease_ms=60_000)
    _state, legacy = repo.store(record("e10"), lease_ms=0)  # stored before records kept their processing context
    _state, crashed = repo.store({**record("e11"), "_recordBase": "http://x/intake/record"}, lease_ms=0)
    time.sleep(0.01)
    assert [r["_id"] for r in repo.left_received(10)] == ["alarm:e11"]
    taken = repo.take_over(crashed, lease_ms=60_000)
    assert taken is not None and taken["_token"] != crashed["_token"]
    assert repo.take_over(crashed, lease_ms=60_000) is None  # the old token no longer holds it
    assert repo.left_received(10) == []
    assert running["outcome"] == legacy["outcome"] == "received"
