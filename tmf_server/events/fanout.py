"""Fan-out: every stored event awaiting it gets one delivery per matching active subscription, then `_fanout: done`."""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from pymongo.errors import PyMongoError

from tmf_server.events.deliveries import PARKED, DeliveryStore, new_delivery
from tmf_server.events.sources import EventSource
from tmf_server.events.subscriptions import SubscriptionRepository
from tmf_server.events.subscriptions import EVENT_ENVELOPE_ROOT
from tmf_server.query.matcher import UnsupportedFilter, matches

log = logging.getLogger(__name__)


@dataclass
class Held:
    """A delivery the fanning dispatcher took straight into its hands: not stored until its first attempt's
    outcome is (its event stays leased, `_fanout: pending`, until then)."""

    delivery: dict  # the delivery document, carrying the event's fan-out lease as its own
    subscription: dict
    notification: dict | None
    body: str | None  # the notification as JSON, once per event for all its subscribers


@dataclass
class FanOut:
    events: int = 0  # events handled
    token: str | None = None  # the fan-out lease of the batch
    stored: int = 0  # deliveries stored (pending or parked)
    held: list[Held] = field(default_factory=list)


def fan_out(events: EventSource, subscriptions: SubscriptionRepository, deliveries: DeliveryStore, *, owner: str,
            now_ms: int, lease_ms: int, limit: int, take: Callable[[str], bool] | None = None) -> FanOut:
    """Leases up to `limit` events awaiting fan-out and fans them out (fan_out_leased) to the subscriptions active
    once they are leased: every subscription acknowledged before one of their changes was written."""
    token, claimed = events.claim_pending(owner, now_ms, lease_ms, limit)
    active = subscriptions.active() if claimed else []
    return fan_out_leased(events, deliveries, claimed, token, owner=owner, now_ms=now_ms,
                          lease_until=now_ms + lease_ms, active=active, take=take)


def fan_out_leased(events: EventSource, deliveries: DeliveryStore, leased: list[dict], token: str, *, owner: str,
                   now_ms: int, lease_until: int, active: list[dict], take: Callable[[str], bool] | None = None
                   ) -> FanOut:
    """Fans out events the caller holds the fan-out lease `token` of (with their notifications): one delivery
    per matching subscription of `active`, then `_fanout: done`.

    Repeats are harmless (the delivery _id is the (event, subscription) pair), and the lease keeps two
    dispatchers from doing the same batch. Subscriptions' filters are evaluated in memory on the batch's
    notifications (query/matcher.py), never sent to the database: no subscription's query can hold the
    database. A subscription whose filter cannot be evaluated gets its deliveries parked with the reason, so
    nothing is silently dropped and an operator can redrive them.

    `take(subscription id)`, when given, is asked for each delivery of a problem's first event on its first
    fan-out: True means the caller attempts it at once, so it is returned in `held` instead of being stored
    (nothing earlier can be owed to that subscription for that problem, and its event staying leased keeps the
    problem's later events behind it). The caller stores each held delivery with its outcome, then marks the
    event done; if the caller dies, the event's lease ends and the next fan-out stores the deliveries not
    recorded.
    """
    if not leased:
        return FanOut()
    ids = [event["_id"] for event in leased]
    result = FanOut(len(leased), token)
    try:
        notifications = {event["_id"]: event.get("notification") for event in leased} if active else {}
        # Shaped as the stored events the filters were translated for (the notification under its root).
        stored = [{"_id": event_id, EVENT_ENVELOPE_ROOT: notification} for event_id, notification in notifications.items()]
        documents = []
        bodies: dict[str, str] = {}
        for subscription in active:
            try:
                filter_ = subscription.get("_filter") or {}
                selected = {event["_id"] for event in stored if matches(event, filter_)}
            except (UnsupportedFilter, TypeError, ValueError) as exc:
                log.error("filter of subscription %s failed; its deliveries are parked: %s", subscription["_id"], exc)
                reason = f"the subscription's filter could not run: {exc}"
                documents += [new_delivery(e, subscription["_id"], now_ms, PARKED, reason) for e in leased]
                continue
            for event in leased:
                if event["_id"] not in selected:
                    continue
                delivery = new_delivery(event, subscription["_id"], now_ms)
                if take is not None and _first_fan_out_of_first_event(event) and take(subscription["_id"]):
                    delivery.update(leaseToken=token, leaseOwner=owner, leaseUntil=lease_until)
                    notification = notifications.get(event["_id"])
                    if event["_id"] not in bodies and notification is not None:
                        bodies[event["_id"]] = json.dumps(notification)
                    result.held.append(Held(delivery, subscription, notification, bodies.get(event["_id"])))
                else:
                    documents.append(delivery)
        deliveries.create_many(documents)
        result.stored = len(documents)
        held_events = {h.delivery["eventId"] for h in result.held}
        if len(held_events) < len(ids):
            events.mark_done([i for i in ids if i not in held_events], token)
    except PyMongoError:
        try:
            events.release(ids, token)
        except PyMongoError:
            pass  # the lease expires by itself
        raise
    return result


def _first_fan_out_of_first_event(event: dict) -> bool:
    """A problem's create event (version 1, seq 0) that no dispatcher leased before (a lease taken over from one
    that died may have left deliveries already recorded)."""
    return (event["_problemVersion"], event["_seq"]) == (1, 0) and not event.get("_retaken")
