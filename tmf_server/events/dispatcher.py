"""The Dispatcher: fans stored events out to hub subscriptions and delivers them, in order, with retries and leases."""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from pymongo.errors import PyMongoError

from tmf_server import metrics
from tmf_server.events import schedule
from tmf_server.events.deliveries import (
    CANCELLED,
    DELIVERED,
    PARKED,
    RETRYING,
    DeliveryStore,
)
from tmf_server.events.fanout import FanOut, fan_out, fan_out_leased
from tmf_server.events.outbox import Outbox, Written
from tmf_server.events.sender import AttemptResult, Sender
from tmf_server.events.signing import sign
from tmf_server.events.sources import FANOUT_STORED_DONE, EventSource, new_lease
from tmf_server.events.subscriptions import SubscriptionRepository
from tmf_server.settings import Settings
from tmf_server.store.instants import epoch_ms

log = logging.getLogger(__name__)

FANOUT_BATCH = 100
MAX_BACKOFF = 30.0  # seconds between rounds while the database is unreachable
HAND_FACTOR = 8  # a healthy subscription may hold this many times its attempts in flight, claimed and waiting


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
    held: bool = False  # taken at its fan-out, not stored yet (fanout.Held)
    body: str | None = None  # the notification as JSON, when already made


@dataclass
class Outcome:
    """What an attempt came to, before it is recorded (attempts are recorded in batches)."""

    delivery: dict
    changes: dict  # state, reason, and the retry schedule's fields
    attempt: dict | None  # the attempt as kept in the delivery's history
    stamp_field: str | None  # deliveredAt, parkedAt or cancelledAt
    cancel_reason: str | None = None  # set: every unfinished delivery of the subscription is cancelled
    disable_reason: str | None = None  # set: the subscription is disabled first (410 Gone)
    held: bool = False  # the delivery is stored with this outcome (Claimed.held)


@dataclass
class Subscriber:
    """What one dispatcher knows of one subscription's listener: attempts in flight and how it answered lately."""

    in_hand: int = 0  # claimed by this dispatcher: waiting for a thread or being attempted
    attempting: int = 0
    failures: int = 0  # consecutive attempts that found it down, slow or failing
    proven: bool = False  # it has answered 2xx since this dispatcher started
    resting_until: int = 0  # epoch ms: no attempt to it before


@dataclass(frozen=True)
class Round:
    fanned_out: int
    attempted: int


def _event_ms(delivery: dict) -> int | None:
    """The epoch ms of the delivery's event (the change it reports), for the lag metric; None if unreadable."""
    try:
        return epoch_ms(delivery["eventTime"])
    except (KeyError, TypeError, ValueError):
        return None


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


# Client errors a listener may heal by itself; any other 4xx will be the same next time: parked at once.
RETRYABLE_CLIENT_ERRORS = frozenset({408, 409, 425, 429})


