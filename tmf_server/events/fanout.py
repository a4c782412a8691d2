"""Fan-out: every stored event awaiting it gets one delivery per matching active subscription, then `_fanout: done`."""
from __future__ import annotations

import logging

from pymongo.errors import PyMongoError

from tmf_server.events.deliveries import PARKED, DeliveryStore, new_delivery
from tmf_server.events.sources import EventSource
from tmf_server.events.subscriptions import SubscriptionRepository
from tmf_server.events.subscriptions import EVENT_ENVELOPE_ROOT
from tmf_server.query.matcher import UnsupportedFilter, matches

log = logging.getLogger(__name__)


def fan_out(events: EventSource, subscriptions: SubscriptionRepository, deliveries: DeliveryStore, *, owner: str,
            now_ms: int, lease_ms: int, limit: int) -> int:
    """Fans out one batch of events; returns how many events it handled.

    Repeats are harmless (the delivery _id is the (event, subscription) pair), and the lease keeps two
    dispatchers from doing the same batch. Subscriptions' filters are evaluated in memory on the batch's
    notifications (query/matcher.py), never sent to the database: one read per batch, whatever the number of
    subscriptions, and no subscription's query can hold the database. A subscription whose filter cannot be
    evaluated gets its deliveries parked with the reason, so nothing is silently dropped and an operator can
    redrive them.
    """
    token, claimed = events.claim_pending(owner, now_ms, lease_ms, limit)
    if not claimed:
        return 0
    ids = [event["_id"] for event in claimed]
    try:
        active = subscriptions.active()
        # Shaped as the stored events the filters were translated for (the notification under its root).
        stored = [{"_id": event_id, EVENT_ENVELOPE_ROOT: notification}
                  for event_id, notification in events.notifications(ids).items()] if active else []
        documents = []
        for subscription in active:
            try:
                filter_ = subscription.get("_filter") or {}
                selected = {event["_id"] for event in stored if matches(event, filter_)}
            except (UnsupportedFilter, TypeError, ValueError) as exc:
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
