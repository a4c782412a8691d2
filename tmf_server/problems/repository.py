"""ServiceProblem documents in MongoDB: every write carries the events it causes (the one place they are made)."""
from __future__ import annotations

import pymongo

from tmf_server.events.builder import Change, event_document, events_for_change
from tmf_server.events.outbox import DELETING, OUTBOX, PENDING, Outbox, with_outbox
from tmf_server.problems.information import missing_information
from tmf_server.problems.lookups import (LOOKUPS, among_the_flagged, counting_forms, first_id_forms, ids_of,
                                         index_fields, one_id_condition, retired_flag_field, search_forms,
                                         with_lookup_keys)
from tmf_server.query.catalog import AttributeCatalog
from tmf_server.query.filters import all_of, exact_string
from tmf_server.store.database import SERVICE_PROBLEMS
from tmf_server.store.documents import to_api, to_document
from tmf_server.store.instants import instant_field, with_instants
from tmf_server.store.reader import CollectionReader

# Date-times also stored as epoch milliseconds, so that filters and sorts on them are index-served.
INSTANT_ATTRIBUTES = ("creationDate", "lastUpdate", "resolutionDate", "statusChangeDate")
# Version of the derived fields a stored document carries (date copies, lookup keys); older ones are brought up
# to date when the server starts. 5: the lookup keys carry the "more than one id" flag.
STORED_FORM = 5
_FORM = "_form"
_BACKFILL_BATCH = 500
OLDEST_FIRST = ((instant_field("creationDate"), 1), ("_id", 1))
# The status and the creation instant in one string that sorts as (status, creationDate): a list of one status
# in date order walks one index range instead of sorting every report of that status (docs/mongodb.md).
STATUS_BY_DATE = "_statusByDate"
_AFTER_SEPARATOR = "}"  # the character after "|": the upper bound of one status's range
_INSTANT_SHIFT = 10**14  # epoch ms of year 1 is about -6.2e13
# The first party's id and the creation instant in one string that sorts as (party, creationDate): a list of one
# party's reports (`relatedParty.id=C7`) in date order walks one index range instead of the whole date index. The
# id is preceded by its length, so that no other id's range can overlap it (ids may hold any character).
PARTY_BY_DATE = "_partyByDate"
# The status and the priority in one string that sorts as (status, priority): the count of a list of one status
# and a priority range is one index range (the engine counts an AND of two indexed fields row by row).
STATUS_BY_PRIORITY = "_statusByPriority"
_INTEGER_SHIFT = 2**63  # a 64-bit integer shifted to 0 .. 2^64 - 1: 20 digits
_LOWER = {"$gt": False, "$gte": True, "$eq": True}  # operator -> whether the bound is inclusive
_UPPER = {"$lt": False, "$lte": True, "$eq": True}

# Attributes that lists filter and sort on, and the intake's lookup keys. Arrays of sub-documents are indexed
# for $elemMatch. Not compound with _id: the embedded engine then rejects every insert (docs/mongodb.md).
INDEXES = [
    [(instant_field("creationDate"), pymongo.DESCENDING)],
    [("status", pymongo.ASCENDING)],
    [(STATUS_BY_DATE, pymongo.ASCENDING)],
    [(STATUS_BY_PRIORITY, pymongo.ASCENDING)],
    [(PARTY_BY_DATE, pymongo.ASCENDING)],
    [("priority", pymongo.ASCENDING)],
    [("category", pymongo.ASCENDING)],
    [(instant_field("lastUpdate"), pymongo.ASCENDING)],
    [("originatorParty.id", pymongo.ASCENDING)],
    [("relatedParty.id", pymongo.ASCENDING)],
    [("affectedService.id", pymongo.ASCENDING)],
    [(PENDING, pymongo.ASCENDING)],  # documents whose events are not yet published
    *([(field, pymongo.ASCENDING)] for field in index_fields()),
]
# The fields of indexes of earlier versions that no query uses any more (each costs every write): the text
# dates (now the integer copies), the stored form (only the start-up upgrade looks for `_form $ne`, which the
# embedded engine never answers from an index), the lookup flags (now in the keys).
RETIRED_INDEXES = (("creationDate",), ("lastUpdate",), (_FORM,), *((retired_flag_field(kind),) for kind in LOOKUPS))


def ensure_indexes(db) -> None:
    collection = db[SERVICE_PROBLEMS]
    for keys in INDEXES:
        collection.create_index(keys)
    # Found by their fields: the embedded engine names indexes its own way (`idx_serviceProblem__form`, where
    # MongoDB says `_form_1`) and reports every direction as 1.
    for index in list(collection.list_indexes()):
        if tuple(index["key"]) in RETIRED_INDEXES:
            collection.drop_index(index["name"])


