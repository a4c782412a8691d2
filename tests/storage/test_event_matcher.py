"""The fan-out's in-memory matcher (tmf_server/query/matcher.py) answers every hub query as the database does.

Each hub query goes through the real subscription translation (SubscriptionService.translate) and is then
answered three ways over one corpus of stored events: by the embedded engine (the query the fan-out used to
send), by mongomock (the oracle of MongoDB semantics) and by the matcher. The matcher must agree with the oracle
on every query, and with the engine wherever the engine agrees with the oracle.
"""
from __future__ import annotations

import random
import uuid

import mongomock
import pymongo
import pytest

from tmf_server.app import load_spec
from tmf_server.events.subscriptions import EVENT_ENVELOPE_ROOT, SubscriptionRepository, SubscriptionService
from tmf_server.query.catalog import AttributeCatalog
from tmf_server.query.matcher import UnsupportedFilter, matches
from tmf_server.store.database import EVENTS
from tmf_server.store.embedded import EmbeddedEngine

EVENT_TYPES = ("ServiceProblemCreateEvent", "ServiceProblemStateChangeEvent",
               "ServiceProblemAttributeValueChangeEvent", "ServiceProblemDeleteEvent")
STATUSES = ("acknowledged", "pending", "inProgress", "resolved", "closed")
TEXTS = ("Broadband slow every evening", "2025-03-01 fibre cut", "4701", "latency above SLA", "Évening drops", "")


def make_event(rng: random.Random) -> dict:
    event_id = str(uuid.uuid4())
    problem = {"id": f"P{rng.randint(1, 40)}", "priority": rng.randint(0, 4), "status": rng.choice(STATUSES),
               "category": rng.choice(("customer.qosDegradation", "network", "Network"))}
    if rng.random() < 0.8:
        problem["description"] = rng.choice(TEXTS)
    if rng.random() < 0.85:
        problem["relatedParty"] = [{"id": rng.choice(("C1", "C2", "C42", "4701")),
                                    "role": rng.choice(("customer", "reporter"))} for _ in range(rng.randint(0, 3))]
    if rng.random() < 0.6:
        problem["characteristic"] = [
            {"name": rng.choice(("metric", "observedValue", "region")),
             "value": rng.choice((rng.randint(1, 200), "120", "eu-west", 2.5)),
             **({"characteristicRelationship": [{"id": f"CR{rng.randint(1, 4)}", "relationshipType": "dependsOn"}]}
                if rng.random() < 0.3 else {})} for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.7:
        problem["creationDate"] = (f"2026-11-{rng.randint(10, 28)}T{rng.randint(0, 23):02d}:00:00."
                                   f"{rng.randint(0, 999):03d}Z")
    notification = {"eventId": event_id, "eventType": rng.choice(EVENT_TYPES),
                    "eventTime": f"2026-11-{rng.randint(10, 28)}T08:00:00.000Z", "priority": str(problem["priority"]),
                    "event": {"serviceProblem": problem}}
    if rng.random() < 0.5:
        notification["correlationId"] = rng.choice(("req-1", "req-2", "2025-03-01"))
    return {"_id": event_id, EVENT_ENVELOPE_ROOT: notification}


CORPUS = [make_event(random.Random(f"matcher-{i}")) for i in range(300)]

QUERIES = [
    "eventType=ServiceProblemCreateEvent",
    "eventType=ServiceProblemCreateEvent,ServiceProblemStateChangeEvent",
    "eventType!=ServiceProblemDeleteEvent",
    "event.serviceProblem.priority<=2",
    "event.serviceProblem.priority.gt=1&event.serviceProblem.status=inProgress,resolved",
    "event.serviceProblem.priority!=0",
    "event.serviceProblem.status!=closed",
    "event.serviceProblem.relatedParty.id=C42",
    "event.serviceProblem.relatedParty.id=C1,C2",
    "event.serviceProblem.relatedParty.id!=C1",
    "event.serviceProblem.relatedParty.id=4701",
    "event.serviceProblem.relatedParty.id!=4701",
    "event.serviceProblem.relatedParty.role=customer&event.serviceProblem.priority<3",
    "event.serviceProblem.description.regex=^Broad",
    "event.serviceProblem.description.regex=evening",
    "event.serviceProblem.description=4701",
    "event.serviceProblem.description=2025-03-01 fibre cut",
    "event.serviceProblem.description!=latency above SLA",
    "event.serviceProblem.description>L",
    "event.serviceProblem.category=Network",
    "event.serviceProblem.category.regex=^net",
    "event.serviceProblem.characteristic.name=metric",
    "event.serviceProblem.characteristic.value=120",
    "event.serviceProblem.characteristic.value.regex=^1",
    "event.serviceProblem.characteristic.value<5",
    "event.serviceProblem.characteristic.characteristicRelationship.id=CR2",
    "event.serviceProblem.creationDate>=2026-11-20",
    "event.serviceProblem.creationDate<2026-11-15T12:00:00Z",
    "event.serviceProblem.id=P3,P7,P9",
    "correlationId=req-1",
    "correlationId!=2025-03-01",
    "priority=2",
    "eventTime.gte=2026-11-20T08:00:00Z&eventType=ServiceProblemStateChangeEvent",
]


@pytest.fixture(scope="module")
def translate():
    spec = load_spec()
    catalog = AttributeCatalog(spec, "ServiceProblemAttributeValueChangeEvent", stored_under=EVENT_ENVELOPE_ROOT)
    return SubscriptionService(SubscriptionRepository(mongomock.MongoClient().db), catalog, (), lambda: "").translate


@pytest.fixture(scope="module")
def engine_events(tmp_path_factory):
    engine = EmbeddedEngine(tmp_path_factory.mktemp("matcher-engine")).start()
    client = pymongo.MongoClient(engine.uri)
    collection = client["matcher"][EVENTS]
    collection.delete_many({})
    collection.insert_many([dict(e) for e in CORPUS])
    yield collection
    client.close()
    engine.stop(timeout=3)


@pytest.fixture(scope="module")
def oracle_events():
    collection = mongomock.MongoClient()["matcher"][EVENTS]
    collection.insert_many([dict(e) for e in CORPUS])
    return collection


@pytest.mark.parametrize("query", QUERIES)
def test_the_matcher_answers_as_the_database(query, translate, engine_events, oracle_events):
    filter_ = translate(query)
    oracle = {e["_id"] for e in oracle_events.find(filter_, {"_id": 1})}
    engine = {e["_id"] for e in engine_events.find(filter_, {"_id": 1})}
    in_memory = {e["_id"] for e in CORPUS if matches(e, filter_)}
    assert 0 < len(oracle) < len(CORPUS), f"{query}: the corpus does not exercise this query"
    assert in_memory == oracle, f"{query} -> {filter_}: matcher and MongoDB semantics differ"
    assert in_memory == engine, f"{query} -> {filter_}: matcher and the embedded engine differ"


def test_a_stored_filter_with_an_unsafe_regex_is_refused_not_run():
    """A subscription stored before the safe form existed: its filter is refused (the fan-out parks its
    deliveries with the reason) instead of running `(a+)+$` against a notification for minutes."""
    event = {"_id": "e1", EVENT_ENVELOPE_ROOT: {"event": {"serviceProblem": {"description": "a" * 28 + "!"}}}}
    with pytest.raises(UnsupportedFilter, match="quantifier on a group"):
        matches(event, {"notification.event.serviceProblem.description": {"$regex": "(a+)+$"}})
