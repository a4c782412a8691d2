"""The dispatcher over a real embedded engine and real HTTP receivers: matching, payload, retries, order, parking."""
from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
from datetime import datetime
from types import SimpleNamespace

import flask
import pymongo
import pytest
from pymongo import monitoring

from tests.events.conftest import fast_settings
from tests.events.factory import BASE, T, add_events, add_subscription, event
from tests.support.polling import wait_for
from tmf_server.api import admin
from tmf_server.errors import Conflict, NotFound
from tmf_server.events.builder import Change
from tmf_server.events.deliveries import DeliveryStore, new_delivery
from tmf_server.events.dispatcher import Dispatcher
from tmf_server.events.outbox import PENDING, Outbox
from tmf_server.events.sources import LEASE_FIELDS, EventSource
from tmf_server.problems.repository import ServiceProblemRepository
from tmf_server.problems.repository import ensure_indexes as ensure_problem_indexes
from tmf_server.settings import Settings
from tmf_server.store.database import DELIVERIES, EVENTS, SERVICE_PROBLEMS, SUBSCRIPTIONS
from tmf_server.store.reader import CollectionReader

STATE = "ServiceProblemStateChangeEvent"
CREATE = "ServiceProblemCreateEvent"
CHANGE = "ServiceProblemAttributeValueChangeEvent"


def deliveries_of(db, subscription: dict) -> dict[str, dict]:
    """eventId -> delivery document, for one subscription."""
    return {d["eventId"]: d for d in db[DELIVERIES].find({"subscriptionId": subscription["_id"]})}


def count(db, collection: str, query: dict) -> int:
    return CollectionReader(db, collection).count(query)


def settled(db) -> bool:
    """No delivery still owes an attempt and no event awaits fan-out."""
    return (count(db, DELIVERIES, {"state": {"$in": ["pending", "retrying"]}}) == 0
            and count(db, EVENTS, {"_fanout": "pending"}) == 0)


def verify_signature(secret: str, request) -> bool:
    """Standard Webhooks verification, written independently of tmf_server.events.signing."""
    key = base64.b64decode(secret[len("whsec_"):]) if secret.startswith("whsec_") else secret.encode()
    signed = request.headers["webhook-id"].encode() + b"." + request.headers["webhook-timestamp"].encode() + b"." \
        + request.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    versions = [part.split(",", 1) for part in request.headers["webhook-signature"].split(" ")]
    return any(v == "v1" and hmac.compare_digest(sig, expected) for v, sig in versions)


def admin_context(db):
    """A Flask application context in which the admin handlers find the database."""
    app = flask.Flask("admin-test")
    app.extensions["tmf_server"] = SimpleNamespace(deliveries=DeliveryStore(db), settings=Settings())
    return app.test_request_context("/admin/delivery")


def attempt_time(attempt: dict) -> float:
    return datetime.fromisoformat(attempt["at"]).timestamp()


# -- fan-out ------------------------------------------------------------------------------------------------

