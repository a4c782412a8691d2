"""Documents stored by earlier versions get the derived fields when the server starts (bring_up_to_date)."""
from __future__ import annotations

import pymongo
import pytest

from tmf_server.events.outbox import Outbox
from tmf_server.problems.repository import (INDEXES, PARTY_BY_DATE, STATUS_BY_DATE, STATUS_BY_PRIORITY,
                                            ServiceProblemRepository, ensure_indexes)
from tmf_server.store.database import SERVICE_PROBLEMS
from tmf_server.store.embedded import EmbeddedEngine


@pytest.fixture()
def db(tmp_path):
    engine = EmbeddedEngine(tmp_path).start()
    client = pymongo.MongoClient(engine.uri, serverSelectionTimeoutMS=5000)
    try:
        database = client["tmf656"]
        ensure_indexes(database)
        yield database
    finally:
        client.close()
        engine.stop(timeout=3)


def old(problem_id: str, status: str, created: str, form: int | None) -> dict:
    document = {"_id": problem_id, "_version": 1, "status": status, "creationDate": created, "priority": 2,
                "relatedParty": [{"id": "C1", "role": "customer"}]}
    if form is not None:  # the first stored form had the date copies and lookup keys, not the status by date
        document.update({"_form": form, "_creationDateMs": 0})
    return document


def test_documents_of_earlier_forms_are_brought_up_to_date_and_listed_by_status_in_date_order(db):
    db[SERVICE_PROBLEMS].insert_many([
        old("A", "held", "2026-01-02T00:00:00.000Z", None),
        old("B", "held", "2026-01-03T00:00:00.000Z", 1),
        old("C", "pending", "2026-01-01T00:00:00.000Z", 1),
        old("D", "held", "2025-12-31T00:00:00.000Z", 3),
    ])
    repository = ServiceProblemRepository(db, Outbox(db))
    assert repository.bring_up_to_date() == 4
    assert repository.bring_up_to_date() == 0  # all current now
    stored = {d["_id"]: d for d in db[SERVICE_PROBLEMS].find()}
    assert stored["B"]["_creationDateMs"] == 1767398400000  # the date copy rewritten from the text
    assert stored["C"][STATUS_BY_DATE] == "pending|" + str(1767225600000 + 10**14).zfill(15)
    assert stored["C"][STATUS_BY_PRIORITY] == "pending|" + str(2 + 2**63).zfill(20)
    assert stored["D"][PARTY_BY_DATE] == "2:C1|" + str(1767139200000 + 10**14).zfill(15)  # form 3 had none
    party_c1 = {"relatedParty": {"$elemMatch": {"id": "C1"}}}
    assert [d["_id"] for d in repository.find(party_c1, [("_creationDateMs", -1), ("_id", 1)], 1, 2)] == ["A", "C"]
    assert repository.count({"status": {"$eq": "held"}, "priority": {"$gte": 2, "$lt": 3}}) == 3
    assert repository.count({"status": {"$eq": "held"}, "priority": {"$gt": 2}}) == 0
    newest_first = repository.find({"status": {"$eq": "held"}}, [("_creationDateMs", -1), ("_id", 1)], 0, 10)
    assert [d["_id"] for d in newest_first] == ["B", "A", "D"]
    oldest_first = repository.find({"status": {"$eq": "held"}, "priority": {"$lte": 2}},
                                   [("_creationDateMs", 1), ("_id", 1)], 1, 10)
    assert [d["_id"] for d in oldest_first] == ["A", "B"]


def test_a_report_flagged_by_an_earlier_form_is_found_by_its_new_key(db):
    """Form 4 flagged a report naming several customers in a second field (`_customerMore`); brought up to date,
    the flag is in the key and the intake's search finds it by each of its customers."""
    document = old("E", "acknowledged", "2026-01-02T00:00:00.000Z", 4)
    document["relatedParty"] = [{"id": "C1", "role": "customer"}, {"id": "C2", "role": "customer"}]
    document.update({"_customerKey": "=C1", "_customerMore": True, "_partyKey": "=C1", "_partyMore": True})
    db[SERVICE_PROBLEMS].insert_one(document)
    repository = ServiceProblemRepository(db, Outbox(db))
    assert repository.bring_up_to_date() == 1
    stored = db[SERVICE_PROBLEMS].find_one({"_id": "E"})
    assert stored["_customerKey"] == "+C1" and stored["_partyKey"] == "+C1"
    assert "_customerMore" not in stored and "_partyMore" not in stored
    for customer in ("C1", "C2"):
        assert [d["_id"] for d in repository.naming("customer", customer, limit=5)] == ["E"]
    assert repository.count({"relatedParty": {"$elemMatch": {"id": "C2"}}}) == 1


def test_indexes_no_query_uses_are_dropped(db):
    """Indexes of earlier versions (the text dates, the stored form, the lookup flags) are found by their fields
    and dropped; the engine names them its own way."""
    collection = db[SERVICE_PROBLEMS]
    for retired in ("creationDate", "_form", "_customerMore", "_ticketMore"):
        collection.create_index([(retired, pymongo.ASCENDING)])
    ensure_indexes(db)
    fields = sorted(tuple(index["key"]) for index in collection.list_indexes())
    assert fields == sorted([("_id",), *(tuple(field for field, _direction in keys) for keys in INDEXES)])
