"""Prometheus metrics: every definition, the one-line recording calls the other modules make, and the exposition.

Counters and histograms are kept by the process that observes them. Under `tmf-server serve --workers N` and
`tmf-server worker` they live in prometheus_client's multiprocess files: the command sets PROMETHEUS_MULTIPROC_DIR
(a private temporary folder, `tmf_server.cli`) before anything imports prometheus_client, and a scrape
sums the files of every process. Without it (tests that build a Dispatcher in-process) they stay in memory.

What the database already knows (outbox backlog, deliveries retrying and parked, subscriptions) is not counted
in the processes: `tmf_server.events.gauges.StoreGauges` asks the owning repositories at scrape time, with counts
the indexes answer, so the numbers are right whichever process or machine wrote them. It lives beside those
repositories, so that this module, which every layer records into, imports none of them.
"""
from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST as TEXT_CONTENT_TYPE
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

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
DELIVERY_LAG = Histogram("tmf_delivery_lag_seconds", "Time from a change (its event's eventTime) to the listener's "
                         "acknowledgement of its delivery, retries included", registry=_OWN,
                         buckets=(.05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 300, 1800, 7200, 36000, 86400))
INTAKE_EVENTS = Counter("tmf_intake_events", "Events received by the intake, by source and outcome",
                        ["source", "outcome"], registry=_OWN)
DATABASE_ERRORS = Counter("tmf_database_errors", "Times the database could not be reached, by where it was noticed "
                          "(api: a request answered 503; dispatcher: a delivery round)", ["component"],
                          registry=_OWN)


# -- recording (one-line calls from the modules that observe) ----------------------------------------------


_HTTP_SERIES: dict[tuple[str, str, int], tuple] = {}  # the labelled children, looked up once per combination


def http_request(operation: str, method: str, status: int, seconds: float) -> None:
    series = _HTTP_SERIES.get((operation, method, status))
    if series is None:  # labels() takes a lock and checks its values on every call
        series = _HTTP_SERIES.setdefault((operation, method, status), (
            HTTP_REQUESTS.labels(operation, method, str(status)), HTTP_DURATION.labels(operation)))
    series[0].inc()
    series[1].observe(seconds)


def events_published(events: list[dict]) -> None:
    for event in events:
        EVENTS_PUBLISHED.labels(event.get("eventType") or "unknown").inc()


def deliveries_recorded(outcomes, now_ms: int) -> None:
    """Delivery outcomes were recorded at `now_ms`: (the delivery's new state, the HTTP attempt behind it or None,
    its event's time in epoch ms or None) each."""
    for state, attempt, event_ms in outcomes:
        DELIVERY_OUTCOMES.labels(state).inc()
        if attempt is not None:
            DELIVERY_DURATION.labels(state).observe(attempt["durationMs"] / 1000)
        if state == "delivered" and event_ms is not None:
            DELIVERY_LAG.observe(max(now_ms - event_ms, 0) / 1000)


def intake_received(source: str, outcome: str) -> None:
    INTAKE_EVENTS.labels(source, outcome).inc()


def database_unreachable(component: str) -> None:
    DATABASE_ERRORS.labels(component).inc()


def registry(store_gauges=None) -> CollectorRegistry:
    """What a scrape reads: every process's counters (multiprocess mode) or this one's, and the store's gauges
    (a collector such as `events.gauges.StoreGauges`, built by the caller)."""
    scraped = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(scraped)
    else:
        scraped.register(_OwnMetrics())
    if store_gauges is not None:
        scraped.register(store_gauges)
    return scraped


class _OwnMetrics:
    def collect(self):
        return _OWN.collect()


def exposition(store_gauges=None) -> tuple[bytes, str]:
    """The Prometheus text exposition and its content type."""
    return generate_latest(registry(store_gauges)), TEXT_CONTENT_TYPE
