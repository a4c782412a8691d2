"""The idempotencyKey collection (tmf_server/store/idempotency.py) on the embedded engine: claims, answers and
expiry, which the engine does not apply through the TTL index itself."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pymongo
import pytest

from tmf_server.store.idempotency import DONE, IDEMPOTENCY_KEYS, PENDING, IdempotencyKeys, ensure_indexes


class Clock:
    """Starts at the real time: the embedded engine hides documents whose TTL field is past by the wall clock."""

    def __init__(self):
        self.now = datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture()
def db(engine):
    client = pymongo.MongoClient(engine.uri, tz_aware=True)
    database = client["keys"]
    database[IDEMPOTENCY_KEYS].delete_many({})
    ensure_indexes(database)
    yield database
    client.close()


def test_the_first_claim_owns_the_key_and_later_ones_see_it(db):
    keys = IdempotencyKeys(db, ttl_seconds=60, clock=Clock())
    first = keys.claim("POST /x k", "f1", "id-1")
    assert (first.claimed_here, first.state, first.resource_id) == (True, PENDING, "id-1")
    second = keys.claim("POST /x k", "f2", "id-2")
    assert (second.claimed_here, second.fingerprint, second.resource_id) == (False, "f1", "id-1")
    keys.complete("POST /x k", {"status": 201, "body": "{}", "headers": {}})
    third = keys.claim("POST /x k", "f1", "id-3")
    assert (third.state, third.answer["status"]) == (DONE, 201)


def test_an_expired_key_is_free_again_although_the_engine_keeps_it(db):
    clock = Clock()
    keys = IdempotencyKeys(db, ttl_seconds=60, clock=clock)
    keys.claim("POST /x old", "f1", "id-1")
    keys.complete("POST /x old", {"status": 201, "body": "{}", "headers": {}})
    clock.now += timedelta(seconds=61)
    again = keys.claim("POST /x old", "f2", "id-2")
    assert (again.claimed_here, again.fingerprint, again.state) == (True, "f2", PENDING)


def test_expired_keys_are_purged_by_later_claims(db):
    clock = Clock()
    IdempotencyKeys(db, ttl_seconds=60, clock=clock).claim("POST /x a", "f", "id-a")
    clock.now += timedelta(hours=2)
    IdempotencyKeys(db, ttl_seconds=60, clock=clock).claim("POST /x b", "f", "id-b")  # a new process purges
    assert [d["_id"] for d in db[IDEMPOTENCY_KEYS].find()] == ["POST /x b"]


def test_a_released_key_is_forgotten(db):
    keys = IdempotencyKeys(db, ttl_seconds=60, clock=Clock())
    keys.claim("POST /x r", "f1", "id-1")
    keys.release("POST /x r")
    assert keys.claim("POST /x r", "f2", "id-2").claimed_here


def test_the_ttl_index_is_declared_for_mongodb(db):
    indexes = {i["name"]: i for i in db[IDEMPOTENCY_KEYS].list_indexes()}
    assert any(i.get("expireAfterSeconds") == 0 and list(i["key"]) == ["expiresAt"] for i in indexes.values())