def test_each_matching_active_subscription_gets_one_delivery_and_no_other_does(db, listener_factory,
                                                                               dispatcher_factory):
    e1 = event("P1", 1, 0, CREATE, priority=1, status="acknowledged", party="C42")
    e2 = event("P1", 2, 0, STATE, priority=3, status="inProgress")
    e3 = event("P2", 1, 0, CHANGE, priority=2, status="closed")
    # Filters in the forms the hub's TMF630 translator writes (over the stored notification).
    cases = [
        ({}, [e1, e2, e3]),
        ({"notification.eventType": STATE}, [e2]),
        ({"$and": [{"notification.eventType": {"$in": [CREATE, STATE]}},
                   {"notification.event.serviceProblem.priority": {"$lte": 2}}]}, [e1]),
        ({"notification.event.serviceProblem.relatedParty": {"$elemMatch": {"id": "C42"}}}, [e1]),
        ({"notification.event.serviceProblem.status": {"$nin": ["closed"]}}, [e1, e2]),
        ({"notification.eventType": "ServiceProblemDeleteEvent"}, []),
    ]
    receivers = [listener_factory() for _ in cases]
    subscriptions = [add_subscription(db, r.url, f) for r, (f, _) in zip(receivers, cases)]
    inactive_receiver = listener_factory()
    inactive = add_subscription(db, inactive_receiver.url, {}, active=False)
    add_events(db, e1, e2, e3)

    dispatcher = dispatcher_factory(start=False)
    for _ in range(20):  # run_once: one fan-out batch and one round of attempts, in this thread
        dispatcher.run_once()
        if settled(db):
            break
    assert settled(db)

    assert count(db, EVENTS, {"_fanout": "done"}) == 3
    assert count(db, EVENTS, {"_fanoutToken": {"$exists": True}}) == 0  # the fan-out lease is gone
    for subscription, receiver, (_filter, expected) in zip(subscriptions, receivers, cases):
        expected_ids = {e["_id"] for e in expected}
        mine = deliveries_of(db, subscription)
        assert set(mine) == expected_ids
        assert all(d["state"] == "delivered" and d["attemptCount"] == 1 for d in mine.values())
        assert sorted(receiver.delivered_ids()) == sorted(expected_ids)
        assert len(receiver.received()) == len(expected_ids)
    assert deliveries_of(db, inactive) == {} and inactive_receiver.arrivals == 0

    # A repeated fan-out (say a lease expired after the deliveries were written) creates nothing new.
    db[EVENTS].update_many({}, {"$set": {"_fanout": "pending"}})
    assert dispatcher.fan_out() == 3
    assert count(db, DELIVERIES, {}) == sum(len(expected) for _f, expected in cases)


def test_a_fan_out_batch_takes_over_expired_leases_only_within_its_limit(db):
    fresh = [event(f"F{i}", 1) for i in range(3)]
    expired = [event(f"X{i}", 1) for i in range(3)]
    for e in expired:  # leased by a dispatcher that died
        e.update({"_fanoutToken": "dead", "_fanoutOwner": "dead/1/x", "_fanoutUntil": 500})
    add_events(db, *fresh, *expired)
    source = EventSource(db)
    _token, first = source.claim_pending("me", 1_000, 60_000, 3)
    assert {e["_id"] for e in first} == {e["_id"] for e in fresh}
    _token, second = source.claim_pending("me", 1_000, 60_000, 2)
    assert len(second) == 2 and {e["_id"] for e in second} < {e["_id"] for e in expired}


# -- payload and headers ------------------------------------------------------------------------------------

def test_the_notification_is_posted_as_is_with_stable_id_timestamp_and_verifiable_signatures(
        db, listener_factory, dispatcher_factory):
    keyed, plain, unsigned = listener_factory(), listener_factory(), listener_factory()
    whsec = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
    add_subscription(db, keyed.url, secret=whsec)
    add_subscription(db, plain.url, secret="a plain shared secret")
    add_subscription(db, unsigned.url)
    [stored] = add_events(db, event("P1", 1))
    before = int(time.time())
    dispatcher_factory().wake()
    for receiver in (keyed, plain, unsigned):
        wait_for(lambda r=receiver: r.received(), message="the delivery")
    after = int(time.time())

    for receiver, secret in ((keyed, whsec), (plain, "a plain shared secret"), (unsigned, None)):
        [request] = receiver.received()
        assert request.body == json.dumps(stored["notification"]).encode()
        assert request.json == stored["notification"]
        assert request.headers["content-type"] == "application/json"
        assert request.headers["webhook-id"] == stored["_id"]
        assert before <= int(request.headers["webhook-timestamp"]) <= after
        if secret is None:
            assert "webhook-signature" not in request.headers
        else:
            assert verify_signature(secret, request)
            assert not verify_signature("a different secret", request)


# -- retries ---------------------------------------------------------------------------------------------

def test_a_failing_receiver_gets_the_event_again_with_the_same_webhook_id(db, listener_factory, dispatcher_factory):
    receiver = listener_factory(lambda _r, seen: (500, {}) if seen < 2 else (200, {}))
    subscription = add_subscription(db, receiver.url, secret="s3cret")
    [stored] = add_events(db, event("P1", 1))
    dispatcher_factory().wake()
    wait_for(lambda: settled(db), message="delivery")

    requests = receiver.received()
    assert [r.status for r in requests] == [500, 500, 200]
    assert {r.webhook_id for r in requests} == {stored["_id"]}
    assert all(verify_signature("s3cret", r) for r in requests)  # each signed with its own timestamp
    d = deliveries_of(db, subscription)[stored["_id"]]
    assert d["state"] == "delivered" and d["attemptCount"] == 3 and "deliveredAt" in d
    assert [a["statusCode"] for a in d["attempts"]] == [500, 500, 200]
    assert all(isinstance(a["durationMs"], int) and a["at"] for a in d["attempts"])
    assert d["attempts"][0]["error"] == "HTTP 500 Internal Server Error"
    gaps = [b.at - a.at for a, b in itertools.pairwise(requests)]
    assert gaps[0] >= 0.2 * 0.9 and gaps[1] >= 0.4 * 0.9  # the schedule, jittered by at most 10%


