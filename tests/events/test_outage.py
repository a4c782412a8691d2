"""A database outage: the dispatcher backs off without blocking anyone, and resumes when the database is back."""
from __future__ import annotations

import logging
import time

from pymongo.errors import AutoReconnect

from tests.events.conftest import fast_settings
from tests.events.factory import add_events, add_subscription, event
from tests.support.polling import wait_for
from tmf_server.events.dispatcher import Dispatcher, ensure_indexes
from tmf_server.store.database import connect
from tmf_server.store.embedded import EmbeddedEngine


def _write_when_reachable(db):
    """The test's own first write after the restart may meet a pooled connection to the old engine."""
    try:
        return add_events(db, event("P1", 1))
    except AutoReconnect:
        return None


def test_the_dispatcher_backs_off_while_the_database_is_down_and_resumes(tmp_path, listener_factory, caplog):
    caplog.set_level(logging.WARNING, logger="tmf_server.events.dispatcher")
    engine = EmbeddedEngine(tmp_path / "engine").start()
    settings = fast_settings(engine.uri, db_timeout_ms=500)
    test_client, dispatcher_client = connect(engine.uri, settings), connect(engine.uri, settings)
    dispatcher = None
    try:
        db = test_client[settings.database]
        ensure_indexes(db)
        receiver = listener_factory()
        add_subscription(db, receiver.url)
        dispatcher = Dispatcher(dispatcher_client[settings.database], settings).start()
        port = engine.port
        engine.stop(timeout=3)

        wait_for(lambda: "database unavailable" in caplog.text, message="the dispatcher to notice the outage")
        started = time.monotonic()
        dispatcher.wake()  # what a request handler calls after writing events: never blocks
        assert time.monotonic() - started < 0.5
        assert dispatcher._threads[0].is_alive()

        engine = EmbeddedEngine(tmp_path / "engine", port=port).start()
        [stored] = wait_for(lambda: _write_when_reachable(db), 30, message="the test's write after the restart")
        dispatcher.wake()
        wait_for(lambda: receiver.delivered_ids() == [stored["_id"]], 45, message="delivery after the outage")
    finally:
        if dispatcher is not None:
            assert dispatcher.stop(15)
        test_client.close()
        dispatcher_client.close()
        engine.stop(timeout=3)
