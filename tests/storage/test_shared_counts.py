"""Identical counts asked at the same time share one count command, and none answers older than its call."""
import threading
import uuid

import pymongo
import pytest
from pymongo import monitoring
from pymongo.errors import OperationFailure

from tmf_server.store.reader import CollectionReader

THREADS = 16


class CountCommands(monitoring.CommandListener):
    def __init__(self):
        self.sent = 0
        self._lock = threading.Lock()

    def started(self, event):
        if event.command_name == "count":
            with self._lock:
                self.sent += 1

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


@pytest.fixture(scope="module")
def commands():
    return CountCommands()


@pytest.fixture(scope="module")
def db(engine, commands):
    client = pymongo.MongoClient(engine.uri, event_listeners=[commands], maxPoolSize=THREADS * 2)
    yield client["sharedCounts"]
    client.close()


def in_threads(work, threads: int = THREADS) -> list:
    """`work(index)` in `threads` threads released together; what each returned, or raised."""
    start, results = threading.Barrier(threads), [None] * threads

    def run(index):
        start.wait()
        try:
            results[index] = work(index)
        except Exception as exc:  # noqa: BLE001 - the test looks at what each thread got
            results[index] = exc

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not any(worker.is_alive() for worker in workers), "a count never answered"
    return results


def test_identical_counts_in_flight_share_commands_and_are_exact(db, commands):
    collection = db[f"c{uuid.uuid4().hex[:8]}"]
    collection.insert_many([{"n": i, "kind": "a" if i % 4 else "b"} for i in range(3000)])
    reader = CollectionReader(db, collection.name)
    before = commands.sent

    results = in_threads(lambda _i: [reader.count({"kind": "a"}) for _ in range(10)])

    assert results == [[2250] * 10] * THREADS
    assert commands.sent - before < THREADS * 10  # some calls shared a command
    assert reader.count({"kind": "b"}) == 750  # another filter: its own count


def test_a_count_includes_everything_written_before_it_was_asked(db):
    collection = db[f"c{uuid.uuid4().hex[:8]}"]
    collection.insert_many([{"kind": "a"} for _ in range(2000)])
    reader = CollectionReader(db, collection.name)
    done = threading.Event()
    stale = []

    def work(index):
        if index == 0:  # writes one more, then asks: its count must include it
            try:
                for written in range(2001, 2201):
                    collection.insert_one({"kind": "a"})
                    counted = reader.count({"kind": "a"})
                    if counted < written:
                        stale.append((written, counted))
            finally:
                done.set()
        else:  # the same count without pause, so that the writer's calls find one in flight
            while not done.is_set():
                reader.count({"kind": "a"})

    assert in_threads(work, threads=6) == [None] * 6
    assert stale == []


def test_a_failed_count_fails_every_caller_and_the_next_ones_run(db):
    collection = db[f"c{uuid.uuid4().hex[:8]}"]
    collection.insert_many([{"kind": "a"} for _ in range(100)])
    reader = CollectionReader(db, collection.name)

    results = in_threads(lambda _i: reader.count({"kind": {"$noSuchOperator": 1}}))

    assert all(isinstance(result, OperationFailure) for result in results), results
    assert in_threads(lambda _i: reader.count({"kind": "a"})) == [100] * THREADS
