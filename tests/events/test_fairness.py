"""Fair delivery: a slow or dead listener never holds up the others (real listeners on loopback).

The bounds are generous (the property, not the machine's speed): the healthy listener is served long before
the slow or dead one could have been worked through in turn.
"""
from __future__ import annotations

import time

from tests.events.factory import add_events, add_subscription, event
from tests.support.polling import wait_for
from tmf_server.events.deliveries import DeliveryStore, new_delivery
from tmf_server.store.database import DELIVERIES, EVENTS


def test_a_slow_and_a_dead_listener_do_not_delay_a_healthy_one(db, listener_factory, dispatcher_factory):
    healthy, slow, dead = listener_factory(), listener_factory(), listener_factory(up=False)
    subscriptions = {name: add_subscription(db, listener.url)
                     for name, listener in (("healthy", healthy), ("slow", slow), ("dead", dead))}
    slow.hold.clear()  # accepts each request and answers only after 30 s: every attempt times out
    add_events(db, *(event(f"P{i}", 1) for i in range(40)))
    # Four threads, each attempt to the slow one lasting its whole 3 s timeout; retries 5 s apart. Taken in
    # turn (the old oldest-first order), the healthy listener's 40 events would wait behind the slow and dead
    # ones' attempts: about 40 x 3 s / 4 threads = 30 s.
    dispatcher = dispatcher_factory(delivery_concurrency=4, delivery_per_subscription=2, delivery_timeout=3.0,
                                    delivery_schedule=(5, 5, 5), lease_seconds=30)
    started = time.monotonic()
    dispatcher.wake()
    wait_for(lambda: len(healthy.delivered_ids()) == 40, 20, message="the healthy listener's 40 events")
    elapsed = time.monotonic() - started
    assert elapsed < 12, f"healthy listener served in {elapsed:.1f} s"
    # Each delivery is stored with its outcome by the group commit after its answer: wait for the last ones.
    wait_for(lambda: sorted(healthy.delivered_ids()) == sorted(d["eventId"] for d in db[DELIVERIES].find(
        {"subscriptionId": subscriptions["healthy"]["_id"], "state": "delivered"})), 20,
        message="the healthy listener's 40 deliveries stored as delivered")
    # The slow listener never had more than one attempt at a time (it never answered, so it stays unproven).
    assert slow.arrivals <= 2
    # The dead one was tried, then rested until its retry: its other deliveries were not attempted meanwhile.
    dead_attempts = sum(d["attemptCount"] for d in db[DELIVERIES].find(
        {"subscriptionId": subscriptions["dead"]["_id"]}))
    assert 1 <= dead_attempts <= 3


def test_after_a_restart_due_deliveries_of_healthy_listeners_go_first(db, listener_factory, dispatcher_factory):
    healthy, dead = listener_factory(), listener_factory()
    dead.hold.clear()  # a hung listener: accepts and never answers, so each attempt costs its whole timeout
    healthy_subscription, dead_subscription = add_subscription(db, healthy.url), add_subscription(db, dead.url)
    # A backlog left by an earlier run: 300 deliveries to the hung listener, all due and older than the
    # healthy listener's 10 (in the old oldest-first order: 300 x 3 s / 4 threads before the first of them).
    backlog = add_events(db, *(event(f"D{i}", 1) for i in range(300)))
    fresh = add_events(db, *(event(f"H{i}", 1) for i in range(10)))
    db[EVENTS].update_many({}, {"$set": {"_fanout": "done"}})
    store = DeliveryStore(db)
    store.create_many([new_delivery(e, dead_subscription["_id"], 1_000 + i) for i, e in enumerate(backlog)])
    store.create_many([new_delivery(e, healthy_subscription["_id"], 10_000 + i) for i, e in enumerate(fresh)])

    dispatcher = dispatcher_factory(delivery_concurrency=4, delivery_timeout=3.0, delivery_schedule=(30,),
                                    lease_seconds=30)
    started = time.monotonic()
    dispatcher.wake()
    wait_for(lambda: len(healthy.delivered_ids()) == 10, 20, message="the healthy listener's 10 events")
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"healthy listener served in {elapsed:.1f} s"
    assert sorted(healthy.delivered_ids()) == sorted(e["_id"] for e in fresh)
    # The hung listener was probed once and rests until that delivery's retry in 30 s.
    wait_for(lambda: db[DELIVERIES].count_documents({"subscriptionId": dead_subscription["_id"],
                                                     "attemptCount": {"$gt": 0}}) == 1,
             10, message="the probe's outcome")
    time.sleep(1)
    attempted = list(db[DELIVERIES].find({"subscriptionId": dead_subscription["_id"], "attemptCount": {"$gt": 0}}))
    assert len(attempted) == 1 and attempted[0]["state"] == "retrying" and dead.arrivals == 1


def test_a_client_error_is_parked_at_once_and_a_retryable_one_is_retried(db, listener_factory, dispatcher_factory):
    refusing = listener_factory(lambda _r, _n: (400, {}))
    busy = listener_factory(lambda _r, seen: (429, {}) if seen == 0 else (204, {}))
    refused, retried = add_subscription(db, refusing.url), add_subscription(db, busy.url)
    [stored] = add_events(db, event("P1", 1))
    dispatcher_factory().wake()
    wait_for(lambda: db[DELIVERIES].count_documents({"state": {"$in": ["parked", "delivered"]}}) == 2,
             message="both outcomes")
    parked = db[DELIVERIES].find_one({"subscriptionId": refused["_id"]})
    assert parked["state"] == "parked" and parked["attemptCount"] == 1
    assert "HTTP 400" in parked["reason"] and "not retried" in parked["reason"]
    assert len(refusing.received()) == 1
    delivered = db[DELIVERIES].find_one({"subscriptionId": retried["_id"]})
    assert delivered["state"] == "delivered" and delivered["attemptCount"] == 2
    assert [r.status for r in busy.received()] == [429, 204] and busy.delivered_ids() == [stored["_id"]]
