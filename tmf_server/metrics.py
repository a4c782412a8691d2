"""Prometheus metrics: every definition, the one-line recording calls the other modules make, and the exposition.

Counters and histograms are kept by the process that observes them. Under `tmf-server serve --workers N` and
`tmf-server worker` they live in prometheus_client's multiprocess files: the command sets PROMETHEUS_MULTIPROC_DIR
(a private temporary folder, `tmf_server.cli`) before anything imports prometheus_client, and a scrape
sums the files of every process. Without it (tests that build a Dispatcher in-process) they stay in memory.

What the database already knows (outbox backlog, deliveries retrying and parked, subscriptions) is not counted
in the processes: `StoreCollector` asks the owning repositories at scrape time, with counts the indexes answer,
so the numbers are right whichever process or machine wrote them.
"""
from __future__ import annotations

import logging
import os
import sys
import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST as TEXT_CONTENT_TYPE
from prometheus_client.multiprocess import MultiProcessCollector

from tmf_server import __version__

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SCRAPE_LIMIT = 1000  # documents read at most to find the oldest unpublished event

# Not registered anywhere at import: `registry()` collects them (in-process) or their files (multiprocess).
_OWN = CollectorRegistry()

HTTP_REQUESTS = Counter("tmf_http_requests", "HTTP requests answered, by OpenAPI operationId, method and status",
                        ["operation", "method", "status"], registry=_OWN)
HTTP_DURATION = Histogram("tmf_http_request_duration_seconds", "Time from request to complete answer, by operationId",
                          ["operation"], registry=_OWN,
                          buckets=(.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
EVENTS_PUBLISHED = Counter("tmf_events_published", "ServiceProblem events moved from the outbox to the event store, "
                           "by eventType", ["event_type"], registry=_OWN)
DELIVERY_OUTCOMES = Counter("tmf_deliveries", "Delivery attempts and decisions recorded, by the delivery's resulting "
                            "state (delivered, retrying, parked, cancelled)", ["outcome"], registry=_OWN)
DELIVERY_DURATION = Histogram("tmf_delivery_attempt_duration_seconds", "Duration of webhook POST attempts",
                              ["outcome"], registry=_OWN,
                              buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
INTAKE_EVENTS = Counter("tmf_intake_events", "Events received by the intake, by source and outcome",
                        ["source", "outcome"], registry=_OWN)
DATABASE_ERRORS = Counter("tmf_database_errors", "Times the database could not be reached, by where it was noticed "
                          "(api: a request answered 503; dispatcher: a delivery round)", ["component"],
                          registry=_OWN)


# -- recording (one-line calls from the modules that observe) ----------------------------------------------


def http_request(operation: str, method: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(operation, method, str(status)).inc()
    HTTP_DURATION.labels(operation).observe(seconds)


def events_published(events: list[dict]) -> None:
    for event in events:
        EVENTS_PUBLISHED.labels(event.get("eventType") or "unknown").inc()


def deliveries_recorded(outcomes) -> None:
    """Delivery outcomes were recorded: (the delivery's new state, the HTTP attempt behind it or None) each."""
    for state, attempt in outcomes:
        DELIVERY_OUTCOMES.labels(state).inc()
        if attempt is not None:
            DELIVERY_DURATION.labels(state).observe(attempt["durationMs"] / 1000)


def intake_received(source: str, outcome: str) -> None:
    INTAKE_EVENTS.labels(source, outcome).inc()


def database_unreachable(component: str) -> None:
    DATABASE_ERRORS.labels(component).inc()


# -- what the database knows, read at scrape time ----------------------------------------------------------


class StoreCollector:
    """Gauges read from the database through the repositories that own each collection, once per scrape."""

    def __init__(self, db, clock=time.time):
        from tmf_server.events.deliveries import PARKED, RETRYING, DeliveryStore
        from tmf_server.events.outbox import Outbox
        from tmf_server.events.sources import EventSource, Subscriptions

        self.outbox, self.events = Outbox(db), EventSource(db)
        self.deliveries, self.subscriptions = DeliveryStore(db), Subscriptions(db)
        self.states = (RETRYING, PARKED)
        self.clock = clock

    def collect(self):
        info = GaugeMetricFamily("tmf_server_info", "The server's version and Python", labels=["version", "python"])
        info.add_metric([__version__, ".".join(map(str, sys.version_info[:3]))], 1)
        yield info
        up = GaugeMetricFamily("tmf_database_up", "1 if the database answered this scrape's queries, else 0")
        try:
            gauges = list(self._from_store())
        except Exception as exc:  # a scrape must still answer: the failure is itself the signal
            log.warning("metrics: database not read: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from gauges

    def _from_store(self):
        now_ms = self.clock() * 1000
        documents, outbox_oldest = self.outbox.backlog(SCRAPE_LIMIT)
        awaiting, fanout_oldest = self.events.fanout_backlog(SCRAPE_LIMIT)
        yield GaugeMetricFamily("tmf_outbox_pending", "Changed reports whose events are not yet published",
                                value=documents)
        yield GaugeMetricFamily("tmf_events_awaiting_fanout", "Published events not yet fanned out to subscriptions",
                                value=awaiting)
        oldest = min((t for t in (outbox_oldest, fanout_oldest) if t is not None), default=None)
        yield GaugeMetricFamily("tmf_outbox_oldest_age_seconds",
                                "Age of the oldest event not yet published or fanned out (0 when none waits)",
                                value=max(0.0, (now_ms - oldest) / 1000) if oldest is not None else 0.0)
        deliveries = GaugeMetricFamily("tmf_deliveries_in_state", "Deliveries now in a state that needs watching",
                                       labels=["state"])
        for state in self.states:
            deliveries.add_metric([state], self.deliveries.count({"state": state}))
        yield deliveries
        active, inactive = self.subscriptions.counts()
        subscriptions = GaugeMetricFamily("tmf_subscriptions", "Hub subscriptions, active or disabled (410 Gone)",
                                          labels=["state"])
        subscriptions.add_metric(["active"], active)
        subscriptions.add_metric(["disabled"], inactive)
        yield subscriptions


def registry(db=None) -> CollectorRegistry:
    """What a scrape reads: every process's counters (multiprocess mode) or this one's, and the store's gauges."""
    scraped = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(scraped)
    else:
        scraped.register(_OwnMetrics())
    if db is not None:
        scraped.register(StoreCollector(db))
    return scraped


class _OwnMetrics:
    def collect(self):
        return _OWN.collect()


def exposition(db=None) -> tuple[bytes, str]:
    """The Prometheus text exposition and its content type."""
    return generate_latest(registry(db)), TEXT_CONTENT_TYPE
