"""The Dispatcher: fans stored events out to hub subscriptions and delivers them, in order, with retries and leases."""
from __future__ import annotations

import json
import logging
import os
import queue
import socket
import threading
import time
import uuid
from dataclasses import dataclass

from pymongo.errors import PyMongoError

from tmf_server.events import delivery, schedule
from tmf_server.events.deliveries import (
    CANCELLED,
    DELIVERED,
    PARKED,
    RETRYING,
    DeliveryStore,
)
from tmf_server.events.fanout import fan_out
from tmf_server.events.outbox import Outbox
from tmf_server.events.signing import sign
from tmf_server.events.sources import EventSource, Subscriptions
from tmf_server.settings import Settings

log = logging.getLogger(__name__)

FANOUT_BATCH = 100
MAX_BACKOFF = 30.0  # seconds between rounds while the database is unreachable
_STOP = object()


def ensure_indexes(db) -> None:
    """Indexes of the delivery collection and the dispatcher's queries on stored events."""
    DeliveryStore(db).ensure_indexes()
    EventSource(db).ensure_indexes()


@dataclass
class Claimed:
    """A delivery this dispatcher holds the lease of, with what the attempt needs."""

    delivery: dict
    subscription: dict | None
    notification: dict | None


@dataclass(frozen=True)
class Round:
    fanned_out: int
    attempted: int


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