def problem_catalog(spec: dict) -> AttributeCatalog:
    """The attribute catalog of stored ServiceProblems (filters and sorts on dates use the integer copies)."""
    return AttributeCatalog(spec, "ServiceProblem", instants=INSTANT_ATTRIBUTES)


def with_derived_fields(document: dict) -> dict:
    """A stored document with its derived internal fields: the date copies, the lookup keys, the status by date."""
    document = with_lookup_keys(with_instants(document, INSTANT_ATTRIBUTES))
    for key in (STATUS_BY_DATE, STATUS_BY_PRIORITY, PARTY_BY_DATE):
        document.pop(key, None)
    if isinstance(document.get("status"), str) and _is_integer(document.get("priority")):
        document[STATUS_BY_PRIORITY] = f"{document['status']}|{document['priority'] + _INTEGER_SHIFT:020d}"
    created = document.get(instant_field("creationDate"))
    # Shifted and zero-padded so that the strings sort as the numbers (years 1 to 9999 all fit); without a
    # creation date it sorts first, as a missing field does in MongoDB.
    in_date_order = f"{created + _INSTANT_SHIFT:015d}" if isinstance(created, int) else ""
    if isinstance(document.get("status"), str):
        document[STATUS_BY_DATE] = document["status"] + "|" + in_date_order
    parties = ids_of(document, "party")
    if parties:
        document[PARTY_BY_DATE] = _party_prefix(parties[0]) + in_date_order
    document[_FORM] = STORED_FORM
    return document


def _party_prefix(party_id: str) -> str:
    return f"{len(party_id)}:{party_id}|"


def _is_integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -_INTEGER_SHIFT <= value < _INTEGER_SHIFT


def _counted_by_status_and_priority(filter_: dict) -> dict | None:
    """A filter of exactly one status and a priority range, as one range of the status-by-priority key; else None.

    Stored priorities are integers (the schema), and an integer range selects the same reports as the range of
    their keys; a priority that is not an integer has no key, as it matches no integer bound."""
    status, priority = filter_.get("status"), filter_.get("priority")
    if (set(filter_) != {"status", "priority"} or not isinstance(status, dict) or list(status) != ["$eq"]
            or not isinstance(status["$eq"], str) or not isinstance(priority, dict) or not priority
            or not set(priority) <= {*_LOWER, *_UPPER} or not all(_is_integer(v) for v in priority.values())):
        return None
    prefix = status["$eq"] + "|"
    low, high = (prefix, True), (status["$eq"] + _AFTER_SEPARATOR, False)  # (key, inclusive): the whole status
    for operator, value in priority.items():
        key = f"{prefix}{value + _INTEGER_SHIFT:020d}"
        if operator in _LOWER:  # the higher bound wins; at the same key, the exclusive one
            low = max(low, (key, _LOWER[operator]), key=lambda bound: (bound[0], not bound[1]))
        if operator in _UPPER:  # the lower bound wins; at the same key, the exclusive one
            high = min(high, (key, _UPPER[operator]), key=lambda bound: (bound[0], bound[1]))
    return {STATUS_BY_PRIORITY: {"$gte" if low[1] else "$gt": low[0], "$lte" if high[1] else "$lt": high[0]}}


def _by_status_and_date(filter_: dict, sort) -> tuple[dict, list]:
    """A filter of one status sorted by creation date, rewritten to walk the status-by-date range in order;
    anything else as it came."""
    sort = list(sort)
    status = filter_.get("status")
    if not (isinstance(status, dict) and list(status) == ["$eq"] and isinstance(status["$eq"], str)
            and sort and sort[0][0] == instant_field("creationDate")):
        return filter_, sort
    value = status["$eq"]
    rewritten = {key: condition for key, condition in filter_.items() if key != "status"}
    rewritten[STATUS_BY_DATE] = {"$gte": value + "|", "$lt": value + _AFTER_SEPARATOR}
    return rewritten, [(STATUS_BY_DATE, sort[0][1]), *sort[1:]]


def _one_party_in_date_order(filter_: dict, sort) -> tuple[dict, list, dict] | None:
    """For a filter on one party's id in creation-date order (the default): the two filters whose pages, merged,
    are its page, each walking an index in order: the reports whose first party it is (one range of the
    party-by-date key), and those among the flagged few (problems/lookups.py) that name it later. Else None."""
    found = one_id_condition(filter_)
    sort = list(sort)
    if (found is None or found[1] != "party" or len(sort) != 2 or sort[0][0] != instant_field("creationDate")
            or sort[1] != ("_id", 1)):
        return None
    _array, kind, value, rest = found
    prefix = _party_prefix(value)
    first = {**rest, PARTY_BY_DATE: {"$gte": prefix, "$lt": prefix[:-1] + _AFTER_SEPARATOR}}
    return first, [(PARTY_BY_DATE, sort[0][1]), sort[1]], among_the_flagged(filter_, kind, value)


