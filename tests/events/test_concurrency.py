"""Several dispatchers over one database: every event reaches every subscriber exactly once, in order per problem."""
from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pymongo

from tests.events.factory import add_events, add_subscription, event
from tests.events.test_dispatcher import assert_in_order, count, settled
from tests.support.polling import wait_for
from tmf_server.events.deliveries import DeliveryStore, new_delivery
from tmf_server.events.sources import EventSource
from tmf_server.store.database import DELIVERIES, EVENTS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STATE = "ServiceProblemStateChangeEvent"
CHANGE = "ServiceProblemAttributeValueChangeEvent"


def burst(problems: int, versions: int) -> list[list[dict]]:
    """Waves of events as a busy server publishes them: wave v holds version v of every problem."""
    return [[event(f"B{p}", v, 0, STATE if (p + v) % 2 else CHANGE) for p in range(problems)]
            for v in range(1, versions + 1)]


def subscribe_three(db, listener_factory):
    receivers = [listener_factory() for _ in range(3)]
    add_subscription(db, receivers[0].url)
    add_subscription(db, receivers[1].url, secret="whsec_c2VjcmV0")
    add_subscription(db, receivers[2].url, {"notification.eventType": STATE})
    return receivers


def assert_exactly_once_in_order(receivers, waves) -> None:
    events = [e for wave in waves for e in wave]
    expected = [[e["_id"] for e in events], [e["_id"] for e in events],
                [e["_id"] for e in events if e["eventType"] == STATE]]
    for receiver, wanted in zip(receivers, expected):
        counts = collections.Counter(receiver.delivered_ids())
        assert set(counts) == set(wanted), "missing or unexpected events"
        assert [i for i, n in counts.items() if n > 1] == [], "events delivered more than once"
        assert len(receiver.received()) == len(wanted)  # nothing failed, so nothing was sent twice
        by_problem = collections.defaultdict(list)
        for e in events:
            if e["_id"] in counts:
                by_problem[e["_problemId"]].append(e["_id"])
        for ids in by_problem.values():
            wanted_set = set(ids)
            assert_in_order([r for r in receiver.received() if r.webhook_id in wanted_set], ids)


