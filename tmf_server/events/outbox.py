"""The durable outbox: events ride in the changed ServiceProblem document, then move to the event collection.

A change and its events are one single-document write (atomic on every MongoDB and on the embedded engine,
whose transactions do not roll back when a client dies). `flush` then copies the events into the event
collection (insert by eventId: a repeat is harmless) and empties the outbox; a deletion is written first as a
`_deleting` document carrying its event and is removed once the event is out. Whatever a crash leaves half
done, `flush_pending` finishes: nothing is published for a change that was not written, and nothing written
loses its events.
"""
from __future__ import annotations

import logging
from typing import Callable

from pymongo.errors import DuplicateKeyError

from tmf_server.store.database import EVENTS, SERVICE_PROBLEMS

log = logging.getLogger(__name__)

OUTBOX = "_outbox"
PENDING = "_outboxPending"
DELETING = "_deleting"


def with_outbox(document: dict, carried: list[dict], events: list[dict]) -> dict:
    """`document` carrying its predecessor's unflushed events and the new ones."""
    outbox = [*carried, *events]
    if outbox:
        document[OUTBOX] = outbox
        document[PENDING] = True
    return document


class Outbox:
    def __init__(self, db, on_published: Callable[[], None] | None = None):
        self.problems = db[SERVICE_PROBLEMS]
        self.events = db[EVENTS]
        self.on_published = on_published

    def flush(self, problem_id: str) -> int:
        """Publishes the events waiting in one document; returns how many it published."""
        document = self.problems.find_one({"_id": problem_id, PENDING: True},
                                          {OUTBOX: 1, "_version": 1, DELETING: 1})
        if document is None:
            return 0
        outbox = document.get(OUTBOX, [])
        for event in outbox:
            try:
                self.events.insert_one(event)
            except DuplicateKeyError:
                pass  # published by an earlier, interrupted flush
        # Conditional on the version: a newer change carries these events on in its own outbox.
        if document.get(DELETING):
            self.problems.delete_one({"_id": problem_id, "_version": document["_version"]})
        else:
            self.problems.update_one({"_id": problem_id, "_version": document["_version"]},
                                     {"$unset": {OUTBOX: "", PENDING: ""}})
        if outbox and self.on_published:
            self.on_published()
        return len(outbox)

    def flush_pending(self, limit: int = 100) -> int:
        """Finishes what interrupted writers left: every document still carrying events."""
        published = 0
        for document in self.problems.find({PENDING: True}, {"_id": 1}).limit(limit):
            published += self.flush(document["_id"])
        return published
