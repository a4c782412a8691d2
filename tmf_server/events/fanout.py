"""Fan-out: every stored event awaiting it gets one delivery per matching active subscription, then `_fanout: done`."""
from __future__ import annotations

import logging

from pymongo.errors import OperationFailure, PyMongoError

from tmf_server.events.deliveries import PARKED, DeliveryStore, new_delivery
from tmf_server.events.sources import EventSource, Subscriptions

log = logging.getLogger(__name__)


def fan_out(events: EventSource, subscriptions: Subscriptions, deliveries: DeliveryStore, *, owner: str,
            now_ms: int, lease_ms: int, limit: int) -> int:
    """Fans out one batch of events; returns how many events it handled.

    Repeats are harmless (the delivery _id is the (event, subscription) pair), and the lease keeps two
    dispatchers from doing the same batch. A subscription whose filter the database refuses to run gets its
    deliveries parked with the reason, so nothing is silently dropped and an operator can redrive them.
    """
    token, claimed = events.claim_pending(owner, now_ms, lease_ms, limit)
    if not claimed:
        return 0
    ids = [event["_id"] for event in claimed]
    try:
        documents = []
        for subscription in subscriptions.active():
            try:
                selected = events.matching(ids, subscription.get("_filter") or {})
            except OperationFailure as exc:
                log.error("filter of subscription %s failed; its deliveries are parked: %s", subscription["_id"], exc)
                reason = f"the subscription's filter could not run: {exc}"
                documents += [new_delivery(e, subscription["_id"], now_ms, PARKED, reason) for e in claimed]
                continue
            documents += [new_delivery(e, subscription["_id"], now_ms) for e in claimed if e["_id"] in selected]
        deliveries.create_many(documents)
        events.mark_done(ids, token)
    except PyMongoError:
        try:
            events.release(ids, token)
        except PyMongoError:
            pass  # the lease expires by itself
        raise
    return len(claimed)