def stored_form(representation: dict, version: int) -> dict:
    """The document stored for a representation at a version."""
    return with_derived_fields(to_document(representation, version=version))


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
        # A report created pending for want of information asks for it in its create's events.
        missing = missing_information(after) if before is None and after.get("status") == "pending" else ()
        return [event_document(event, version, seq, change.user)
                for seq, event in enumerate(events_for_change(before, after, change, missing))]

    def insert(self, representation: dict, change: Change) -> None:
        document = with_outbox(stored_form(representation, 1), self._events(None, representation, 1, change))
        self.collection.insert_one(document)
        self.outbox.written(document)

    def replace(self, current: dict, representation: dict, change: Change) -> int | None:
        """Writes `representation` over the stored `current` document unless another write came first.

        Returns the new version, or None when `current` is no longer the stored version (optimistic locking)."""
        version = current["_version"] + 1
        events = self._events(to_api(current), representation, version, change)
        document = with_outbox(stored_form(representation, version), events, current)
        result = self.collection.replace_one({"_id": current["_id"], "_version": current["_version"]}, document)
        if result.matched_count != 1:
            return None
        self.outbox.written(document)
        return version

    def delete(self, current: dict, change: Change) -> bool:
        """Deletes the stored `current` document unless another write came first."""
        version = current["_version"] + 1
        events = self._events(to_api(current), None, version, change)
        # Kept whole until its event is out, so a concurrent list still sees the last state, not a stub.
        tombstone = with_outbox({**stored_form(to_api(current), version), DELETING: True}, events, current)
        result = self.collection.replace_one({"_id": current["_id"], "_version": current["_version"]}, tombstone)
        if result.matched_count != 1:
            return False
        self.outbox.flush(current["_id"])  # now, not later: lists show the last state until the event is out
        return True

    def find(self, filter_: dict, sort, offset: int, limit: int, projection: dict | None = None,
             max_time_ms: int | None = None) -> list[dict]:
        by_party = _one_party_in_date_order(filter_, sort)
        if by_party is None:
            return super().find(*_by_status_and_date(filter_, sort), offset, limit, projection, max_time_ms)
        # Both pages up to offset + limit, merged in the requested order (creation instant, then _id).
        first, first_sort, flagged = by_party
        created = instant_field("creationDate")
        shown = None if projection is None else {**projection, created: 1}
        found = super().find(first, first_sort, 0, offset + limit, shown, max_time_ms)
        found += super().find(flagged, list(sort), 0, offset + limit, shown, max_time_ms)
        direction = list(sort)[0][1]

        def order(document: dict):  # a missing instant sorts first, as in MongoDB; _id ascending in both directions
            instant = document.get(created)
            return (instant is not None, instant or 0) if direction == 1 else (instant is None, -(instant or 0))

        page = sorted(sorted(found, key=lambda d: d["_id"]), key=order)[offset:offset + limit]
        if projection is not None and created not in projection:
            for document in page:
                document.pop(created, None)
        return page

    def count(self, filter_: dict, max_time_ms: int | None = None) -> int:
        by_priority = _counted_by_status_and_priority(filter_)
        if by_priority is not None:
            return super().count(by_priority, max_time_ms)
        forms = counting_forms(filter_)
        if forms is None:
            return super().count(filter_, max_time_ms)
        return sum(CollectionReader.count(self, form, max_time_ms) for form in forms)

    def naming(self, kind: str, value: str, *conditions: dict, limit: int, first_only: bool = False) -> list[dict]:
        """Up to `limit` stored reports (oldest first) that name `value` among their ids of `kind`
        (problems/lookups.py), or as their only or first id of it with `first_only`, and match every condition;
        index-served on both engines."""
        found: dict[str, dict] = {}
        forms = first_id_forms(kind, value) if first_only else search_forms(kind, value, exact_string)
        for form in forms:
            for document in self.collection.find(all_of([form, *conditions])).sort(list(OLDEST_FIRST)).limit(limit):
                if not document.get(DELETING):
                    found.setdefault(document["_id"], document)
        creation = instant_field("creationDate")
        return sorted(found.values(), key=lambda d: (d.get(creation, 0), d["_id"]))[:limit]

    def bring_up_to_date(self) -> int:
        """Gives documents stored by an earlier version their derived fields (date copies, lookup keys);
        returns how many it rewrote."""
        done = 0
        while True:
            batch = list(self.collection.find({_FORM: {"$ne": STORED_FORM}}).limit(_BACKFILL_BATCH))
            for document in batch:
                # Conditional on the version: a concurrent change writes the derived fields itself.
                self.collection.replace_one({"_id": document["_id"], "_version": document["_version"]},
                                            with_derived_fields(dict(document)))
            done += len(batch)
            if len(batch) < _BACKFILL_BATCH:
                return done