class Dispatcher:
    """Background fan-out and delivery over one database: start(), wake(), stop(timeout), join(); run_once() for tests.

    Fairness: each subscription may have at most `delivery_per_subscription` attempts in flight, and only one
    while its listener is unproven or failing; after a failure it rests (its deliveries are not claimed) until
    its retry is due, so a dead or slow listener never holds the slots the others need.
    """

    def __init__(self, db, settings: Settings, *, name: str | None = None):
        self.settings = settings
        self.owner = f"{socket.gethostname()}/{os.getpid()}/{name or uuid.uuid4().hex[:8]}"
        self.events = EventSource(db)
        self.outbox = Outbox(db)
        self.written_documents = Written()  # handed over by this process's writers (written())
        self.subscriptions = SubscriptionRepository(db)
        self.deliveries = DeliveryStore(db)
        self.sender = Sender(settings.delivery_timeout, settings.callback_allow)
        self.concurrency = max(1, settings.delivery_concurrency)
        self.per_subscription = max(1, min(settings.delivery_per_subscription, self.concurrency))
        self.scan_limit = max(32, self.concurrency * 8)
        self._wake = threading.Event()
        self._events_written = threading.Event()  # set by wake(): events may await publishing and fan-out
        self._fanned_at = 0.0  # time.monotonic() of the last polled look (events of other writers, ended leases)
        self._slots_short_since: float | None = None  # since when events waited for free slots (loop thread)
        self._stored_events_left = False  # the last fan-out of stored events came back full (loop thread)
        self._fanned_out_stored = 0  # deliveries the fan-out stored since the start (loop thread)
        # Set when stored deliveries may have become due (stored, given back, promoted, redriven; more found than
        # taken): the next round looks for them. Otherwise they are looked for at every poll (other processes'
        # deliveries, retries coming due).
        self._maybe_due = threading.Event()
        self._maybe_due.set()
        self._due_looked_at = 0.0  # time.monotonic()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)  # notified when a claim waits or a thread may take one
        self._in_hand = 0  # claimed, all subscriptions together (under _lock)
        self._subscribers: dict[str, Subscriber] = {}  # under _lock
        self._waiting: dict[str, deque[Claimed]] = {}  # per subscription, claims waiting for a thread (under _lock)
        self._turns: deque[str] = deque()  # subscriptions with waiting claims, next turn first (under _lock)
        self._outcomes: list[Outcome] = []  # attempted, not yet recorded (under _lock)
        # Events whose deliveries were taken at fan-out: event id -> [held deliveries not stored yet, fan-out
        # lease token]; the event is marked done when the last one is stored (under _lock).
        self._held_events: dict[str, list] = {}
        self._recorder = threading.Lock()  # held by the one thread recording a batch of outcomes
        self._threads: list[threading.Thread] = []
        self._chores: list[list] = []  # [interval seconds, callable, next run (monotonic)]: see every()
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

    def every(self, seconds: float, chore: Callable[[], object]) -> Dispatcher:
        """Also runs `chore` from the loop thread, at most every `seconds` (background work of other packages, e.g.
        the intake's sweep of records a crash left `received`). Its failures are logged; they never stop the loop."""
        self._chores.append([seconds, chore, time.monotonic() + seconds])
        return self

    def _run_chores(self) -> None:
        for entry in self._chores:
            seconds, chore, due = entry
            if time.monotonic() >= due:
                entry[2] = time.monotonic() + seconds
                try:
                    chore()
                except Exception:
                    log.exception("dispatcher %s: background chore %s failed", self.owner, chore)

    def wake(self) -> None:
        """Look for work now, in the store too (call after writing events or deliveries elsewhere); otherwise the
        loop polls every dispatch_poll_seconds."""
        self.written_documents.read_back()
        self._signal()

    def written(self, document: dict) -> None:
        """A writer of this process stored a change carrying events (`document`, as written): publish it from
        here, without reading it back."""
        self.written_documents.add(document)
        self._signal()

    def _signal(self) -> None:
        self._events_written.set()
        self._maybe_due.set()
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stops claiming, gives back claims not yet started, lets attempts in flight finish and records them;
        True if all ended."""
        deadline = time.monotonic() + timeout
        self._stopping.set()
        self._wake.set()
        if self._threads:
            self._threads[0].join(max(0.0, deadline - time.monotonic()))
        with self._ready:
            waiting = [item for claims in self._waiting.values() for item in claims]
            self._waiting.clear()
            self._turns.clear()
            self._ready.notify_all()  # idle threads end
        for item in waiting:
            self._release(item)
        ended = self.join(max(0.0, deadline - time.monotonic()))
        if ended:
            self.sender.close()
        return ended

    def end_rest(self, subscription_id: str) -> None:
        """An operator had a subscription's retrying deliveries sent now (admin send-now): its listener is tried
        again at once instead of at the end of its rest."""
        with self._lock:
            subscriber = self._subscribers.get(subscription_id)
            if subscriber is not None:
                subscriber.resting_until = 0
        self.wake()

    def alive(self) -> bool:
        """Whether the loop thread runs (started, not stopped, not dead)."""
        return bool(self._threads) and self._threads[0].is_alive()

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
        documents = self.written_documents.take(FANOUT_BATCH, self.outbox, read_back=True)
        if documents:
            self.outbox.publish(documents)
        return len(documents)

    def fan_out(self) -> int:
        """Publishes one batch of outboxes, then fans out one batch of events, storing every delivery; returns how
        many events it fanned out."""
        self.publish()
        return self._fan_out_batch(FANOUT_BATCH).events

    def _fan_out_batch(self, limit: int, take: Callable[[str], bool] | None = None) -> FanOut:
        batch = fan_out(self.events, self.subscriptions, self.deliveries, owner=self.owner, now_ms=_ms(time.time()),
                        lease_ms=_ms(self.settings.lease_seconds), limit=limit, take=take)
        self._stored_by_fan_out(batch)
        return batch

    def _stored_by_fan_out(self, batch: FanOut) -> None:
        if batch.stored:
            self._fanned_out_stored += batch.stored
            self._maybe_due.set()

    def _into_hands(self, free: int, fan: Callable[[Callable[[str], bool]], FanOut]) -> int:
        """Runs one fan-out `fan(take)` that takes the deliveries of problems' first events straight into this
        dispatcher's hands, up to `free` of them and as far as their subscriptions' allowances let it: each is
        stored once, with its outcome, instead of inserted, claimed and completed (an alarm storm's deliveries
        are nearly all of this kind). Returns how many events it fanned out."""
        now = _ms(time.time())
        with self._lock:
            allowance = {sid: self._allowance(sid, now) for sid in self._subscribers}

        def take(subscription_id: str) -> bool:
            nonlocal free
            if free <= 0 or allowance.get(subscription_id, 1) <= 0:
                return False
            free -= 1
            allowance[subscription_id] = allowance.get(subscription_id, 1) - 1
            return True

        batch = fan(take)
        with self._lock:
            for h in batch.held:
                entry = self._held_events.setdefault(h.delivery["eventId"], [0, batch.token])
                entry[0] += 1
                self._subscribers.setdefault(h.delivery["subscriptionId"], Subscriber()).in_hand += 1
                self._in_hand += 1
        for h in batch.held:
            item = Claimed(h.delivery, h.subscription, h.notification, held=True, body=h.body)
            if self._stopping.is_set():
                self._release(item)
            else:
                self._enqueue(item)
        return batch.events

    def _publish_into_hands(self, free: int, limit: int, polled: bool) -> int:
        """Publishes up to `limit` written outboxes with their events leased to this dispatcher, and fans those
        out at once, into its hands where it can (no claim of the events); stores them done when no
        subscription is active. Returns how many outboxes it emptied. `polled`: those pending in the store are
        looked for too (other processes' writes, what a crash left)."""
        documents = self.written_documents.take(limit, self.outbox, read_back=polled)
        if not documents:
            return 0
        # Read after the changes: every subscription acknowledged before one of them was written is in it.
        active = self.subscriptions.active()
        if not active:
            self.outbox.publish(documents, FANOUT_STORED_DONE)
            return len(documents)
        now = _ms(time.time())
        lease_ms = _ms(self.settings.lease_seconds)
        token, lease = new_lease(self.owner, now, lease_ms)
        published = self.outbox.publish(documents, lease)

        def fan(take: Callable[[str], bool]) -> FanOut:
            batch = fan_out_leased(self.events, self.deliveries, published, token, owner=self.owner, now_ms=now,
                                   lease_until=now + lease_ms, active=active, take=take)
            self._stored_by_fan_out(batch)
            return batch

        if published:
            self._into_hands(free, fan)
        return len(documents)

    def claim_due(self, slots: int) -> tuple[list[Claimed], bool]:
        """Claims up to `slots` deliveries that may go now; (claimed, whether more work is likely waiting).

        A delivery may go when it is the earliest unfinished one of its (subscription, problem) chain, no
        earlier event of its problem still awaits fan-out, and its subscription may take another attempt.
        Followers found blocked are deferred to when their head can next change, so they do not crowd the scan.
        Deliveries left for now (their subscription's allowance is used up, their chain or problem not ready)
        are looked for again at the next round (`_maybe_due`), not only at the next poll.
        """
        now = _ms(time.time())
        with self._lock:
            allowance = {sid: self._allowance(sid, now) for sid in self._subscribers}
        chosen: list[dict] = []
        seen: set[tuple[str, str]] = set()
        busy = False
        excluded = [sid for sid, n in allowance.items() if n <= 0]
        left = bool(excluded)
        # A scan twice the free slots: reading a delivery costs as much as claiming it.
        candidates = self.deliveries.due(now, min(self.scan_limit, max(16, slots * 2)), excluded)
        for candidate in candidates:
            if len(chosen) >= slots:
                busy = True
                break
            subscription_id = candidate["subscriptionId"]
            chain = (subscription_id, candidate["problemId"])
            if chain in seen or allowance.get(subscription_id, 1) <= 0:
                left = True
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
                left = True
                continue
            if not first and self.events.earlier_pending(head["problemId"], head["problemVersion"], head["seq"]):
                left = True
                continue
            chosen.append(head)
            allowance[subscription_id] = allowance.get(subscription_id, 1) - 1
        if left:
            self._maybe_due.set()
        if not chosen:
            return [], busy
        claimed = self.deliveries.claim_many(chosen, self.owner, now, _ms(self.settings.lease_seconds))
        with self._lock:
            for d in claimed:
                self._subscribers.setdefault(d["subscriptionId"], Subscriber()).in_hand += 1
        try:
            subscriptions = self.subscriptions.get_many([d["subscriptionId"] for d in claimed])
            notifications = self.events.notifications([d["eventId"] for d in claimed])
        except PyMongoError:
            for d in claimed:  # give back what will not be attempted; else the leases expire by themselves
                self._give_back(d)
            raise
        return [Claimed(d, subscriptions.get(d["subscriptionId"]), notifications.get(d["eventId"]))
                for d in claimed], busy

    def _attempt_limit(self, subscriber: Subscriber) -> int:
        """Attempts a subscription may have in flight: one until its listener answered 2xx, and while failing."""
        return self.per_subscription if subscriber.proven and not subscriber.failures else 1

    def _allowance(self, subscription_id: str, now_ms: int) -> int:
        """How many more deliveries of a subscription this dispatcher may claim now (under _lock)."""
        subscriber = self._subscribers.get(subscription_id)
        if subscriber is None:
            return 1
        if subscriber.resting_until > now_ms:
            return 0
        limit = self._attempt_limit(subscriber)
        return (limit * HAND_FACTOR if limit > 1 else 1) - subscriber.in_hand

    # -- one attempt -----------------------------------------------------------------------------------

    def deliver(self, item: Claimed) -> str:
        """Attempts one claimed delivery and records the outcome; returns the delivery's new state."""
        outcome = self.attempt(item)
        self._record([outcome])
        return outcome.changes["state"]

    def attempt(self, item: Claimed) -> Outcome:
        """Sends one claimed delivery (nothing is written): what it came to."""
        try:
            outcome = self._attempt(item)
        except BaseException:
            self._attempted(item.delivery["subscriptionId"], None)
            raise
        self._attempted(item.delivery["subscriptionId"], outcome)
        outcome.held = item.held
        return outcome

    def _attempt(self, item: Claimed) -> Outcome:
        d, subscription = item.delivery, item.subscription
        if subscription is None or not subscription.get("_active", False):
            reason = ("the subscription was deleted" if subscription is None else
                      f"the subscription is disabled: {subscription.get('_disabledReason') or 'no reason given'}")
            return Outcome(d, {"state": CANCELLED, "reason": reason}, None, "cancelledAt", cancel_reason=reason)
        if item.notification is None:
            return Outcome(d, {"state": PARKED, "reason": "the stored event is missing"}, None, "parkedAt")
        started = time.time()
        body = item.body if item.body is not None else json.dumps(item.notification)
        result = self._send(d, subscription, body)
        attempt = {"at": schedule.utc_iso(started), "durationMs": result.duration_ms, "statusCode": result.status,
                   "error": result.error, "retryAfter": result.retry_after, "response": result.response,
                   "callback": subscription["callback"], "dispatcher": self.owner}
        return self._judge(d, result, attempt)

    def _send(self, d: dict, subscription: dict, body: str) -> AttemptResult:
        timestamp = int(time.time())
        headers = {"webhook-id": d["eventId"], "webhook-timestamp": str(timestamp)}
        try:
            if subscription.get("_secret"):
                headers["webhook-signature"] = sign(subscription["_secret"], d["eventId"], timestamp, body)
        except ValueError as exc:
            return AttemptResult(None, f"cannot sign: {exc}", 0)
        return self.sender.post(subscription["callback"], body, headers)

    def _judge(self, d: dict, result: AttemptResult, attempt: dict) -> Outcome:
        if result.delivered:
            return Outcome(d, {"state": DELIVERED, "reason": None}, attempt, "deliveredAt")
        if result.status == 410:
            reason = f"the callback answered 410 Gone at {attempt['at']}"
            return Outcome(d, {"state": CANCELLED, "reason": reason}, attempt, "cancelledAt",
                           cancel_reason=reason, disable_reason=reason)
        failures = d.get("failures", 0) + 1
        if result.status is not None and 400 <= result.status < 500 and result.status not in RETRYABLE_CLIENT_ERRORS:
            return Outcome(d, {"state": PARKED, "failures": failures,
                               "reason": f"the callback refused the notification ({result.error}); a client error "
                                         "is not retried: redrive it once the listener is fixed"},
                           attempt, "parkedAt")
        delay = schedule.next_delay(failures, self.settings.delivery_schedule,
                                    schedule.parse_retry_after(result.retry_after, time.time()),
                                    self.settings.max_retry_after)
        if delay is None:
            return Outcome(d, {"state": PARKED, "failures": failures,
                               "reason": f"gave up after {failures} failed attempts; last: {result.error}"},
                           attempt, "parkedAt")
        return Outcome(d, {"state": RETRYING, "failures": failures, "nextAttemptAt": _ms(time.time() + delay),
                           "reason": result.error}, attempt, None)

    def _attempted(self, subscription_id: str, outcome: Outcome | None) -> None:
        """Ends an attempt in flight and notes what it said of the subscription's listener."""
        with self._lock:
            subscriber = self._subscribers.setdefault(subscription_id, Subscriber())
            subscriber.in_hand -= 1
            if outcome is None or outcome.attempt is None:  # nothing was sent
                return
            limit = self._attempt_limit(subscriber)
            status = outcome.attempt["statusCode"]
            if outcome.changes["state"] == DELIVERED:
                subscriber.failures, subscriber.proven, subscriber.resting_until = 0, True, 0
            elif status is None or status >= 500 or status in RETRYABLE_CLIENT_ERRORS:  # down, slow or failing
                subscriber.failures += 1
                if outcome.changes["state"] == RETRYING:  # it rests until this delivery, its probe, is due again
                    subscriber.resting_until = max(subscriber.resting_until, outcome.changes["nextAttemptAt"])
            if self._attempt_limit(subscriber) > limit:
                self._ready.notify_all()  # its listener proved itself: more of its claims may go at once

    # -- recording outcomes ----------------------------------------------------------------------------

    def _submit(self, outcome: Outcome) -> None:
        """Queues an outcome for recording; the first thread free to record takes every queued one in one batch
        (a group commit: one bulk write for many attempts)."""
        with self._lock:
            self._outcomes.append(outcome)
        while self._recorder.acquire(blocking=False):
            try:
                while True:
                    with self._lock:
                        batch, self._outcomes = self._outcomes, []
                    if not batch:
                        break
                    self._record(batch)
            finally:
                self._recorder.release()
            with self._lock:
                if not self._outcomes:
                    return

    def _record(self, outcomes: list[Outcome]) -> None:
        """Writes a batch of outcomes, retrying while the database is unreachable until their leases end."""
        pause = 0.2
        while True:
            try:
                self._write(outcomes)
                return
            except PyMongoError as exc:
                if time.time() * 1000 + pause * 1000 >= min(o.delivery["leaseUntil"] for o in outcomes):
                    log.error("%d delivery outcome(s) not recorded (%s); their leases will expire and the "
                              "deliveries be tried again", len(outcomes), exc)
                    with self._lock:  # their events' fan-out leases end too: the next fan-out stores them
                        for o in outcomes:
                            if o.held:
                                self._held_events.pop(o.delivery["eventId"], None)
                    return
                time.sleep(pause)
                pause = min(pause * 2, 2.0)

    def _write(self, outcomes: list[Outcome]) -> None:
        now = _ms(time.time())
        stamp = schedule.utc_iso(now / 1000)
        for o in outcomes:
            subscription_id = o.delivery["subscriptionId"]
            if o.disable_reason:
                self.subscriptions.disable(subscription_id, o.disable_reason, o.attempt["at"])
                log.warning("subscription %s disabled: %s", subscription_id, o.disable_reason)
            if o.cancel_reason:
                self.deliveries.cancel_subscription(subscription_id, o.cancel_reason, now)
            if o.changes["state"] == PARKED:
                log.warning("delivery %s parked: %s", o.delivery["_id"], o.changes["reason"])
            elif o.changes["state"] == RETRYING:
                log.info("delivery %s failed (%s); attempt %d at %s", o.delivery["_id"], o.changes["reason"],
                         o.changes["failures"] + 1, schedule.utc_iso(o.changes["nextAttemptAt"] / 1000))
        def outcome(o: Outcome) -> tuple[dict, dict, dict | None]:
            return o.delivery, {**o.changes, o.stamp_field: stamp} if o.stamp_field else o.changes, o.attempt

        lost = self.deliveries.complete_many([outcome(o) for o in outcomes if not o.held], now)
        lost |= self.deliveries.store_attempted([outcome(o) for o in outcomes if o.held], now)
        self._held_stored([o.delivery for o in outcomes if o.held])
        for delivery_id in lost:
            log.warning("delivery %s: lease lost before its outcome was recorded; another dispatcher took it "
                        "over and will try again", delivery_id)
        kept = [o for o in outcomes if o.delivery["_id"] not in lost]
        metrics.deliveries_recorded(((o.changes["state"], o.attempt, _event_ms(o.delivery)) for o in kept), now)
        for o in kept:
            if o.changes["state"] == RETRYING:
                self.deliveries.defer_chain(o.delivery["subscriptionId"], o.delivery["problemId"],
                                            o.changes["nextAttemptAt"])
        if any(not (o.held and o.changes["state"] == DELIVERED) for o in kept):
            self._maybe_due.set()  # a chain's next delivery may be due now (or a retry later)
        # A held delivery was never stored, so nothing was deferred behind it (its followers waited for its event).
        self.deliveries.promote_next_of({(o.delivery["subscriptionId"], o.delivery["problemId"])
                                         for o in kept if o.changes["state"] != RETRYING and not o.held}, now)

    def _give_back(self, claimed: dict, held: bool = False) -> None:
        """Releases a claim that will not be attempted (a held one is stored, pending)."""
        self._maybe_due.set()
        try:
            if held:
                self.deliveries.store_unattempted(claimed)
                self._held_stored([claimed])
            else:
                self.deliveries.release(claimed)
        except PyMongoError as exc:
            log.warning("delivery %s not released (%s); its lease will expire", claimed["_id"], exc)
        self._attempted(claimed["subscriptionId"], None)

    def _held_stored(self, deliveries: list[dict]) -> None:
        """Held deliveries are stored now: the events whose last held delivery this was are marked done."""
        done: dict[str, list[str]] = {}  # fan-out lease token -> event ids
        with self._lock:
            for d in deliveries:
                entry = self._held_events.get(d["eventId"])
                if entry is None:
                    continue
                entry[0] -= 1
                if entry[0] <= 0:
                    del self._held_events[d["eventId"]]
                    done.setdefault(entry[1], []).append(d["eventId"])
        for token, event_ids in done.items():
            try:
                self.events.mark_done(event_ids, token)
            except PyMongoError as exc:  # the lease ends; the next fan-out finds every delivery stored
                log.warning("events %s not marked fanned out (%s); their leases will expire", event_ids, exc)

    def _release(self, item: Claimed) -> None:
        self._give_back(item.delivery, item.held)
        with self._lock:
            self._in_hand -= 1

    # -- the threads' turns: claims wait per subscription, and the subscriptions take turns ----------------

    def _enqueue(self, item: Claimed) -> None:
        with self._ready:
            subscription_id = item.delivery["subscriptionId"]
            if subscription_id not in self._waiting:
                self._waiting[subscription_id] = deque()
                self._turns.append(subscription_id)
            self._waiting[subscription_id].append(item)
            self._ready.notify()

    def _next(self) -> Claimed | None:
        """The next claim to attempt, from the first subscription in turn that may start another attempt;
        waits for one; None when stopping."""
        with self._ready:
            while not self._stopping.is_set():
                for subscription_id in self._turns:
                    subscriber = self._subscribers.setdefault(subscription_id, Subscriber())
                    if subscriber.attempting < self._attempt_limit(subscriber):
                        claims = self._waiting[subscription_id]
                        item = claims.popleft()
                        self._turns.remove(subscription_id)
                        if claims:
                            self._turns.append(subscription_id)  # its next claim waits for the others' turns
                        else:
                            del self._waiting[subscription_id]
                        subscriber.attempting += 1
                        return item
                self._ready.wait()
            return None

    def _done(self, item: Claimed) -> None:
        with self._ready:
            self._subscribers[item.delivery["subscriptionId"]].attempting -= 1
            self._in_hand -= 1
            # One attempt ended, so one more may start: one waiting thread is enough (all of them would wake and
            # go back to sleep but one, a context switch each, on every attempt).
            self._ready.notify()

    # -- threads ---------------------------------------------------------------------------------------

    def _loop(self) -> None:
        backoff = 0.0
        while not self._stopping.is_set():
            self._run_chores()
            try:
                busy = self._round()
                backoff = 0.0
            except Exception as exc:
                backoff = min(max(backoff * 2, 0.5), MAX_BACKOFF)
                if isinstance(exc, PyMongoError):
                    metrics.database_unreachable("dispatcher")
                    log.warning("dispatcher %s: database unavailable (%s); next try in %.1f s", self.owner, exc, backoff)
                else:
                    log.exception("dispatcher %s: unexpected error; next try in %.1f s", self.owner, backoff)
                self._stopping.wait(backoff)
                continue
            if not busy:
                self._wake.wait(self._idle_wait())
                self._wake.clear()

    def _rest_ended(self) -> bool:
        """Whether a subscriber's rest ended since deliveries were last looked for (its retry is due)."""
        looked = _ms(time.time() - (time.monotonic() - self._due_looked_at))
        now = _ms(time.time())
        with self._lock:
            return any(looked < s.resting_until <= now for s in self._subscribers.values())

    def _idle_wait(self) -> float:
        """The poll interval, or less when a resting subscriber's retry comes due sooner."""
        now = _ms(time.time())
        with self._lock:
            resting = [s.resting_until for s in self._subscribers.values() if s.resting_until > now]
        soonest = (min(resting) - now) / 1000 if resting else self.settings.dispatch_poll_seconds
        return max(0.01, min(self.settings.dispatch_poll_seconds, soonest))

    def _free_slots(self) -> int:
        """Claims this dispatcher may take now: up to as many waiting in the queue as being attempted
        (HAND_FACTOR), so no thread idles while the loop claims the next batch."""
        with self._lock:
            return HAND_FACTOR * self.concurrency - self._in_hand

    def _round(self) -> bool:
        # Events are looked for when a writer said so, and at every poll (writers in other processes, leases
        # of dispatchers that died); rounds that only claim and record skip the look.
        polled = time.monotonic() - self._fanned_at >= self.settings.dispatch_poll_seconds
        look = self._events_written.is_set() or polled
        if look:
            self._events_written.clear()
            if polled:
                self._fanned_at = time.monotonic()
        # Stored deliveries first: they have waited longer than the events not fanned out yet.
        slots = self._free_slots()
        claimed, busy = [], False
        if slots > 0 and (self._maybe_due.is_set()
                          or time.monotonic() - self._due_looked_at >= self.settings.dispatch_poll_seconds
                          or self._rest_ended()):
            self._maybe_due.clear()
            self._due_looked_at = time.monotonic()
            claimed, busy = self.claim_due(slots)
            if busy or len(claimed) == slots:
                self._maybe_due.set()
        for item in claimed:
            with self._lock:
                self._in_hand += 1
            if self._stopping.is_set():  # stop() may already have taken the waiting claims
                self._release(item)
            else:
                self._enqueue(item)
        stored_before = self._fanned_out_stored
        more = look and self._fan_out_round(polled)
        if more:
            self._events_written.set()  # more events are likely waiting
            return True
        # The fan-out stored deliveries after this round looked for due ones: the next round claims them.
        stored_now = self._fanned_out_stored > stored_before and self._free_slots() > 0
        return busy or (0 < slots == len(claimed)) or stored_now

    def _fan_out_round(self, polled: bool) -> bool:
        """Publishes and fans out what the free slots can take; True when events are likely left waiting that
        this dispatcher can take now. `polled`: the poll interval has passed (events stored by others, leases
        of dispatchers that died, are looked for then).

        While every slot is taken, events wait where they are (their publishing and fan-out cost nothing until
        then), but not longer than the poll interval: then one batch is published and fanned out with every
        delivery stored, so that listeners slower than the others never hold the rest back."""
        # How many subscriptions there are sizes the batches; each fan-out reads them again after the changes
        # or events it fans out (a subscription acknowledged before a change was written gets its events).
        subscribers = self.subscriptions.count_active()
        free = self._free_slots()
        if free >= max(subscribers, 1):
            self._slots_short_since = None
            limit = min(FANOUT_BATCH, free // max(subscribers, 1))
            emptied = self._publish_into_hands(free, limit, polled)
            free = self._free_slots()
            # Events stored by others (other processes, readers of event records) and ended leases: looked for
            # at each poll, and then round after round while batches come back full (a backlog).
            if emptied < limit and (polled or self._stored_events_left) and free >= max(subscribers, 1):
                batch_limit = min(FANOUT_BATCH, free // max(subscribers, 1))
                self._stored_events_left = self._into_hands(free, lambda take: self._fan_out_batch(
                    batch_limit, take)) >= batch_limit
            return emptied >= limit or self._stored_events_left
        if subscribers and not polled:
            now = time.monotonic()
            if self._slots_short_since is None:
                self._slots_short_since = now
            if now - self._slots_short_since < self.settings.dispatch_poll_seconds:
                self._events_written.set()  # looked for again once an attempt ends (it wakes the loop)
                return False
        self._slots_short_since = None
        published = self.publish()
        return self._fan_out_batch(FANOUT_BATCH).events >= FANOUT_BATCH or published >= FANOUT_BATCH

    def _work(self) -> None:
        while (item := self._next()) is not None:
            try:
                if item.delivery["leaseUntil"] - _ms(time.time()) < _ms(self.settings.delivery_timeout + 1):
                    # Waited so long that the lease could end mid-attempt and another dispatcher send it too.
                    self._give_back(item.delivery, item.held)
                else:
                    self._submit(self.attempt(item))
            except Exception:
                log.exception("delivery %s failed unexpectedly; its lease will expire", item.delivery["_id"])
            self._done(item)
            if self._events_written.is_set() or self._maybe_due.is_set():
                self._wake.set()  # the loop waits for free slots to publish, fan out or claim
