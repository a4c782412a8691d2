"""The outbox finishes whatever a crash interrupted: no event without its change, no change without its events."""
import pymongo
import pytest
from pymongo import monitoring

from tmf_server.events.builder import Change
from tmf_server.events.outbox import DELETING, OUTBOX, PENDING, Outbox, Written
from tmf_server.events.sources import EventRecords
from tmf_server.problems.repository import ServiceProblemRepository
from tmf_server.problems.repository import ensure_indexes
from tmf_server.store.database import EVENTS, SERVICE_PROBLEMS
from tmf_server.store.documents import to_api

T0 = "2026-11-25T10:00:00.000Z"


@pytest.fixture(scope="module")
def db(engine):
    client = pymongo.MongoClient(engine.uri)
    database = client["tmf656"]
    ensure_indexes(database)
    yield database
    client.close()


class NoFlush(Outbox):
    """An outbox whose writer 'crashes' before publishing: the write happened, the flush did not."""

    def flush(self, problem_id):
        return 0


def problem(problem_id: str, **attributes) -> dict:
    return {"id": problem_id, "href": f"http://x/tmf-api/serviceProblemManagement/v4/serviceProblem/{problem_id}",
            "status": "acknowledged", "priority": 3, "category": "c", "description": "d", "reason": "r",
            "originatorParty": {"id": "C1", "@referredType": "Individual"}, **attributes}


def events_of(db, problem_id):
    return sorted(db[EVENTS].find({"_problemId": problem_id}), key=lambda e: (e["_problemVersion"], e["_seq"]))


def test_a_write_whose_flush_was_lost_is_published_later(db):
    crashed = ServiceProblemRepository(db, NoFlush(db))
    crashed.insert(problem("p1"), Change(T0))
    stored = db[SERVICE_PROBLEMS].find_one({"_id": "p1"})
    assert stored[PENDING] is True and len(stored[OUTBOX]) == 1
    assert events_of(db, "p1") == []

    assert Outbox(db).flush_pending() >= 1
    [event] = events_of(db, "p1")
    assert event["eventType"] == "ServiceProblemCreateEvent"
    assert event["notification"]["event"]["serviceProblem"]["id"] == "p1"
    assert OUTBOX not in db[SERVICE_PROBLEMS].find_one({"_id": "p1"})


def test_a_flush_interrupted_after_publishing_does_not_publish_twice(db):
    crashed = ServiceProblemRepository(db, NoFlush(db))
    crashed.insert(problem("p2"), Change(T0))
    pending = db[SERVICE_PROBLEMS].find_one({"_id": "p2"})
    # The crash came after the insert of the events, before the outbox was emptied.
    Outbox(db).events.insert_published([{**event, "notification": {**event["notification"], "event": {
        "serviceProblem": to_api(pending)}}} for event in pending[OUTBOX]])
    Outbox(db).flush("p2")
    Outbox(db).flush("p2")
    assert len(events_of(db, "p2")) == 1
    assert PENDING not in db[SERVICE_PROBLEMS].find_one({"_id": "p2"})


def test_the_next_change_carries_unpublished_events_on_in_order(db):
    crashed = ServiceProblemRepository(db, NoFlush(db))
    crashed.insert(problem("p3"), Change(T0))
    current = db[SERVICE_PROBLEMS].find_one({"_id": "p3"})
    repository = ServiceProblemRepository(db, Outbox(db))
    assert repository.replace(current, problem("p3", status="inProgress", priority=1), Change(T0)) == 2
    events = events_of(db, "p3")
    assert [(e["eventType"], e["_problemVersion"]) for e in events] == [
        ("ServiceProblemCreateEvent", 1), ("ServiceProblemAttributeValueChangeEvent", 2),
        ("ServiceProblemStateChangeEvent", 2)]
    # Each event carries the report as its own change left it, not as the document is when it is published.
    assert [(e["notification"]["event"]["serviceProblem"]["status"],
             e["notification"]["event"]["serviceProblem"]["priority"]) for e in events] == [
        ("acknowledged", 3), ("inProgress", 1), ("inProgress", 1)]
    assert PENDING not in db[SERVICE_PROBLEMS].find_one({"_id": "p3"})


