"""ServiceProblem documents in MongoDB: every write carries the events it causes (the one place they are made)."""
from __future__ import annotations

from tmf_server.events.builder import Change, event_document, events_for_change
from tmf_server.events.outbox import DELETING, OUTBOX, Outbox, with_outbox
from tmf_server.query.catalog import AttributeCatalog
from tmf_server.store.database import SERVICE_PROBLEMS
from tmf_server.store.documents import to_api, to_document
from tmf_server.store.instants import epoch_ms, instant_field, with_instants
from tmf_server.store.reader import CollectionReader

# Date-times also stored as epoch milliseconds, so that filters and sorts on them are index-served.
INSTANT_ATTRIBUTES = ("creationDate", "lastUpdate", "resolutionDate", "statusChangeDate")
_BACKFILL_BATCH = 500


def problem_catalog(spec: dict) -> AttributeCatalog:
    """The attribute catalog of stored ServiceProblems (filters and sorts on dates use the integer copies)."""
    return AttributeCatalog(spec, "ServiceProblem", instants=INSTANT_ATTRIBUTES)


def stored_form(representation: dict, version: int) -> dict:
    """The document stored for a representation at a version."""
    return with_instants(to_document(representation, version=version), INSTANT_ATTRIBUTES)


class ServiceProblemRepository(CollectionReader):
    def __init__(self, db, outbox: Outbox):
        super().__init__(db, SERVICE_PROBLEMS)
        self.outbox = outbox

    def get(self, problem_id: str, projection: dict | None = None) -> dict | None:
        if projection is not None:
            projection = {**projection, DELETING: 1, OUTBOX: 1}
        document = super().get(problem_id, projection)
        if document is None or document.get(DELETING):
            return None  # a deletion whose event is on its way out
        return document

    @staticmethod
    def _events(before: dict | None, after: dict | None, version: int, change: Change) -> list[dict]:
        return [event_document(event, version, seq)
                for seq, event in enumerate(events_for_change(before, after, change))]

    def insert(self, representation: dict, change: Change) -> None:
        document = with_outbox(stored_form(representation, 1), [],
                               self._events(None, representation, 1, change))
        self.collection.insert_one(document)
        self.outbox.written(representation["id"])

    def replace(self, current: dict, representation: dict, change: Change) -> int | None:
        """Writes `representation` over the stored `current` document unless another write came first.

        Returns the new version, or None when `current` is no longer the stored version (optimistic locking)."""
        version = current["_version"] + 1
        events = self._events(to_api(current), representation, version, change)
        document = with_outbox(stored_form(representation, version), current.get(OUTBOX, []), events)
        result = self.collection.replace_one({"_id": current["_id"], "_version": current["_version"]}, document)
        if result.matched_count != 1:
            return None
        self.outbox.written(current["_id"])
        return version

    def delete(self, current: dict, change: Change) -> bool:
        """Deletes the stored `current` document unless another write came first."""
        version = current["_version"] + 1
        events = self._events(to_api(current), None, version, change)
        # Kept whole until its event is out, so a concurrent list still sees the last state, not a stub.
        tombstone = with_outbox({**stored_form(to_api(current), version), DELETING: True},
                                current.get(OUTBOX, []), events)
        result = self.collection.replace_one({"_id": current["_id"], "_version": current["_version"]}, tombstone)
        if result.matched_count != 1:
            return False
        self.outbox.flush(current["_id"])  # now, not later: lists show the last state until the event is out
        return True

    def add_missing_instants(self) -> int:
        """Gives documents stored before the integer date copies existed their copies; returns how many."""
        done = 0
        while True:
            batch = list(self.collection.find({instant_field("creationDate"): {"$exists": False}},
                                              {**{name: 1 for name in INSTANT_ATTRIBUTES}, "_version": 1})
                         .limit(_BACKFILL_BATCH))
            for document in batch:
                copies = {instant_field(name): epoch_ms(document[name]) for name in INSTANT_ATTRIBUTES
                          if isinstance(document.get(name), str)}
                if instant_field("creationDate") not in copies:
                    return done  # not a document this server wrote: leave it (and stop looking at it again)
                # Conditional on the version: a concurrent change writes its own copies.
                self.collection.update_one({"_id": document["_id"], "_version": document["_version"]},
                                           {"$set": copies})
            done += len(batch)
            if len(batch) < _BACKFILL_BATCH:
                return done
