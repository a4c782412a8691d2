"""The one place the stores and services are built and connected: the app (tmf_server/app.py), the worker
processes (tmf_server/workers.py) and the tests that need the server's parts without its HTTP side.

Handlers get what they need from `Services` (tmf_server/api/context.py hands it to them); none of them sees the
database itself. `Services.ping` and `Services.store_gauges` are the two uses of the database outside the
repositories: the readiness probe and the metrics scrape, both answered by the app, not by handlers.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from pymongo.errors import PyMongoError

from tmf_server.events.deliveries import DeliveryStore
from tmf_server.events.dispatcher import Dispatcher
from tmf_server.events.dispatcher import ensure_indexes as ensure_event_indexes
from tmf_server.events.gauges import StoreGauges
from tmf_server.events.outbox import Outbox
from tmf_server.events.sources import EventRecords
from tmf_server.events.subscriptions import EVENT_ENVELOPE_ROOT, SubscriptionRepository, SubscriptionService
from tmf_server.intake.repository import ensure_indexes as ensure_intake_indexes
from tmf_server.intake.service import IntakeService
from tmf_server.problems.repository import ServiceProblemRepository, ensure_indexes, problem_catalog
from tmf_server.problems.rules import ServiceProblemRules
from tmf_server.problems.service import ServiceProblemService, utc_now
from tmf_server.problems.tasks import ProblemTasks
from tmf_server.query.catalog import AttributeCatalog
from tmf_server.settings import Settings
from tmf_server.store.database import connect
from tmf_server.store.idempotency import IdempotencyKeys
from tmf_server.store.idempotency import ensure_indexes as ensure_idempotency_indexes

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    problems: ServiceProblemService
    problem_repository: ServiceProblemRepository
    problem_catalog: AttributeCatalog
    tasks: ProblemTasks
    records: EventRecords
    record_catalog: AttributeCatalog
    subscriptions: SubscriptionService
    subscription_catalog: AttributeCatalog
    deliveries: DeliveryStore
    intake: IntakeService
    idempotency: IdempotencyKeys
    store_gauges: StoreGauges  # what /metrics reads from the database at scrape time
    ping: Callable[[], object]  # the readiness probe's question to the database
    close: Callable[[], None]  # closes the database client: once the dispatcher (if any) has stopped
    dispatcher: Dispatcher | None = None  # this process's, when it runs one


def build_services(settings: Settings, spec: dict, *, dispatcher: bool = False, dispatcher_name: str | None = None,
                   actor: Callable[[], str | None] | None = None) -> Services:
    """Connects to `settings.mongodb_uri`, ensures every collection's indexes and builds the services.

    `dispatcher`: this process also runs an event dispatcher (not started here: `Services.dispatcher.start()`);
    writes then wake it instead of publishing their events themselves. `actor`: who makes a change (the request's
    user), recorded in tracking records and events."""
    if not settings.mongodb_uri:
        raise ValueError("build_services needs settings.mongodb_uri; `tmf-server serve` starts the embedded engine")
    client = connect(settings.mongodb_uri, settings)
    db = client[settings.database]
    try:
        ensure_indexes(db)
        ensure_event_indexes(db)
        ensure_intake_indexes(db)
        ensure_idempotency_indexes(db)
    except PyMongoError as exc:  # the server still starts; requests answer 503 until the database is back
        log.warning("indexes not ensured, database unreachable: %s", exc)
    running = Dispatcher(db, settings, name=dispatcher_name) if dispatcher else None
    catalog = problem_catalog(spec)
    outbox = Outbox(db, publisher=running.written if running else None)
    repository = ServiceProblemRepository(db, outbox)
    problems = ServiceProblemService(repository, ServiceProblemRules(spec, catalog), settings, actor=actor)
    # Hub queries address the notification clients receive, stored under `notification` in each event.
    event_catalog = AttributeCatalog(spec, "ServiceProblemAttributeValueChangeEvent", stored_under=EVENT_ENVELOPE_ROOT)
    services = Services(
        settings=settings, problems=problems, problem_repository=repository, problem_catalog=catalog,
        tasks=ProblemTasks(problems),
        records=EventRecords(db, outbox), record_catalog=AttributeCatalog(spec, "ServiceProblemEventRecord"),
        subscriptions=SubscriptionService(SubscriptionRepository(db), event_catalog, settings.callback_allow, utc_now),
        subscription_catalog=AttributeCatalog(spec, "EventSubscription"), deliveries=DeliveryStore(db),
        intake=IntakeService(db, problems, settings, spec),
        idempotency=IdempotencyKeys(db, settings.idempotency_ttl_seconds),
        store_gauges=StoreGauges(db), ping=lambda: db.command("ping"), close=client.close, dispatcher=running,
    )
    if running:  # records a crash left `received` are finished from the background loop (docs/intake.md)
        running.every(settings.intake_sweep_seconds, services.intake.sweep)
    return services

