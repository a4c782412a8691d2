"""Reads of the stored events (the ServiceProblemEventRecord resources)."""
from __future__ import annotations

from tmf_server.events.outbox import Outbox
from tmf_server.store.database import EVENTS
from tmf_server.store.reader import CollectionReader

_BATCH = 100


class EventRecords(CollectionReader):
    """Reads events after publishing the outboxes still waiting for the dispatcher, so that a client reads the
    events of the changes it was just answered about."""

    def __init__(self, db, outbox: Outbox):
        super().__init__(db, EVENTS)
        self.outbox = outbox

    def _publish_waiting(self) -> None:
        while self.outbox.flush_pending(_BATCH) == _BATCH:
            pass

    def get(self, resource_id: str, projection: dict | None = None) -> dict | None:
        self._publish_waiting()
        return super().get(resource_id, projection)

    def find(self, filter_: dict, sort, offset: int, limit: int, projection: dict | None = None,
             max_time_ms: int | None = None) -> list[dict]:
        self._publish_waiting()
        return super().find(filter_, sort, offset, limit, projection, max_time_ms)
