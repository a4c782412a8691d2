"""One benchmark run against one server: probe, seed the small population, run its scenarios, top up to the
large population, run the population-dependent scenarios again, then the hub scenario; one JSON document."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import quote

from tmf_server.bench import bodies
from tmf_server.bench.listeners import CREATE_EVENT, Listener
from tmf_server.bench.load import Load, Measurement, percentile
from tmf_server.bench.wire import Response, TransportError

REPORT_VERSION = 1
LISTS = ("list", "list_customer", "list_date", "list_status_priority")
INTAKE = ("intake_new", "intake_correlated")
PER_POPULATION = LISTS + INTAKE  # run at the small and at the large population
HUBS = ("hub", "hub_paced")  # run last, in this order, on whatever is stored
SCENARIOS = ("create", "get", *LISTS, "patch", *INTAKE, *HUBS)
SMALL_ORDER = (*LISTS, "get", "patch", "create", *INTAKE)  # the order within the small population
NEEDS_SEEDING = (*LISTS, "get", "patch", *INTAKE)
PAGE = 20  # the lists' limit
CORRELATED_REPORTS = 20
QUIET_POLL_SECONDS, QUIET_POLLS = 0.25, 4  # the event records must not grow for 1 s (4 polls 0.25 s apart)


@dataclass
class Config:
    base_url: str
    intake_url: str | None = None  # default: the same root + /intake
    connections: int = 16
    duration: float = 5.0  # measured seconds per scenario
    warmup: float | None = None  # default: 1 s, or half the duration when that is shorter
    small: int = 1000
    large: int = 10000
    scenarios: tuple[str, ...] = SCENARIOS
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 30.0  # per request
    hub_listeners: int = 10
    hub_wait: float = 30.0  # how long deliveries may take after the load stops
    hub_settle: float = 120.0  # how long the first create's event may take before the load starts
    hub_rate: float = 100.0  # creates per second of hub_paced
    quiet_wait: float = 120.0  # before each scenario, how long the event records may take to stop growing (0: no wait)

    @property
    def warmup_seconds(self) -> float:
        return self.warmup if self.warmup is not None else min(1.0, self.duration / 2)

    @property
    def populations(self) -> list[tuple[str, int]]:
        wanted = [("small", self.small)]
        if self.large > 0 and any(name in self.scenarios for name in PER_POPULATION):
            wanted.append(("large", self.large))
        return wanted

    def steps(self) -> int:
        """How many steps the progress bar counts: probe, seedings, scenario runs, hub."""
        count = 1
        for population, _size in self.populations:
            order = SMALL_ORDER if population == "small" else PER_POPULATION
            runs = [name for name in order if name in self.scenarios]
            count += len(runs) + (1 if any(name in NEEDS_SEEDING for name in runs) else 0)
        return count + sum(1 for name in HUBS if name in self.scenarios)


class BenchAborted(Exception):
    """The run cannot go on: the server cannot be reached, or does not answer like a TMF656 server."""


class Progress:
    """What a run reports while it goes (the command draws it as a bar on a terminal); silent by default."""

    def step(self, label: str) -> None:
        pass

    def tick(self, fraction: float, requests: int) -> None:
        pass

    def finish(self) -> None:
        pass


def _expect(*statuses: int) -> str:
    return " or ".join(str(s) for s in statuses)


def _json(response: Response):
    try:
        return json.loads(response.body)
    except ValueError:
        return None


class Bench:
    def __init__(self, config: Config, progress: Progress | None = None,
                 milestone: tuple[int, Callable[[int], None]] | None = None):
        self.config = config
        self.target = bodies.Target(config.base_url, config.intake_url or bodies.intake_url_for(config.base_url),
                                    dict(config.headers))
        self.progress = progress or Progress()
        self.milestone = milestone
        self.marker = uuid.uuid4().hex[:8]  # makes this run's event ids, customers and products unique
        self.seeded_ids: list[str] = []
        self.seeded_dates: list[str] = []
        self.measurements: list[Measurement] = []
        self.seeding: list[Measurement] = []
        self.populations: dict[str, dict] = {}
        self.load: Load | None = None

    # -- the run ---------------------------------------------------------------------------------------
    async def run(self) -> dict:
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        began = time.perf_counter()
        config = self.config
        self.load = Load(config.connections, config.timeout, self.milestone)
        try:
            self.progress.step("probe")
            stored_at_start = await self._probe()
            for population, size in config.populations:
                order = SMALL_ORDER if population == "small" else PER_POPULATION
                runs = [name for name in order if name in config.scenarios]
                if any(name in NEEDS_SEEDING for name in runs):
                    await self._seed(population, size)
                for name in runs:
                    self.progress.step(f"{name} ({population})")
                    self.measurements.append(await self._scenario(name, population))
            for name in HUBS:
                if name in config.scenarios:
                    self.progress.step(name)
                    self.measurements.append(await self._scenario(name, None))
            stored_at_end = await self._count()
        finally:
            self.load.close()
            self.progress.finish()
        return self._document(started, time.perf_counter() - began, stored_at_start, stored_at_end)

    def _document(self, started: str, seconds: float, stored_at_start, stored_at_end) -> dict:
        config = self.config
        by_key = {(m.name, m.population): m for m in self.measurements}
        ratios = {}
        for name in PER_POPULATION:
            small, large = by_key.get((name, "small")), by_key.get((name, "large"))
            if small and large and small.latency_ms(0.5) and large.latency_ms(0.5) is not None:
                ratios[name] = round(large.latency_ms(0.5) / small.latency_ms(0.5), 2)
        errors = sum(m.errors for m in self.measurements) + sum(m.errors for m in self.seeding)
        return {
            "reportVersion": REPORT_VERSION,
            "target": self.target.base_url,
            "intakeUrl": self.target.intake_url,
            "started": started,
            "seconds": round(seconds, 1),
            "options": {"connections": config.connections, "duration": config.duration,
                        "warmup": config.warmup_seconds, "small": config.small, "large": config.large,
                        "scenarios": list(config.scenarios), "hubListeners": config.hub_listeners,
                        "hubWait": config.hub_wait, "hubSettle": config.hub_settle, "hubRate": config.hub_rate,
                        "quietWait": config.quiet_wait,
                        "timeout": config.timeout},
            "populations": self.populations,
            "seeding": [m.as_json() for m in self.seeding],
            "scenarios": [m.as_json() for m in self.measurements],
            "largeSmallP50": ratios,
            "storedAtStart": stored_at_start,
            "storedAtEnd": stored_at_end,
            "reportsCreated": sum(m.created for m in [*self.seeding, *self.measurements]),
            "requestsSent": self.load.total,
            "errors": errors,
        }

    async def _scenario(self, name: str, population: str | None) -> Measurement:
        measurement = Measurement(name, population)
        measurement.extra.update(await self._quiet(measurement))
        return await getattr(self, f"_{name}")(measurement)

    # -- helpers ---------------------------------------------------------------------------------------
    async def _send(self, request) -> Response:
        return await self.load.send(request)

    async def _probe(self) -> int | None:
        request = self.target.api("GET", "/serviceProblem?limit=1")
        try:
            response = await self._send(request)
        except TransportError as exc:
            raise BenchAborted(f"cannot reach {self.target.base_url}: {exc}") from None
        if response.status not in (200, 206) or not isinstance(_json(response), list):
            raise BenchAborted(f"{request.label} answered {response.status} "
                               f"{response.body[:300].decode('utf-8', 'replace')!r}: not a TMF656 server at "
                               f"{self.target.base_url}")
        return _total(response)

    async def _count(self) -> int | None:
        try:
            response = await self._send(self.target.api("GET", "/serviceProblem?limit=1"))
        except TransportError:
            return None
        return _total(response) if response.status in (200, 206) else None

    async def _measure(self, measurement: Measurement, make, check) -> Measurement:
        return await self.load.measure(measurement, make, check, duration=self.config.duration,
                                       warmup=self.config.warmup_seconds, ticker=self.progress.tick)

    def _status_check(self, *statuses: int):
        def check(_index: int, response: Response, _arrived: float) -> str | None:
            return None if response.status in statuses else f"expected {_expect(*statuses)}, got {response.status}"
        return check

    def _list_check(self, _index: int, response: Response, _arrived: float) -> str | None:
        if response.status not in (200, 206):
            return f"expected 200 or 206, got {response.status}"
        return None if response.body[:1] == b"[" else "the answer is not a JSON array"

    @staticmethod
    def _created_check(measurement: Measurement, collect: Callable[[dict, float], None] | None = None,
                       acknowledged: bool = True):
        """A report was created: 201 and its id (counted); `acknowledged` also requires that status."""
        def check(_index: int, response: Response, arrived: float) -> str | None:
            if response.status != 201:
                return f"expected 201, got {response.status}"
            measurement.created += 1
            created = _json(response)
            if not isinstance(created, dict) or not isinstance(created.get("id"), str):
                return "the 201 body has no id"
            if acknowledged and created.get("status") != "acknowledged":
                return f"created in status {created.get('status')!r}, not acknowledged"
            if collect:
                collect(created, arrived)
            return None
        return check

    # -- population ------------------------------------------------------------------------------------
    async def _seed(self, population: str, size: int) -> None:
        """Tops the stored reports up to `size` through POST /serviceProblem on every connection."""
        self.progress.step(f"seed {population} population ({size:,})")
        before = await self._count()
        wanted = max(0, size - (before or 0))
        offset = len(self.seeded_ids)  # seed numbers continue, so customers and priorities stay evenly spread
        marker = self.marker

        def make(index: int):
            return self.target.api("POST", "/serviceProblem", bodies.seeded_report(offset + index, marker))

        def collect(created: dict, _arrived: float) -> None:
            self.seeded_ids.append(created["id"])
            if isinstance(created.get("creationDate"), str):
                self.seeded_dates.append(created["creationDate"])

        seeding = Measurement("seed", population)
        seeded_before = len(self.seeded_ids)
        if wanted:
            await self.load.run_count(seeding, make, self._created_check(seeding, collect, acknowledged=False),
                                      wanted, ticker=self.progress.tick)
        self.seeding.append(seeding)
        self.populations[population] = {"requested": size, "storedBefore": before, "seeded": len(self.seeded_ids)
                                        - seeded_before, "stored": await self._count()}

    async def _ids(self) -> list[str]:
        if self.seeded_ids:
            return self.seeded_ids
        response = await self._send(self.target.api("GET", f"/serviceProblem?fields=id&limit={PAGE * 50}"))
        found = _json(response) if response.status in (200, 206) else None
        return [item["id"] for item in found or [] if isinstance(item, dict) and isinstance(item.get("id"), str)]

    async def _middle_instant(self) -> str | None:
        """The creationDate in the middle of the seeded population (else of the stored one, by a sorted list)."""
        if self.seeded_dates:
            ordered = sorted(self.seeded_dates)
            return ordered[len(ordered) // 2]
        total = await self._count() or 0
        response = await self._send(self.target.api(
            "GET", f"/serviceProblem?fields=creationDate&sort=creationDate&offset={total // 2}&limit=1"))
        found = _json(response) if response.status in (200, 206) else None
        return found[0].get("creationDate") if found and isinstance(found[0], dict) else None

    # -- scenarios -------------------------------------------------------------------------------------
    async def _create(self, measurement: Measurement) -> Measurement:
        marker = self.marker
        return await self._measure(
            measurement,
            lambda i: self.target.api("POST", "/serviceProblem", bodies.report(i, f"bench {marker} create {i}")),
            self._created_check(measurement))

    async def _get(self, measurement: Measurement) -> Measurement:
        ids = await self._ids()
        if not ids:
            measurement.skipped = "no report ids to read (nothing seeded, and the list of ids was empty)"
            return measurement
        return await self._measure(
            measurement, lambda i: self.target.api("GET", f"/serviceProblem/{ids[i % len(ids)]}"),
            self._status_check(200))

    async def _list(self, measurement: Measurement) -> Measurement:
        return await self._measure(measurement, lambda _i: self.target.api("GET", f"/serviceProblem?limit={PAGE}"),
                                   self._list_check)

    async def _list_customer(self, measurement: Measurement) -> Measurement:
        return await self._measure(
            measurement,
            lambda i: self.target.api("GET", f"/serviceProblem?relatedParty.id=C{i % bodies.CUSTOMERS}&limit={PAGE}"),
            self._list_check)

    async def _list_date(self, measurement: Measurement) -> Measurement:
        instant = await self._middle_instant()
        if instant is None:
            measurement.skipped = "no creationDate found to filter on"
            return measurement
        measurement.extra["creationDateGt"] = instant
        target = f"/serviceProblem?creationDate.gt={quote(instant, safe='')}&limit={PAGE}"
        return await self._measure(measurement, lambda _i: self.target.api("GET", target), self._list_check)

    async def _list_status_priority(self, measurement: Measurement) -> Measurement:
        target = f"/serviceProblem?status=acknowledged&priority.lte=2&limit={PAGE}"
        return await self._measure(measurement, lambda _i: self.target.api("GET", target), self._list_check)

    async def _patch(self, measurement: Measurement) -> Measurement:
        ids = await self._ids()
        if not ids:
            measurement.skipped = "no report ids to patch (nothing seeded, and the list of ids was empty)"
            return measurement
        marker = self.marker

        def make(i: int):
            return self.target.api("PATCH", f"/serviceProblem/{ids[i % len(ids)]}",
                                   {"description": f"Throughput still far below the contracted rate (bench {marker} "
                                                   f"patch {i})"}, content_type=bodies.MERGE_PATCH)
        return await self._measure(measurement, make, self._status_check(200))

    async def _intake_new(self, measurement: Measurement) -> Measurement:
        prefix = f"bench-{self.marker}-{measurement.population}-new"

        def make(i: int):
            return self.target.intake("POST", "/troubleTicketEvent", bodies.ticket_event(
                event_id=f"{prefix}-{i}", ticket_id=f"TT-{prefix}-{i}", customer=f"N-{prefix}-{i}",
                product=f"prod-{prefix}-{i}"))

        def check(_index: int, response: Response, _arrived: float) -> str | None:
            if response.status != 201:
                return f"expected 201, got {response.status}"
            measurement.created += 1
            record = _json(response)
            outcome = record.get("outcome") if isinstance(record, dict) else None
            return None if outcome == "created" else f"outcome {outcome!r}, not created"
        return await self._measure(measurement, make, check)

    async def _intake_correlated(self, measurement: Measurement) -> Measurement:
        """20 open reports (one customer, product and metric each) first; then notifications about them."""
        prefix = f"bench-{self.marker}-{measurement.population}-corr"
        fixed: list[str | None] = [None] * CORRELATED_REPORTS

        def notification(i: int):
            k = i % CORRELATED_REPORTS
            return self.target.intake("POST", "/troubleTicketEvent", bodies.ticket_event(
                event_id=f"{prefix}-{i}", ticket_id=f"TT-{prefix}-{i}", customer=f"K-{prefix}-{k}",
                product=f"prod-{prefix}-{k}"))

        for k in range(CORRELATED_REPORTS):
            request = notification(k)
            try:
                response = await self._send(request)
            except TransportError as exc:
                measurement.error(request, f"no answer: {exc}", None)
                continue
            record = _json(response)
            if response.status == 201:
                measurement.created += 1
            if response.status != 201 or not isinstance(record, dict) or record.get("outcome") != "created":
                measurement.error(request, f"setting up the open report: expected 201 created, got "
                                           f"{response.status}", response)
                continue
            fixed[k] = (record.get("serviceProblem") or {}).get("id")
        if None in fixed:
            measurement.skipped = "the open reports could not be created (see the first error)"
            return measurement
        measurement.extra["openReports"] = CORRELATED_REPORTS

        def check(index: int, response: Response, _arrived: float) -> str | None:
            if response.status != 200:
                return f"expected 200, got {response.status}"
            record = _json(response)
            if not isinstance(record, dict) or record.get("outcome") != "merged":
                return f"outcome {record.get('outcome') if isinstance(record, dict) else None!r}, not merged"
            problem = (record.get("serviceProblem") or {}).get("id")
            expected = fixed[index % CORRELATED_REPORTS]
            return None if problem == expected else f"merged into {problem}, not into the open report {expected}"
        # the first CORRELATED_REPORTS event numbers created the open reports; the load continues after them
        return await self._measure(measurement, lambda i: notification(CORRELATED_REPORTS + i),
                                   lambda i, r, t: check(CORRELATED_REPORTS + i, r, t))

    async def _quiet(self, measurement: Measurement) -> dict:
        """Before a scenario, a wait (at most --quiet-wait) until the stored event records stop growing
        (X-Total-Count of GET /serviceProblemEventRecord unchanged for 1 s). A server that publishes events after
        answering (this one does, from an outbox) has then done the work the earlier scenarios and the seeding
        left, so that it is not measured as part of this scenario; before the hub scenario it happens while no
        subscription makes it slower."""
        began = time.perf_counter()
        if self.config.quiet_wait <= 0:
            return {}
        deadline = began + self.config.quiet_wait
        counts: list[int] = []
        while time.perf_counter() < deadline:
            try:
                response = await self._send(self.target.api("GET", "/serviceProblemEventRecord?limit=1"))
            except TransportError:
                break
            count = _total(response) if response.status in (200, 206) else None
            if count is None:  # no event records to watch: nothing to wait for
                return {"quiet": None, "quietSeconds": round(time.perf_counter() - began, 2)}
            counts.append(count)
            if len(counts) > QUIET_POLLS and counts[-1] == counts[-1 - QUIET_POLLS]:
                return {"quiet": True, "quietSeconds": round(time.perf_counter() - began, 2)}
            self.progress.tick(0.0, measurement.sent)
            await asyncio.sleep(QUIET_POLL_SECONDS)
        return {"quiet": False, "quietSeconds": round(time.perf_counter() - began, 2)}

    async def _settle(self, measurement: Measurement, listeners: list[Listener], reason: str) -> dict:
        """One create, then a wait until its event reached every listener (at most --hub-settle): the events of the
        earlier scenarios are delivered (or found to have no subscriber) before the load, which then measures
        delivery keeping up with it rather than a backlog it inherited."""
        description = f"bench {self.marker} {measurement.name} settle"
        request = self.target.api("POST", "/serviceProblem", bodies.report(0, description, reason=reason))
        began = time.perf_counter()
        try:
            response = await self._send(request)
        except TransportError as exc:
            measurement.error(request, f"no answer: {exc}", None)
            return {"settled": False, "settleSeconds": 0.0, "settleLimitSeconds": self.config.hub_settle}
        body = _json(response)
        problem = body.get("id") if response.status == 201 and isinstance(body, dict) else None
        if problem is None:
            measurement.error(request, f"expected 201 with an id, got {response.status}", response)
            return {"settled": False, "settleSeconds": 0.0, "settleLimitSeconds": self.config.hub_settle}
        measurement.created += 1
        deadline = began + self.config.hub_settle
        while not all(problem in listener.arrivals for listener in listeners) and time.perf_counter() < deadline:
            self.progress.tick(0.0, measurement.sent)
            await asyncio.sleep(0.05)
        return {"settled": all(problem in listener.arrivals for listener in listeners),
                "settleSeconds": round(time.perf_counter() - began, 2), "settleLimitSeconds": self.config.hub_settle}

    async def _hub_paced(self, measurement: Measurement) -> Measurement:
        """The hub scenario with creates paced at --hub-rate per second: whether delivery keeps up at that rate."""
        measurement.extra["pacedRate"] = self.config.hub_rate
        return await self._hub(measurement, self.config.hub_rate)

    async def _hub(self, measurement: Measurement, rate: float | None = None) -> Measurement:
        """Listeners subscribed through POST /hub to the create events of this scenario's reports; creates at full
        speed (or `rate` per second); each create event's lag at each listener."""
        config = self.config
        # The scenario's reports carry this reason and its subscriptions select it, so that events of earlier
        # scenarios the server publishes late are not delivered to its listeners.
        reason = f"bench-{measurement.name}-{self.marker}"
        hub_query = f"eventType={CREATE_EVENT}&event.serviceProblem.reason={reason}"
        listeners = [await Listener().start() for _ in range(config.hub_listeners)]
        subscriptions: list[str] = []
        try:
            for listener in listeners:
                request = self.target.api("POST", "/hub", {"callback": listener.url, "query": hub_query})
                try:
                    response = await self._send(request)
                except TransportError as exc:
                    measurement.skipped = f"POST /hub got no answer: {exc}"
                    return measurement
                body = _json(response)
                if response.status != 201 or not isinstance(body, dict) or not body.get("id"):
                    measurement.skipped = _refusal(response, body)
                    return measurement
                subscriptions.append(body["id"])
            prefix = f"bench {self.marker} {measurement.name}"
            measurement.extra.update(await self._settle(measurement, listeners, reason))
            created: dict[str, float] = {}
            await self.load.measure(
                measurement,
                lambda i: self.target.api("POST", "/serviceProblem", bodies.report(i, f"{prefix} {i}", reason=reason)),
                self._created_check(measurement, lambda report, arrived: created.__setitem__(report["id"], arrived)),
                duration=config.duration, warmup=config.warmup_seconds, ticker=self.progress.tick, rate=rate)
            load_stopped = time.perf_counter()
            expected = len(created) * len(listeners)

            def delivered() -> int:
                return sum(1 for listener in listeners for problem in listener.arrivals if problem in created)

            deadline = load_stopped + config.hub_wait
            while delivered() < expected and time.perf_counter() < deadline:
                self.progress.tick(1.0, measurement.sent)
                await asyncio.sleep(0.05)
            lags = sorted(arrived - created[problem] for listener in listeners
                          for problem, arrived in listener.arrivals.items() if problem in created)
            last = max((arrived for listener in listeners for problem, arrived in listener.arrivals.items()
                        if problem in created), default=load_stopped)
            count = delivered()
            measurement.extra.update({
                "listeners": len(listeners), "creates": len(created), "expected": expected, "delivered": count,
                "duplicates": sum(listener.duplicates for listener in listeners),
                "lagP50Ms": _ms(percentile(lags, 0.50)), "lagP99Ms": _ms(percentile(lags, 0.99)),
                "lagMaxMs": _ms(lags[-1] if lags else None),
                "allDelivered": count == expected, "waitLimitSeconds": config.hub_wait,
                "lastArrivalAfterLoadSeconds": round(max(0.0, last - load_stopped), 2),
            })
            return measurement
        finally:
            for subscription in subscriptions:
                try:
                    await self._send(self.target.api("DELETE", f"/hub/{subscription}"))
                except TransportError:
                    pass
            for listener in listeners:
                await listener.close()


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _total(response: Response) -> int | None:
    try:
        return int(response.header("x-total-count"))
    except (TypeError, ValueError):
        return None


def _refusal(response: Response, body) -> str:
    message = body.get("message") if isinstance(body, dict) else response.body[:300].decode("utf-8", "replace")
    reason = f"the server refused the subscription (POST /hub answered {response.status}: {message})"
    if response.status == 400 and ("loopback" in str(message).lower() or "callbackNotAllowed" in str(body)):
        reason += "; the listeners are on 127.0.0.1: run the server with TMF_CALLBACK_ALLOW=loopback"
    return reason