def test_a_receiver_down_for_a_while_gets_the_event_once_it_is_back(db, listener_factory, dispatcher_factory):
    receiver = listener_factory(up=False)
    subscription = add_subscription(db, receiver.url)
    [stored] = add_events(db, event("P1", 1))
    dispatcher_factory(delivery_schedule=(0.3, 0.6, 1.0, 2.0, 4.0)).wake()
    wait_for(lambda: deliveries_of(db, subscription).get(stored["_id"], {}).get("attemptCount", 0) >= 2,
             message="two failed attempts")
    d = deliveries_of(db, subscription)[stored["_id"]]
    assert d["state"] == "retrying" and "refused" in d["attempts"][0]["error"].lower()
    assert d["attempts"][0]["statusCode"] is None

    receiver.up()
    wait_for(lambda: settled(db), message="delivery after the receiver came back")
    assert receiver.delivered_ids() == [stored["_id"]]
    assert deliveries_of(db, subscription)[stored["_id"]]["state"] == "delivered"


def test_retry_after_is_honoured(db, listener_factory, dispatcher_factory):
    receiver = listener_factory(lambda _r, seen: (503, {"Retry-After": "2"}) if seen == 0 else (204, {}))
    subscription = add_subscription(db, receiver.url)
    [stored] = add_events(db, event("P1", 1))
    dispatcher_factory().wake()  # the schedule alone would retry after 0.2 s
    wait_for(lambda: settled(db), message="delivery")
    first, second = receiver.received()
    assert second.at - first.at >= 1.95
    d = deliveries_of(db, subscription)[stored["_id"]]
    assert d["attempts"][0]["retryAfter"] == "2" and d["state"] == "delivered"


def test_410_gone_disables_the_subscription_and_cancels_its_deliveries(db, listener_factory, dispatcher_factory):
    gone = listener_factory(lambda _r, _n: (410, {}))
    healthy = listener_factory()
    subscription = add_subscription(db, gone.url)
    other = add_subscription(db, healthy.url)
    events = add_events(db, *(event("P1", v) for v in (1, 2, 3)))
    dispatcher = dispatcher_factory()
    dispatcher.wake()
    wait_for(lambda: settled(db), message="all deliveries settled")

    assert len(gone.received()) == 1  # the first event; the others were not sent
    stored = db[SUBSCRIPTIONS].find_one({"_id": subscription["_id"]})
    # not `is False`: the embedded engine reads a boolean written by $set back as 0 (docs/mongodb.md)
    assert not stored["_active"] and "410" in stored["_disabledReason"] and stored["_disabledAt"]
    mine = deliveries_of(db, subscription)
    assert {d["state"] for d in mine.values()} == {"cancelled"}
    assert mine[events[0]["_id"]]["attempts"][0]["statusCode"] == 410
    assert healthy.delivered_ids() == [e["_id"] for e in events]  # other subscribers are not affected

    [later] = add_events(db, event("P1", 4))
    dispatcher.wake()
    wait_for(lambda: later["_id"] in healthy.delivered_ids(), message="the later event")
    assert later["_id"] not in deliveries_of(db, subscription) and len(gone.received()) == 1
    assert other["_id"] in {d["subscriptionId"] for d in db[DELIVERIES].find({"eventId": later["_id"]})}


