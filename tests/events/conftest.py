"""Fixtures for the dispatcher tests: one embedded engine per module, clean collections, listeners, dispatchers."""
from __future__ import annotations

import pymongo
import pytest

from tmf_server.events.dispatcher import Dispatcher, ensure_indexes
from tmf_server.settings import Settings
from tmf_server.store.database import DELIVERIES, EVENTS, SUBSCRIPTIONS

# Fast: three retries 0.2, 0.4 and 0.6 s after each failure; a short lease; quick polling.
FAST = {"callback_allow": ("loopback",), "delivery_schedule": (0.2, 0.4, 0.6), "delivery_timeout": 2.0,
        "lease_seconds": 5.0, "dispatch_poll_seconds": 0.05, "delivery_concurrency": 4, "db_timeout_ms": 1000}


def fast_settings(uri: str, **overrides) -> Settings:
    return Settings(mongodb_uri=uri, **{**FAST, **overrides})


@pytest.fixture()
def db(engine):
    client = pymongo.MongoClient(engine.uri, tz_aware=True)
    database = client["tmf656"]
    for name in (EVENTS, SUBSCRIPTIONS, DELIVERIES):
        database[name].delete_many({})
    ensure_indexes(database)
    yield database
    client.close()


@pytest.fixture()
def dispatcher_factory(engine):
    """Started dispatchers, each with its own MongoClient (like separate processes); all stopped afterwards."""
    running: list[tuple[Dispatcher, pymongo.MongoClient]] = []

    def make(start: bool = True, name: str | None = None, **overrides) -> Dispatcher:
        settings = fast_settings(engine.uri, **overrides)
        client = pymongo.MongoClient(engine.uri, tz_aware=True, serverSelectionTimeoutMS=settings.db_timeout_ms)
        dispatcher = Dispatcher(client[settings.database], settings, name=name)
        running.append((dispatcher, client))
        return dispatcher.start() if start else dispatcher

    yield make
    for dispatcher, client in running:
        assert dispatcher.stop(15), f"dispatcher {dispatcher.owner} did not stop"
        client.close()
