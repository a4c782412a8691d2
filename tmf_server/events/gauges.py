"""What the database knows (outbox backlog, deliveries retrying and parked, subscriptions), read at scrape time.

A Prometheus collector that `metrics.registry` registers when the caller (the app's /metrics, the worker's metrics
port) hands it one: the counts come from the repositories that own each collection, so they are right whichever
process or machine wrote the documents.
"""
from __future__ import annotations

import logging
import sys
import time

from prometheus_client.core import GaugeMetricFamily

from tmf_server import __version__
from tmf_server.events.deliveries import PARKED, RETRYING, DeliveryStore
from tmf_server.events.outbox import Outbox
from tmf_server.events.sources import EventSource
from tmf_server.events.subscriptions import SubscriptionRepository

log = logging.getLogger(__name__)

SCRAPE_LIMIT = 1000  # documents read at most to find the oldest unpublished event


class StoreGauges:
    """Gauges read from the database through the repositories that own each collection, once per scrape."""

    def __init__(self, db, clock=time.time):
        self.outbox, self.events = Outbox(db), EventSource(db)
        self.deliveries, self.subscriptions = DeliveryStore(db), SubscriptionRepository(db)
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