def test_the_last_failure_parks_the_delivery_and_redrive_sends_it_again(db, listener_factory, dispatcher_factory):
    answer = {"status": 500}
    receiver = listener_factory(lambda _r, _n: (answer["status"], {}))
    subscription = add_subscription(db, receiver.url)
    [stored] = add_events(db, event("P1", 1))
    dispatcher = dispatcher_factory()
    dispatcher.wake()
    delivery_id = f"{stored['_id']}:{subscription['_id']}"
    wait_for(lambda: deliveries_of(db, subscription).get(stored["_id"], {}).get("state") == "parked",
             message="parking")
    parked = deliveries_of(db, subscription)[stored["_id"]]
    assert parked["attemptCount"] == 4 and len(receiver.received()) == 4  # the first attempt and 3 retries
    assert parked["reason"].startswith("gave up after 4 failed attempts") and parked["parkedAt"]

    with admin_context(db):
        listed, status, headers = admin.list_deliveries(state="parked", subscriptionId=subscription["_id"])
        assert [d["id"] for d in listed] == [delivery_id] and headers["X-Total-Count"] == "1" and status == 200
        answer["status"] = 204
        redriven = admin.redrive_delivery(delivery_id)
        assert redriven["state"] == "pending" and redriven["redriveCount"] == 1
        dispatcher.wake()
        wait_for(lambda: settled(db), message="the redriven delivery")
        shown = admin.get_delivery(delivery_id)
        assert shown["state"] == "delivered" and shown["attemptCount"] == 5 and len(shown["attempts"]) == 5
        with pytest.raises(Conflict, match="only a parked delivery"):
            admin.redrive_delivery(delivery_id)
        with pytest.raises(NotFound):
            admin.redrive_delivery("no-such:delivery")
    assert receiver.delivered_ids() == [stored["_id"]]


def test_redrive_of_all_parked_deliveries_of_a_subscription(db, listener_factory, dispatcher_factory):
    answer = {"status": 500}
    receiver = listener_factory(lambda _r, _n: (answer["status"], {}))
    subscription = add_subscription(db, receiver.url)
    events = add_events(db, event("P1", 1), event("P2", 1), event("P3", 1))
    dispatcher = dispatcher_factory(delivery_schedule=(0.1,))
    dispatcher.wake()
    wait_for(lambda: settled(db), message="parking")
    assert {d["state"] for d in deliveries_of(db, subscription).values()} == {"parked"}
    answer["status"] = 200
    with admin_context(db):
        assert admin.redrive_parked(subscription["_id"]) == {"subscriptionId": subscription["_id"], "redriven": 3}
    dispatcher.wake()
    wait_for(lambda: settled(db), message="redriven deliveries")
    assert sorted(receiver.delivered_ids()) == sorted(e["_id"] for e in events)


def test_a_refused_callback_is_a_failed_attempt_and_nothing_is_sent(db, listener_factory, dispatcher_factory):
    receiver = listener_factory()
    subscription = add_subscription(db, receiver.url)
    [stored] = add_events(db, event("P1", 1))
    dispatcher_factory(callback_allow=(), delivery_schedule=(0.1,)).wake()  # loopback no longer allowed
    wait_for(lambda: settled(db), message="parking")
    d = deliveries_of(db, subscription)[stored["_id"]]
    assert d["state"] == "parked" and d["attemptCount"] == 2
    assert all(a["error"].startswith("callback refused:") for a in d["attempts"])
    assert receiver.arrivals == 0


def test_a_filter_that_cannot_be_evaluated_parks_instead_of_dropping(db, listener_factory, dispatcher_factory):
    broken, fine = listener_factory(), listener_factory()
    bad = add_subscription(db, broken.url, {"notification.eventType": {"$bogus": 1}})
    add_subscription(db, fine.url)
    [stored] = add_events(db, event("P1", 1))
    dispatcher_factory().wake()
    wait_for(lambda: settled(db), message="fan-out")
    d = deliveries_of(db, bad)[stored["_id"]]
    assert d["state"] == "parked" and "filter could not run" in d["reason"] and broken.arrivals == 0
    assert fine.delivered_ids() == [stored["_id"]]


def test_deliveries_of_a_deleted_subscription_are_cancelled(db, listener_factory, dispatcher_factory):
    receiver = listener_factory(up=False)
    subscription = add_subscription(db, receiver.url)
    events = add_events(db, *(event("P1", v) for v in (1, 2, 3)))
    dispatcher_factory(delivery_schedule=(0.3, 0.3, 0.3, 0.3, 5, 5)).wake()
    wait_for(lambda: any(d["attemptCount"] for d in deliveries_of(db, subscription).values()), message="an attempt")
    db[SUBSCRIPTIONS].delete_one({"_id": subscription["_id"]})  # DELETE /hub/{id}
    wait_for(lambda: settled(db), message="cancellation")
    mine = deliveries_of(db, subscription)
    assert {d["state"] for d in mine.values()} == {"cancelled"}
    assert {d["reason"] for d in mine.values()} == {"the subscription was deleted"}
    assert all(mine[e["_id"]]["attemptCount"] == 0 for e in events[1:])  # the later ones were never sent