class Dispatcher:
    """Background fan-out and delivery over one database: start(), wake(), stop(timeout), join(); run_once() for tests."""

    def __init__(self, db, settings: Settings, *, name: str | None = None):
        self.settings = settings
        self.owner = f"{socket.gethostname()}/{os.getpid()}/{name or uuid.uuid4().hex[:8]}"
        self.events = EventSource(db)
        self.outbox = Outbox(db)
        self.subscriptions = Subscriptions(db)
        self.deliveries = DeliveryStore(db)
        self.concurrency = max(1, settings.delivery_concurrency)
        self.scan_limit = max(32, self.concurrency * 8)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._in_hand = 0  # claimed and queued or being delivered
        self._threads: list[threading.Thread] = []
        if settings.lease_seconds <= settings.delivery_timeout:
            log.warning("lease_seconds (%s) should exceed delivery_timeout (%s), or a slow attempt can be "
                        "taken over and sent twice", settings.lease_seconds, settings.delivery_timeout)

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> Dispatcher:
        """Starts the loop thread and delivery_concurrency delivery threads (daemon threads)."""
        if self._threads:
            raise RuntimeError("dispatcher already started")
        self._threads = [threading.Thread(target=self._loop, name=f"dispatcher-loop {self.owner}", daemon=True)]
        self._threads += [threading.Thread(target=self._work, name=f"dispatcher-{i} {self.owner}", daemon=True)
                          for i in range(self.concurrency)]
        for thread in self._threads:
            thread.start()
        return self

    def wake(self) -> None:
        """Look for work now (call after writing events); otherwise the loop polls every dispatch_poll_seconds."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stops claiming, gives back claims not yet started, lets attempts in flight finish; True if all ended."""
        deadline = time.monotonic() + timeout
        self._stopping.set()
        self._wake.set()
        if self._threads:
            self._threads[0].join(max(0.0, deadline - time.monotonic()))
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                self._release(item)
        for _ in self._threads[1:]:
            self._queue.put(_STOP)
        return self.join(max(0.0, deadline - time.monotonic()))

    def join(self, timeout: float | None = None) -> bool:
        """Waits for the threads to end (after stop()); True if they all did."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    # -- one round, usable without threads (tests) -----------------------------------------------------

    def run_once(self) -> Round:
        """One fan-out batch, then up to delivery_concurrency attempts, one claim at a time, in the calling thread."""
        fanned = self.fan_out()
        attempted = 0
        while attempted < self.concurrency:
            claimed, _busy = self.claim_due(1)
            if not claimed:
                break
            self.deliver(claimed[0])
            attempted += 1
        return Round(fanned, attempted)

    def publish(self) -> int:
        """Publishes one batch of written outboxes (the API's writes, and what interrupted writers left);
        returns how many documents it emptied."""
        return self.outbox.flush_pending(FANOUT_BATCH)

    def fan_out(self) -> int:
        """Publishes one batch of outboxes, then fans out one batch of events; returns how many it fanned out."""
        self.publish()
        return self._fan_out_batch()

    def _fan_out_batch(self) -> int:
        return fan_out(self.events, self.subscriptions, self.deliveries, owner=self.owner,
                       now_ms=_ms(time.time()), lease_ms=_ms(self.settings.lease_seconds), limit=FANOUT_BATCH)

    def claim_due(self, slots: int) -> tuple[list[Claimed], bool]:
        """Claims up to `slots` deliveries that may go now; (claimed, whether more work is likely waiting).

        A delivery may go when it is the earliest unfinished one of its (subscription, problem) chain and
        no earlier event of its problem still awaits fan-out. Followers found blocked are deferred to when
        their head can next change, so they do not crowd the scan.
        """
        now = _ms(time.time())
        chosen: list[dict] = []
        seen: set[tuple[str, str]] = set()
        busy = False
        try:
            for candidate in self.deliveries.due(now, self.scan_limit):
                if len(chosen) >= slots:
                    busy = True
                    break
                chain = (candidate["subscriptionId"], candidate["problemId"])
                if chain in seen:
                    continue
                seen.add(chain)
                # The first event of a problem (its create, version 1, seq 0) heads its chain and has nothing
                # before it: no query needed (an alarm storm's deliveries are nearly all of this kind).
                first = (candidate["problemVersion"], candidate["seq"]) == (1, 0)
                head = candidate if first else self.deliveries.chain_head(*chain, candidate["problemVersion"])
                if head is None:
                    continue
                if head["_id"] != candidate["_id"] and (head["leaseUntil"] > now or head["nextAttemptAt"] > now):
                    # Blocked by a head in flight or waiting for its retry: the followers wait as long.
                    if self.deliveries.defer_chain(*chain, max(head["leaseUntil"], head["nextAttemptAt"])):
                        busy = True
                    continue
                if not first and self.events.earlier_pending(head["problemId"], head["problemVersion"], head["seq"]):
                    continue
                claimed = self.deliveries.claim(head, self.owner, now, _ms(self.settings.lease_seconds))
                if claimed is not None:
                    chosen.append(claimed)
            if not chosen:
                return [], busy
            subscriptions = self.subscriptions.get_many([d["subscriptionId"] for d in chosen])
            notifications = self.events.notifications([d["eventId"] for d in chosen])
        except PyMongoError:
            for claimed in chosen:  # give back what will not be attempted; else the leases expire by themselves
                try:
                    self.deliveries.release(claimed)
                except PyMongoError:
                    break
            raise
        return [Claimed(d, subscriptions.get(d["subscriptionId"]), notifications.get(d["eventId"]))
                for d in chosen], busy

    # -- one attempt -----------------------------------------------------------------------------------

    def deliver(self, item: Claimed) -> str:
        """Attempts one claimed delivery and records the outcome; returns the delivery's new state."""
        d, subscription = item.delivery, item.subscription
        if subscription is None or not subscription.get("_active", False):
            reason = ("the subscription was deleted" if subscription is None else
                      f"the subscription is disabled: {subscription.get('_disabledReason') or 'no reason given'}")
            self._persist(d, lambda: self.deliveries.cancel_subscription(d["subscriptionId"], reason,
                                                                         _ms(time.time())))
            return self._finish(d, {"state": CANCELLED, "reason": reason}, None, "cancelledAt")
        if item.notification is None:
            return self._finish(d, {"state": PARKED, "reason": "the stored event is missing"}, None, "parkedAt")
        body = json.dumps(item.notification)
        started = time.time()
        timestamp = int(started)
        headers = {"webhook-id": d["eventId"], "webhook-timestamp": str(timestamp)}
        try:
            if subscription.get("_secret"):
                headers["webhook-signature"] = sign(subscription["_secret"], d["eventId"], timestamp, body)
        except ValueError as exc:
            result = delivery.AttemptResult(None, f"cannot sign: {exc}", 0)
        else:
            result = delivery.post(subscription["callback"], body, headers, self.settings.delivery_timeout,
                                   self.settings.callback_allow)
        attempt = {"at": schedule.utc_iso(started), "durationMs": result.duration_ms, "statusCode": result.status,
                   "error": result.error, "retryAfter": result.retry_after, "response": result.response,
                   "callback": subscription["callback"], "dispatcher": self.owner}
        if result.delivered:
            return self._finish(d, {"state": DELIVERED, "reason": None}, attempt, "deliveredAt")
        if result.status == 410:
            reason = f"the callback answered 410 Gone at {attempt['at']}"
            self._persist(d, lambda: self.subscriptions.disable(d["subscriptionId"], reason, attempt["at"]))
            self._persist(d, lambda: self.deliveries.cancel_subscription(d["subscriptionId"], reason,
                                                                         _ms(time.time())))
            log.warning("subscription %s disabled: %s", d["subscriptionId"], reason)
            return self._finish(d, {"state": CANCELLED, "reason": reason}, attempt, "cancelledAt")
        failures = d.get("failures", 0) + 1
        delay = schedule.next_delay(failures, self.settings.delivery_schedule,
                                    schedule.parse_retry_after(result.retry_after, time.time()),
                                    self.settings.max_retry_after)
        if delay is None:
            log.warning("delivery %s parked after %d failed attempts: %s", d["_id"], failures, result.error)
            return self._finish(d, {"state": PARKED, "failures": failures,
                                    "reason": f"gave up after {failures} failed attempts; last: {result.error}"},
                                attempt, "parkedAt")
        next_at = _ms(time.time() + delay)
        log.info("delivery %s failed (%s); attempt %d in %.1f s", d["_id"], result.error, failures + 1, delay)
        state = self._finish(d, {"state": RETRYING, "failures": failures, "nextAttemptAt": next_at,
                                 "reason": result.error}, attempt, None)
        self._persist(d, lambda: self.deliveries.defer_chain(d["subscriptionId"], d["problemId"], next_at))
        return state

    def _finish(self, d: dict, changes: dict, attempt: dict | None, stamp_field: str | None) -> str:
        now = _ms(time.time())
        if stamp_field:
            changes = {**changes, stamp_field: schedule.utc_iso(now / 1000)}
        if not self._persist(d, lambda: self.deliveries.complete(d, changes, attempt, now)):
            log.warning("delivery %s: lease lost before its outcome (%s) was recorded; another dispatcher "
                        "took it over and will try again", d["_id"], changes["state"])
        elif changes["state"] != RETRYING:
            self._persist(d, lambda: self.deliveries.promote_next(d["subscriptionId"], d["problemId"], now))
        return changes["state"]

    def _persist(self, d: dict, write):
        """Runs a write, retrying while the database is unreachable until the lease ends; its result or None."""
        pause = 0.2
        while True:
            try:
                return write()
            except PyMongoError as exc:
                if time.time() * 1000 + pause * 1000 >= d["leaseUntil"]:
                    log.error("delivery %s: could not record (%s); the lease will expire", d["_id"], exc)
                    return None
                time.sleep(pause)
                pause = min(pause * 2, 2.0)

    def _release(self, item: Claimed) -> None:
        try:
            self.deliveries.release(item.delivery)
        except PyMongoError as exc:
            log.warning("delivery %s not released (%s); its lease will expire", item.delivery["_id"], exc)
        with self._lock:
            self._in_hand -= 1

    # -- threads ---------------------------------------------------------------------------------------

    def _loop(self) -> None:
        backoff = 0.0
        while not self._stopping.is_set():
            try:
                busy = self._round()
                backoff = 0.0
            except Exception as exc:
                backoff = min(max(backoff * 2, 0.5), MAX_BACKOFF)
                if isinstance(exc, PyMongoError):
                    log.warning("dispatcher %s: database unavailable (%s); next try in %.1f s", self.owner, exc, backoff)
                else:
                    log.exception("dispatcher %s: unexpected error; next try in %.1f s", self.owner, backoff)
                self._stopping.wait(backoff)
                continue
            if not busy:
                self._wake.wait(self.settings.dispatch_poll_seconds)
                self._wake.clear()

    def _round(self) -> bool:
        published = self.publish()
        fanned = self._fan_out_batch()
        with self._lock:
            slots = self.concurrency - self._in_hand
        claimed, busy = self.claim_due(slots) if slots > 0 else ([], False)
        for item in claimed:
            with self._lock:
                self._in_hand += 1
            if self._stopping.is_set():  # stop() may already have drained the queue
                self._release(item)
            else:
                self._queue.put(item)
        return published >= FANOUT_BATCH or fanned >= FANOUT_BATCH or busy or (0 < slots == len(claimed))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._stopping.is_set():
                self._release(item)
                continue
            try:
                self.deliver(item)
            except Exception:
                log.exception("delivery %s failed unexpectedly; its lease will expire", item.delivery["_id"])
            with self._lock:
                self._in_hand -= 1
            self._wake.set()