def test_the_outbox_keeps_its_own_change_by_reference_and_what_it_carries_on_whole(db):
    """A report is stored once per write: the events of the change that wrote it take the document's own state
    when they are published; those of an earlier change, still waiting, were given their state when it was
    replaced."""
    crashed = ServiceProblemRepository(db, NoFlush(db))
    crashed.insert(problem("p6"), Change(T0))
    [own] = db[SERVICE_PROBLEMS].find_one({"_id": "p6"})[OUTBOX]
    assert "serviceProblem" not in own["notification"]["event"]
    crashed.replace(db[SERVICE_PROBLEMS].find_one({"_id": "p6"}), problem("p6", priority=2), Change(T0))
    carried, changed = db[SERVICE_PROBLEMS].find_one({"_id": "p6"})[OUTBOX]
    assert carried["notification"]["event"]["serviceProblem"] == problem("p6", priority=3)
    assert "serviceProblem" not in changed["notification"]["event"]
    crashed.delete(db[SERVICE_PROBLEMS].find_one({"_id": "p6"}), Change(T0))
    Outbox(db).flush_pending()
    assert [(e["eventType"], e["notification"]["event"]["serviceProblem"]["priority"])
            for e in events_of(db, "p6")] == [("ServiceProblemCreateEvent", 3),
                                              ("ServiceProblemAttributeValueChangeEvent", 2),
                                              ("ServiceProblemDeleteEvent", 2)]
    assert db[SERVICE_PROBLEMS].find_one({"_id": "p6"}) is None


def test_an_interrupted_delete_is_finished_and_published(db):
    repository = ServiceProblemRepository(db, Outbox(db))
    repository.insert(problem("p4"), Change(T0))
    crashed = ServiceProblemRepository(db, NoFlush(db))
    assert crashed.delete(db[SERVICE_PROBLEMS].find_one({"_id": "p4"}), Change(T0)) is True
    assert db[SERVICE_PROBLEMS].find_one({"_id": "p4"})[DELETING] is True
    assert repository.get("p4") is None  # already gone for readers
    assert [e["eventType"] for e in events_of(db, "p4")] == ["ServiceProblemCreateEvent"]

    Outbox(db).flush_pending()
    assert db[SERVICE_PROBLEMS].find_one({"_id": "p4"}) is None
    assert [e["eventType"] for e in events_of(db, "p4")] == ["ServiceProblemCreateEvent", "ServiceProblemDeleteEvent"]


def test_a_lost_race_writes_nothing(db):
    repository = ServiceProblemRepository(db, Outbox(db))
    repository.insert(problem("p5"), Change(T0))
    stale = db[SERVICE_PROBLEMS].find_one({"_id": "p5"})
    assert repository.replace(stale, problem("p5", priority=1), Change(T0)) == 2
    assert repository.replace(stale, problem("p5", priority=9), Change(T0)) is None
    assert repository.delete(stale, Change(T0)) is False
    assert db[SERVICE_PROBLEMS].find_one({"_id": "p5"})["priority"] == 1
    assert [e["eventType"] for e in events_of(db, "p5")] == ["ServiceProblemCreateEvent",
                                                             "ServiceProblemAttributeValueChangeEvent"]


def test_a_read_of_event_records_publishes_a_bounded_number_of_waiting_outboxes_first(db):
    """A client reads the events of the change it was just answered about, but a read does not wait for a
    whole backlog (after a storm, tens of thousands of outboxes): beyond the bound it answers with what is out."""
    database = db
    for name in (SERVICE_PROBLEMS, EVENTS):  # the engine keeps one set of collections whatever the database name
        database[name].delete_many({})
    crashed = ServiceProblemRepository(database, NoFlush(database))
    for index in range(7):
        crashed.insert(problem(f"b{index}"), Change(T0))
    records = EventRecords(database, Outbox(database), publish_limit=5)

    first = records.find({}, [("_id", 1)], 0, 100)
    assert len(first) == 5
    assert database[SERVICE_PROBLEMS].count_documents({PENDING: True}) == 2

    assert records.get("no-such-event") is None  # a read by id publishes first too, within the same bound
    assert database[SERVICE_PROBLEMS].count_documents({PENDING: True}) == 0
    assert sorted(e["_problemId"] for e in records.find({}, [("_id", 1)], 0, 100)) == [f"b{i}" for i in range(7)]