# -- order -------------------------------------------------------------------------------------------------

def assert_in_order(requests, expected_order: list[str]) -> None:
    """No event is sent before every earlier one (of the same problem) got its 2xx; each is delivered once."""
    delivered: list[str] = []
    for request in requests:
        position = expected_order.index(request.webhook_id)
        assert request.webhook_id not in delivered, f"{request.webhook_id} delivered twice"
        assert delivered == expected_order[:position], \
            f"{request.webhook_id} sent before {expected_order[len(delivered)]} was delivered"
        if request.status // 100 == 2:
            delivered.append(request.webhook_id)
    assert delivered == expected_order


def test_order_per_subscriber_and_problem_holds_under_retries(db, listener_factory, dispatcher_factory):
    # Every event fails its first attempt; one of them with a Retry-After that holds its chain up for 1 s.
    def flaky(request, seen):
        if seen == 0:
            return 503, ({"Retry-After": "1"} if request.json["description"] == "P2 v2.0" else {})
        return 200, {}

    flaky_receiver, steady_receiver = listener_factory(flaky), listener_factory()
    add_subscription(db, flaky_receiver.url)
    add_subscription(db, steady_receiver.url)
    chains = {p: [event(p, v, s) for v in (1, 2, 3) for s in ((0, 1) if v == 2 else (0,))] for p in ("P1", "P2", "P3")}
    # Stored out of order within each problem (as concurrent writers may publish them).
    add_events(db, *[e for chain in chains.values() for e in reversed(chain)])
    dispatcher_factory(delivery_concurrency=6).wake()
    wait_for(lambda: settled(db), 30, message="every delivery")
    for receiver in (flaky_receiver, steady_receiver):
        for chain in chains.values():
            ids = [e["_id"] for e in chain]
            assert_in_order([r for r in receiver.received() if r.webhook_id in ids], ids)
    assert len(flaky_receiver.received()) == 2 * len(steady_receiver.received()) == 24


def test_a_parked_delivery_does_not_block_later_ones(db, listener_factory, dispatcher_factory):
    first, second, third = event("P1", 1), event("P1", 2), event("P1", 3)
    receiver = listener_factory(lambda r, _n: (500, {}) if r.webhook_id == first["_id"] else (200, {}))
    subscription = add_subscription(db, receiver.url)
    add_events(db, first, second, third)
    dispatcher_factory().wake()
    wait_for(lambda: settled(db), message="parking and delivery")
    states = {k: d["state"] for k, d in deliveries_of(db, subscription).items()}
    assert states == {first["_id"]: "parked", second["_id"]: "delivered", third["_id"]: "delivered"}
    assert [r.webhook_id for r in receiver.received()] == [first["_id"]] * 4 + [second["_id"], third["_id"]]


def test_a_delivery_waits_until_earlier_events_of_its_problem_are_fanned_out(db, listener_factory,
                                                                              dispatcher_factory):
    receiver = listener_factory()
    add_subscription(db, receiver.url)
    earlier, later = event("P1", 1), event("P1", 2)
    # The earlier event is held by a dispatcher that died while fanning it out: its lease runs 1.5 s more.
    earlier.update({"_fanoutToken": "dead", "_fanoutOwner": "dead/1/x",
                    "_fanoutUntil": int(time.time() * 1000) + 1500})
    add_events(db, earlier, later)
    dispatcher_factory().wake()
    wait_for(lambda: settled(db), message="both deliveries")
    assert receiver.delivered_ids() == [earlier["_id"], later["_id"]]


# -- leases ------------------------------------------------------------------------------------------------