def test_claims_are_exclusive_under_contention(db, dispatcher_factory):
    """Eight dispatchers (eight clients) race to claim the same delivery, 50 times: exactly one wins each time."""
    [stored] = add_events(db, event("P1", 1))
    store = DeliveryStore(db)
    store.create_many([new_delivery(stored, "S", 0)])
    contenders = [dispatcher_factory(start=False, name=f"c{i}") for i in range(8)]
    for round_ in range(50):
        read = store.get(f"{stored['_id']}:S")
        winners = []
        barrier = threading.Barrier(len(contenders))

        def race(dispatcher, read=read, now=round_ * 10_000 + 1, barrier=barrier, winners=winners):
            barrier.wait()
            if dispatcher.deliveries.claim_many([read], dispatcher.owner, now, 1):
                winners.append(dispatcher.owner)

        threads = [threading.Thread(target=race, args=(d,)) for d in contenders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert len(winners) == 1, f"round {round_}: {winners}"


def test_fan_out_leases_are_exclusive_under_contention(engine, db):
    """Eight clients lease pending events at once: every event has exactly one owner."""
    add_events(db, *(event(f"P{i}", 1) for i in range(200)))
    clients = [pymongo.MongoClient(engine.uri) for _ in range(8)]
    owned: dict[str, list[str]] = {}
    barrier = threading.Barrier(len(clients))

    def lease(index, client):
        barrier.wait()
        _token, events = EventSource(client["tmf656"]).claim_pending(f"o{index}", 1_000, 60_000, 200)
        owned[f"o{index}"] = [e["_id"] for e in events]

    threads = [threading.Thread(target=lease, args=(i, c)) for i, c in enumerate(clients)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        for client in clients:
            client.close()
    all_owned = [event_id for ids in owned.values() for event_id in ids]
    assert len(all_owned) == len(set(all_owned)) == 200


def test_two_dispatchers_deliver_a_burst_exactly_once_per_subscriber(db, listener_factory, dispatcher_factory):
    receivers = subscribe_three(db, listener_factory)
    waves = burst(problems=30, versions=10)  # 300 events
    first, second = dispatcher_factory(name="first"), dispatcher_factory(name="second")
    for wave in waves:
        add_events(db, *wave)
        first.wake()  # the server process that wrote them wakes its own dispatcher; the other one polls
    wait_for(lambda: settled(db), 90, message="every delivery of the burst")
    assert_exactly_once_in_order(receivers, waves)
    owners = {d["attempts"][0]["dispatcher"] for d in db[DELIVERIES].find({}, {"attempts": 1})}
    assert owners == {first.owner, second.owner}  # both took part


def test_two_worker_processes_deliver_a_burst_exactly_once_and_stop_on_sigterm(engine, db, listener_factory):
    receivers = subscribe_three(db, listener_factory)
    script = ("import sys\n"
              "from tmf_server.workers import run_workers\n"
              "from tmf_server.settings import Settings\n"
              "settings = Settings(mongodb_uri=sys.argv[1], callback_allow=('loopback',), delivery_timeout=2.0,\n"
              "                    delivery_schedule=(0.2, 0.4, 0.6), lease_seconds=5.0, dispatch_poll_seconds=0.05,\n"
              "                    db_timeout_ms=1000)\n"
              "sys.exit(run_workers(settings, 2))\n")
    workers = subprocess.Popen([sys.executable, "-c", script, engine.uri], cwd=PROJECT_ROOT, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        waves = burst(problems=20, versions=10)  # 200 events
        for wave in waves:
            add_events(db, *wave)
        wait_for(lambda: settled(db), 90, message="every delivery of the burst")
        assert_exactly_once_in_order(receivers, waves)
        owners = {d["attempts"][0]["dispatcher"] for d in db[DELIVERIES].find({}, {"attempts": 1})}
        assert {owner.rsplit("/", 1)[1] for owner in owners} == {"worker-0", "worker-1"}
        pids = {int(owner.split("/")[1]) for owner in owners}

        workers.send_signal(signal.SIGTERM)
        assert workers.wait(30) == 0, workers.stderr.read()
        wait_for(lambda: not any(_alive(pid) for pid in pids), 10, message="the worker processes to end")
        assert count(db, DELIVERIES, {"leaseUntil": {"$gt": 0}}) == 0  # nothing left claimed
    finally:
        if workers.poll() is None:
            os.killpg(workers.pid, signal.SIGKILL)
            workers.wait()
        workers.stderr.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not running
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def test_deliveries_held_from_fan_out_by_a_killed_worker_are_stored_and_delivered_after_its_lease(
        engine, db, listener_factory, dispatcher_factory):
    """A problem's first event goes from the fan-out straight to the attempt, stored only with its outcome; a
    worker killed mid-attempt leaves the event leased and `pending`; when the lease ends another dispatcher
    stores and delivers every delivery the dead one held."""
    receivers = [listener_factory(), listener_factory()]
    for receiver in receivers:
        receiver.hold.clear()  # answers wait: the attempts stay in flight
        add_subscription(db, receiver.url)
    events = add_events(db, *(event(f"K{i}", 1) for i in range(12)))
    script = ("import sys\n"
              "from tmf_server.workers import run_workers\n"
              "from tmf_server.settings import Settings\n"
              "settings = Settings(mongodb_uri=sys.argv[1], callback_allow=('loopback',), delivery_timeout=2.0,\n"
              "                    lease_seconds=4.0, dispatch_poll_seconds=0.05, db_timeout_ms=1000)\n"
              "sys.exit(run_workers(settings, 1))\n")
    worker = subprocess.Popen([sys.executable, "-c", script, engine.uri], cwd=PROJECT_ROOT, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: all(r.arrivals == 1 for r in receivers), 30, message="one attempt in flight to each")
        # An unproven listener gets one attempt at a time: one delivery each was held, the others stored.
        wait_for(lambda: count(db, DELIVERIES, {}) == 2 * 11, 30, message="the deliveries not held stored")
        held_events = list(db[EVENTS].find({"_fanout": "pending"}, {"_fanoutOwner": 1}))
        assert held_events and all(e["_fanoutOwner"].endswith("/worker-0") for e in held_events)
        in_flight = {e["_id"] for e in held_events}
        assert count(db, DELIVERIES, {"eventId": {"$in": sorted(in_flight)}}) == 2 * len(in_flight) - 2
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    for receiver in receivers:
        receiver.hold.set()
    dispatcher_factory(name="survivor")
    wait_for(lambda: settled(db), 60, message="every delivery, after the dead worker's lease")
    ids = {e["_id"] for e in events}
    for receiver in receivers:
        counts = collections.Counter(receiver.delivered_ids())
        assert set(counts) == ids
        # Only an attempt the dead worker had in flight may have reached the listener twice.
        assert {i for i, n in counts.items() if n > 1} <= in_flight
    assert count(db, DELIVERIES, {"state": "delivered"}) == count(db, DELIVERIES, {}) == 2 * len(ids)
    assert count(db, EVENTS, {"_fanout": "done"}) == len(ids)


def test_a_backlog_of_stored_events_drains_batch_after_batch_not_one_batch_per_poll(db, listener_factory,
                                                                                     dispatcher_factory):
    """Events stored by others (another process, a restart behind a backlog) are fanned out round after round
    while the batches come back full: long before the next poll would come."""
    receivers = subscribe_three(db, listener_factory)
    waves = burst(problems=300, versions=1)  # 300 first events: more batches than one round takes
    add_events(db, *waves[0])
    dispatcher = dispatcher_factory(dispatch_poll_seconds=120)
    dispatcher.wake()
    wait_for(lambda: settled(db), 90, message="the whole backlog, within one poll interval")
    assert_exactly_once_in_order(receivers, waves)
