"""The durable outbox: events ride in the changed ServiceProblem document, then move to the event collection.

A change and its events are one single-document write (atomic on every MongoDB and on the embedded engine,
whose transactions do not roll back when a client dies). Publishing copies the events into the event collection
(insert by eventId: a repeat is harmless) and empties the outbox; a deletion is written first as a `_deleting`
document carrying its event and is removed once the event is out.

Where a dispatcher runs in the process, a write does not wait for its events to be published: it wakes the
dispatcher, whose rounds publish every pending outbox in batches (`flush_pending`), and a request answers after
one database write. Without one, the writer publishes its own events before answering (`flush`). Either way, what
a crash leaves half done is finished by the next `flush_pending`: nothing is published for a change that was not
written, and nothing written loses its events.
"""
from __future__ import annotations

import logging
from typing import Callable

from pymongo import DeleteOne, UpdateOne

from tmf_server import metrics
from tmf_server.events.sources import EventSource
from tmf_server.store.database import SERVICE_PROBLEMS
from tmf_server.store.documents import to_api
from tmf_server.store.instants import instant_field
from tmf_server.store.reader import CollectionReader

log = logging.getLogger(__name__)

OUTBOX = "_outbox"
PENDING = "_outboxPending"
DELETING = "_deleting"
_REPORT = "serviceProblem"  # the notification's resource (`event.serviceProblem`)


def with_outbox(document: dict, events: list[dict], previous: dict | None = None) -> dict:
    """`document` carrying the events of its change, after those of `previous` (the stored document it replaces)
    still waiting to be published.

    Every event of a change carries the report as that change left it, which is the document's own state: the
    outbox keeps its events without it (a stored report would otherwise be written two or three times over in
    each write, and read and rewritten again when published) and publishing puts the document's state in. The
    events carried on from `previous` are given its state here, since this write replaces it."""
    waiting = previous.get(OUTBOX) if previous else None
    carried = [_with_report(event, state) for state in (to_api(previous),) for event in waiting] if waiting else []
    outbox = [*carried, *(_without_report(event) for event in events)]
    if outbox:
        document[OUTBOX] = outbox
        document[PENDING] = True
    return document


def _without_report(event: dict) -> dict:
    notification = event["notification"]
    body = {key: value for key, value in notification["event"].items() if key != _REPORT}
    return {**event, "notification": {**notification, "event": body}}


def _with_report(event: dict, representation: dict) -> dict:
    notification = event["notification"]
    if _REPORT in notification["event"]:
        return event
    return {**event, "notification": {**notification, "event": {**notification["event"], _REPORT: representation}}}


class Outbox:
    def __init__(self, db, publisher: Callable[[], None] | None = None):
        """`publisher` wakes the dispatcher that publishes written events; without one, writers publish them."""
        self.problems = db[SERVICE_PROBLEMS]
        self.events = EventSource(db)  # the owner of the event collection stores what is published
        self.publisher = publisher

    def written(self, problem_id: str) -> None:
        """A change carrying events was stored: hand them to the publisher, or publish them now."""
        if self.publisher is not None:
            self.publisher()
        else:
            self.flush(problem_id)

    def flush(self, problem_id: str) -> int:
        """Publishes the events waiting in one document; returns how many it published."""
        document = self.problems.find_one({"_id": problem_id, PENDING: True})  # whole: see pending()
        if document is None:
            return 0
        return len(self.publish([document]))

    def flush_pending(self, limit: int = 100) -> int:
        """Publishes the events of up to `limit` documents still carrying some (written, or left by a crash);
        returns how many documents it emptied."""
        documents = self.pending(limit)
        if documents:
            self.publish(documents)
        return len(documents)

    def pending(self, limit: int) -> list[dict]:
        """Up to `limit` documents whose events wait to be published (their outboxes, for publish()). Read whole:
        the embedded engine applies a projection by deep-copying each document, which costs more than sending the
        rest of it (the outbox is most of a pending document anyway)."""
        return list(self.problems.find({PENDING: True}).limit(limit))

    def backlog(self, limit: int) -> tuple[int, int | None]:
        """(documents whose events are not yet published, the epoch ms of the oldest change among up to `limit`
        of them): what the metrics report, from the index on the pending flag."""
        changed = instant_field("lastUpdate")
        count = CollectionReader(self.problems.database, SERVICE_PROBLEMS).count({PENDING: True})
        if not count:
            return 0, None
        times = [d[changed] for d in self.problems.find({PENDING: True}, {changed: 1}).limit(limit) if changed in d]
        return count, min(times, default=None)

    def publish(self, documents: list[dict], carrying: dict | None = None) -> list[dict]:
        """Stores the events of `documents` (read by pending()) and empties their outboxes; returns the events
        stored now (not by an earlier, interrupted publishing). The stored events carry the fields `carrying`
        when given: the fan-out lease of a dispatcher that fans them out next (sources.new_lease), so nobody
        else takes them, or sources.FANOUT_STORED_DONE when nobody subscribes."""
        events = [{**_with_report(event, representation), **(carrying or {})} for document in documents
                  for representation in (to_api(document),) for event in document.get(OUTBOX, [])]
        published = self.events.insert_published(events) if events else events
        # Conditional on the version: a newer change carries these events on in its own outbox. One bulk write
        # (a single round trip) for the whole batch.
        self.problems.bulk_write([
            DeleteOne({"_id": d["_id"], "_version": d["_version"]}) if d.get(DELETING) else
            UpdateOne({"_id": d["_id"], "_version": d["_version"]}, {"$unset": {OUTBOX: "", PENDING: ""}})
            for d in documents], ordered=False)
        metrics.events_published(published)
        return published
