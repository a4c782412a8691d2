"""The durable outbox: events ride in the changed ServiceProblem document, then move to the event collection.

A change and its events are one single-document write (atomic on every MongoDB and on the embedded engine,
whose transactions do not roll back when a client dies). Publishing copies the events into the event collection
(insert by eventId: a repeat is harmless) and empties the outbox; a deletion is written first as a `_deleting`
document carrying its event and is removed once the event is out.

Where a dispatcher runs in the process, a write does not wait for its events to be published: it hands the
document as written to the dispatcher (`Written`), whose rounds publish the outboxes in batches without reading
them back, and a request answers after one database write. The documents of other processes' writes, and what
a crash left, are read from the store (`pending`) at each poll. Without a dispatcher, the writer publishes its own
events before answering (`flush`). Either way, nothing is published for a change that was not written, and
nothing written loses its events: the store, not the memory, says what is pending.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from itertools import islice
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
# Documents written in this process kept for publishing; beyond, they are read back. A report in Python takes about
# six times its BSON size (a storm-grown one: ~150 KB), so this bounds the memory of a dispatcher that lags.
WRITTEN_KEPT = 256
# Ids of the events an outbox stored lately. A change written over a document whose events were being published
# carries them on (with_outbox), and publishing it stored them again: a duplicate key error, which pymongo words by
# printing every refused document whole (2.6 % of the server's CPU per correlated notification). Such a change
# follows its read by well under a second: seconds of events at storm rates are enough.
RECENT_EVENTS = 4096


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
    def __init__(self, db, publisher: Callable[[dict], None] | None = None):
        """`publisher` is handed each written document (the dispatcher, which publishes it); without one, writers
        publish their events themselves."""
        self.problems = db[SERVICE_PROBLEMS]
        self.events = EventSource(db)  # the owner of the event collection stores what is published
        self.publisher = publisher
        self._recent: OrderedDict[str, None] = OrderedDict()  # RECENT_EVENTS ids stored by this outbox
        self._recent_lock = threading.Lock()

    def written(self, document: dict) -> None:
        """A change carrying events was stored (`document`, as written; nobody changes it afterwards): hand it to
        the publisher, or publish its events now."""
        if self.publisher is not None:
            self.publisher(document)
        else:
            self.flush(document["_id"])

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
        if not documents:
            return []
        with self._recent_lock:  # only the ids under the lock; a document whose events are all stored is not presented
            waiting = [(document, [e for e in document.get(OUTBOX, []) if e["_id"] not in self._recent])
                       for document in documents]
        events = [{**_with_report(event, representation), **(carrying or {})} for document, own in waiting if own
                  for representation in (to_api(document),) for event in own]
        published = self.events.insert_published(events) if events else events
        with self._recent_lock:  # stored now or before: either way in the event collection
            self._recent.update((event["_id"], None) for event in events)
            while len(self._recent) > RECENT_EVENTS:
                self._recent.popitem(last=False)
        # Conditional on the version: a newer change carries these events on in its own outbox. One bulk write
        # (a single round trip) for the whole batch.
        self.problems.bulk_write([
            DeleteOne({"_id": d["_id"], "_version": d["_version"]}) if d.get(DELETING) else
            UpdateOne({"_id": d["_id"], "_version": d["_version"]}, {"$unset": {OUTBOX: "", PENDING: ""}})
            for d in documents], ordered=False)
        metrics.events_published(published)
        return published


class Written:
    """The documents with events that this process wrote, as written, for its dispatcher to publish without
    reading them back (the latest version of each, up to WRITTEN_KEPT), and whether the store is to be read too:
    at start (what a crash left), when more were written than kept, and whenever asked (writers elsewhere)."""

    def __init__(self, kept: int = WRITTEN_KEPT):
        self._lock = threading.Lock()
        self._documents: dict[str, dict] = {}
        self._kept = kept
        self._read_back = True

    def add(self, document: dict) -> None:
        with self._lock:
            known = self._documents.get(document["_id"])
            if known is not None:
                if known["_version"] < document["_version"]:
                    self._documents[document["_id"]] = document
            elif len(self._documents) < self._kept:
                self._documents[document["_id"]] = document
            else:
                self._read_back = True

    def read_back(self) -> None:
        """The store may hold pending documents that were not handed over."""
        self._read_back = True

    def take(self, limit: int, outbox: Outbox, read_back: bool = False) -> list[dict]:
        """Up to `limit` documents to publish: those handed over, oldest first, and, when the store is to be read
        (`read_back`, or as noted), those pending there (a newer version than the one handed over wins)."""
        with self._lock:
            documents = {key: self._documents.pop(key) for key in list(islice(self._documents, limit))}
            read_back, self._read_back = read_back or self._read_back, False
        if not read_back:
            return list(documents.values())
        stored = outbox.pending(limit)
        for document in stored:
            known = documents.get(document["_id"])
            if known is None or known["_version"] < document["_version"]:
                documents[document["_id"]] = document
        if len(stored) >= limit or len(documents) > limit:  # more may wait there: read again next time
            self._read_back = True
        return list(documents.values())[:limit]