def test_the_lease_of_a_dispatcher_that_died_mid_delivery_expires_and_another_takes_over(
        db, listener_factory, dispatcher_factory):
    receiver = listener_factory()
    subscription = add_subscription(db, receiver.url)
    [stored] = add_events(db, event("P1", 1))
    ghost = dispatcher_factory(start=False, name="ghost", lease_seconds=1.5)
    ghost.fan_out()
    [claimed], _busy = ghost.claim_due(1)  # ... and then its process dies without sending or releasing
    survivor = dispatcher_factory(name="survivor")
    survivor.wake()
    wait_for(lambda: settled(db), message="the takeover")
    [attempt] = deliveries_of(db, subscription)[stored["_id"]]["attempts"]
    assert attempt["dispatcher"] == survivor.owner
    assert attempt_time(attempt) * 1000 >= claimed.delivery["leaseUntil"] - 5  # not before the lease ended
    assert receiver.delivered_ids() == [stored["_id"]]


def test_a_stopped_dispatcher_finishes_in_flight_attempts_and_releases_its_claims(db, listener_factory,
                                                                                  dispatcher_factory):
    # Two slow receivers: attempts stay in flight until released (one each: a listener that has not
    # answered yet gets one attempt at a time).
    receivers = [listener_factory(), listener_factory()]
    for receiver in receivers:
        receiver.hold.clear()
        add_subscription(db, receiver.url)
    events = add_events(db, *(event(f"P{i}", 1) for i in range(6)))
    # A long lease: anything the first dispatcher kept would hold the second one up for a minute.
    first = dispatcher_factory(name="first", delivery_concurrency=2, lease_seconds=60, delivery_timeout=30)
    first.wake()
    wait_for(lambda: sum(r.arrivals for r in receivers) == 2, message="two attempts in flight")

    outcome = {}
    stopper = threading.Thread(target=lambda: outcome.setdefault("stopped", first.stop(20)))
    stopper.start()
    wait_for(lambda: not first._threads[0].is_alive(), message="the loop to end")
    for receiver in receivers:
        receiver.hold.set()  # the attempts in flight complete
    stopper.join(20)
    assert outcome["stopped"] is True
    now = int(time.time() * 1000)
    assert count(db, DELIVERIES, {"leaseOwner": first.owner}) == 0
    assert count(db, DELIVERIES, {"leaseUntil": {"$gt": now}}) == 0
    assert count(db, DELIVERIES, {"state": "delivered"}) == 2

    second = dispatcher_factory(name="second")
    second.wake()
    wait_for(lambda: settled(db), 20, message="the rest, promptly")
    for receiver in receivers:
        assert sorted(receiver.delivered_ids()) == sorted(e["_id"] for e in events)  # each exactly once
    assert {d["attempts"][0]["dispatcher"] for d in db[DELIVERIES].find()} == {first.owner, second.owner}


def test_attempts_are_stored_as_documents_and_only_a_due_unheld_delivery_can_be_claimed(db):
    # $push turns sub-documents into JSON strings on the embedded engine; the store rewrites the array.
    store = DeliveryStore(db)
    [stored] = add_events(db, event("P1", 1))
    store.create_many([new_delivery(stored, "S", 0)])
    assert store.create_many([new_delivery(stored, "S", 0)]) == 0  # a repeat is harmless
    delivery_id = f"{stored['_id']}:S"
    read = store.get(delivery_id)
    [claimed] = store.claim_many([read], "me", 1, 1000)
    assert claimed["leaseOwner"] == "me" and claimed["leaseUntil"] == 1001
    assert store.claim_many([read], "other", 1, 1000) == []  # one claim wins: it is held until 1,001
    assert store.complete(claimed, {"state": "retrying", "nextAttemptAt": 3}, {"at": "x", "statusCode": 500}, 2)
    assert store.claim_many([read], "early", 2, 1000) == []  # not due before its retry
    [claimed] = store.claim_many([store.get(delivery_id)], "me", 3, 1000)
    assert store.complete(claimed, {"state": "delivered"}, {"at": "y", "statusCode": 200}, 4)
    assert store.get(delivery_id)["attempts"] == [{"at": "x", "statusCode": 500}, {"at": "y", "statusCode": 200}]
    assert store.claim_many([read], "late", 10_000, 1000) == []  # a finished delivery is never claimed again
    assert not store.complete(claimed, {"state": "parked"}, None, 10_001)  # nor completed with an ended lease
    assert store.get(delivery_id)["state"] == "delivered"