class Commands(monitoring.CommandListener):
    """The commands a client sends: (name, collection, the command)."""

    def __init__(self):
        self.sent = []

    def started(self, event):
        self.sent.append((event.command_name, event.command.get(event.command_name), event.command))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


@pytest.fixture
def watched(engine, db):
    """The test database through a client whose commands are recorded."""
    commands = Commands()
    client = pymongo.MongoClient(engine.uri, event_listeners=[commands])
    yield client[db.name], commands
    client.close()


def test_documents_handed_over_are_published_as_written_without_reading_them_back(watched):
    db, commands = watched
    written = Written()
    outbox = Outbox(db)
    outbox.publish(written.take(100, outbox))  # at start the store is read: what a crash left
    repository = ServiceProblemRepository(db, Outbox(db, publisher=written.add))
    repository.insert(problem("p7"), Change(T0))
    assert repository.replace(db[SERVICE_PROBLEMS].find_one({"_id": "p7"}), problem("p7", priority=1), Change(T0)) == 2
    commands.sent.clear()
    documents = written.take(100, outbox)
    assert [(d["_id"], d["_version"]) for d in documents] == [("p7", 2)]  # the latest version handed over
    assert commands.sent == []  # nothing read back
    outbox.publish(documents)
    assert [(e["eventType"], e["_problemVersion"], e["notification"]["event"]["serviceProblem"]["priority"])
            for e in events_of(db, "p7")] == [("ServiceProblemCreateEvent", 1, 3),
                                              ("ServiceProblemAttributeValueChangeEvent", 2, 1)]
    assert PENDING not in db[SERVICE_PROBLEMS].find_one({"_id": "p7"})


def test_documents_beyond_those_kept_are_read_back_from_the_store(db):
    written = Written(kept=2)
    outbox = Outbox(db)
    outbox.publish(written.take(100, outbox))
    repository = ServiceProblemRepository(db, Outbox(db, publisher=written.add))
    for index in range(5):
        repository.insert(problem(f"k{index}"), Change(T0))
    documents = written.take(100, outbox)
    assert sorted(d["_id"] for d in documents) == [f"k{i}" for i in range(5)]
    outbox.publish(documents)
    assert db[SERVICE_PROBLEMS].count_documents({PENDING: True}) == 0
    assert written.take(100, outbox) == []  # the store read back once: none left to read


def test_an_event_carried_on_after_it_was_published_is_not_stored_again(watched):
    """A change written over a document read before its events were published carries them on: publishing the
    change stores only its own events (a repeat would be refused as a duplicate key, at a cost)."""
    db, commands = watched
    outbox = Outbox(db)
    ServiceProblemRepository(db, NoFlush(db)).insert(problem("p8"), Change(T0))
    read_before = db[SERVICE_PROBLEMS].find_one({"_id": "p8"})
    outbox.publish([read_before])
    repository = ServiceProblemRepository(db, NoFlush(db))
    assert repository.replace(read_before, problem("p8", priority=1), Change(T0)) == 2
    changed = db[SERVICE_PROBLEMS].find_one({"_id": "p8"})
    create, change = [event["_id"] for event in changed[OUTBOX]]
    commands.sent.clear()
    outbox.publish([changed])
    inserted = [command["documents"] for name, collection, command in commands.sent if name == "insert"]
    assert [[event["_id"] for event in documents] for documents in inserted] == [[change]]
    assert [e["_id"] for e in events_of(db, "p8")] == [create, change]
    assert PENDING not in db[SERVICE_PROBLEMS].find_one({"_id": "p8"})
