"""Reads of one collection for the TMF630 list and retrieve operations (id, filter, sort, page, count)."""
from __future__ import annotations

import threading
from typing import Callable

import bson


class SharedRuns:
    """Identical calls in flight share their runs, and every result is one that started after its caller came.

    A caller that finds no run of its key in flight runs it. Callers that come while one runs wait for it to
    end, then share the next run, which the first of them starts: a result is never older than the call, as if
    each had run alone (a report created before a list was asked for is in its total). A run that raises leaves
    the callers who shared it to run on their own, so each gets its own error."""

    class _Batch:
        def __init__(self):
            self.go = threading.Event()  # the first member may run it: the run before it ended
            self.done = threading.Event()
            self.result = None
            self.failed = False

    def __init__(self):
        self._lock = threading.Lock()
        self._waiting: dict[bytes, SharedRuns._Batch | None] = {}  # key in flight -> the batch of the next run

    def run(self, key: bytes, call: Callable[[], object]):
        with self._lock:
            if key not in self._waiting:
                self._waiting[key] = None
                batch, first = SharedRuns._Batch(), True
                batch.go.set()
            else:
                batch = self._waiting[key]
                first = batch is None
                if first:
                    batch = self._waiting[key] = SharedRuns._Batch()
        if not first:
            batch.done.wait()
            return batch.result if not batch.failed else call()
        batch.go.wait()
        try:
            batch.result = call()
        except BaseException:
            batch.failed = True
            raise
        finally:
            batch.done.set()
            self._hand_over(key)
        return batch.result

    def _hand_over(self, key: bytes) -> None:
        with self._lock:
            following = self._waiting.get(key)
            if following is None:
                del self._waiting[key]
            else:
                self._waiting[key] = None  # the next run is in flight; whoever comes now waits for the one after
                following.go.set()


class CollectionReader:
    def __init__(self, db, name: str):
        self.db = db
        self.name = name
        self.collection = db[name]
        self._counts = SharedRuns()

    def get(self, resource_id: str, projection: dict | None = None) -> dict | None:
        return self.collection.find_one({"_id": resource_id}, projection)

    def find(self, filter_: dict, sort, offset: int, limit: int, projection: dict | None = None,
             max_time_ms: int | None = None) -> list[dict]:
        """`max_time_ms`: the query budget MongoDB enforces (the embedded engine ignores it; the query
        translator bounds what it is sent instead)."""
        cursor = self.collection.find(filter_, projection).sort(list(sort)).skip(offset).limit(limit)
        return list(cursor.max_time_ms(max_time_ms) if max_time_ms else cursor)

    def count(self, filter_: dict, max_time_ms: int | None = None) -> int:
        """The count of `filter_`. Identical counts asked at the same time share one command (SharedRuns): the
        engine counts a range row by row, so the total of a large match is the costly part of a list page."""
        # The count command, not count_documents: the embedded engine runs the latter's aggregation slowly.
        budget = {"maxTimeMS": max_time_ms} if max_time_ms else {}
        key = bson.encode({"filter": filter_, "budget": max_time_ms or 0})
        return self._counts.run(key, lambda: int(self.db.command("count", self.name, query=filter_, **budget)["n"]))