def test_background_chores_run_from_the_loop_and_a_failing_one_stops_nothing(db, dispatcher_factory):
    """Dispatcher.every: other packages' background work (the intake's sweep) runs periodically from the loop
    thread; a chore that raises is logged, and the loop and the other chores go on."""
    runs = {"ok": 0, "failing": 0}

    def failing():
        runs["failing"] += 1
        raise RuntimeError("a chore that fails")

    dispatcher = dispatcher_factory(start=False)
    dispatcher.every(0.01, failing).every(0.01, lambda: runs.__setitem__("ok", runs["ok"] + 1))
    dispatcher.start()
    wait_for(lambda: runs["failing"] >= 3 and runs["ok"] >= 3, message="both chores run several times")
    assert not dispatcher.join(0), "the dispatcher's threads still run"


class Commands(monitoring.CommandListener):
    """The commands a client sends, in order: (command name, collection)."""

    def __init__(self):
        self.sent: list[tuple[str, str]] = []

    def started(self, event):
        self.sent.append((event.command_name, event.command.get(event.command_name)))

    def to(self, collection: str, names=("insert", "update", "delete")) -> list[str]:
        return [name for name, target in self.sent if target == collection and name in names]

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


def test_events_published_while_nobody_subscribes_are_stored_done_in_one_write(db, engine):
    """Without an active subscription there is nobody to fan out to: each event is stored once, done and
    unleased, instead of stored, leased and marked done (two updates of every event)."""
    db[SERVICE_PROBLEMS].delete_many({})
    ensure_problem_indexes(db)
    # written, left for the dispatcher
    written = ServiceProblemRepository(db, Outbox(db, publisher=lambda _document: None))
    for index in range(3):
        written.insert({"id": f"quiet-{index}", "href": f"{BASE}/serviceProblem/quiet-{index}", "status": "acknowledged",
                        "priority": 3, "category": "c", "description": "d", "reason": "r",
                        "originatorParty": {"id": "C1", "@referredType": "Individual"}}, Change(T))
    commands = Commands()
    client = pymongo.MongoClient(engine.uri, tz_aware=True, event_listeners=[commands])
    dispatcher = Dispatcher(client["tmf656"], fast_settings(engine.uri)).start()
    try:
        wait_for(lambda: count(db, SERVICE_PROBLEMS, {PENDING: True}) == 0 and count(db, EVENTS, {}) == 3,
                 message="the three outboxes published")
    finally:
        assert dispatcher.stop(15)
        client.close()
    stored = list(db[EVENTS].find({}))
    assert {e["_problemId"] for e in stored} == {"quiet-0", "quiet-1", "quiet-2"}
    assert all(e["_fanout"] == "done" and not set(LEASE_FIELDS) & set(e) for e in stored)
    assert commands.to(EVENTS) == ["insert"]  # one insert_many, and no update of the events
    assert count(db, DELIVERIES, {}) == 0


def test_subscriptions_are_read_after_the_changes_whose_events_they_get(db, engine, listener_factory):
    """A subscription acknowledged before a change was written gets the change's event: the dispatcher reads
    the active subscriptions after the outboxes it publishes, never before (a list read earlier could miss a
    subscription made between the two reads, and the event would be stored without its delivery)."""
    db[SERVICE_PROBLEMS].delete_many({})
    ensure_problem_indexes(db)
    receiver = listener_factory()
    add_subscription(db, receiver.url)
    ServiceProblemRepository(db, Outbox(db, publisher=lambda _document: None)).insert(
        {"id": "ordered", "href": f"{BASE}/serviceProblem/ordered", "status": "acknowledged", "priority": 3,
         "category": "c", "description": "d", "reason": "r", "originatorParty": {"id": "C1"}}, Change(T))
    commands = Commands()
    client = pymongo.MongoClient(engine.uri, tz_aware=True, event_listeners=[commands])
    dispatcher = Dispatcher(client["tmf656"], fast_settings(engine.uri)).start()
    try:
        wait_for(lambda: receiver.delivered_ids(), message="the event delivered")
    finally:
        assert dispatcher.stop(15)
        client.close()
    sent = commands.sent
    stored = sent.index(("insert", EVENTS))
    outboxes_read = max(i for i, command in enumerate(sent[:stored]) if command == ("find", SERVICE_PROBLEMS))
    assert ("find", SUBSCRIPTIONS) in sent[outboxes_read:stored]
