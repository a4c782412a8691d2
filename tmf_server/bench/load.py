"""N connections, each a coroutine sending requests back to back; timing, counting and checking the answers."""
from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tmf_server.bench.wire import Connection, Origin, Response, TransportError

BODY_SHOWN = 600  # characters of an unexpected answer kept in the report
PAUSE_AFTER_TRANSPORT_ERROR = 0.1  # seconds, so that a server that is down is not hammered in a tight loop


@dataclass(frozen=True)
class Request:
    origin: Origin
    method: str
    data: bytes  # the encoded request
    label: str  # method and target, for error reports


# (index of the request, the answer, when it arrived) -> None when it is the expected answer, else why not
Check = Callable[[int, Response, float], "str | None"]
Make = Callable[[int], Request]
Ticker = Callable[[float, int], None]  # (fraction done, requests so far)


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * fraction // 1))  # ceil(n * fraction), at least 1
    return sorted_values[int(rank) - 1]


@dataclass
class Measurement:
    """One scenario at one population: the requests answered within the measured window, their latencies, and
    the unexpected answers among all its requests (warm-up and the requests in flight at the end included)."""

    name: str
    population: str | None
    seconds: float = 0.0
    requests: int = 0
    sent: int = 0
    errors: int = 0
    first_error: dict | None = None
    created: int = 0  # reports the scenario created (a 201 of POST /serviceProblem, or an intake `created`)
    latencies: list[float] = field(default_factory=list, repr=False)  # seconds, measured window only
    extra: dict = field(default_factory=dict)
    skipped: str | None = None

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def latency_ms(self, fraction: float) -> float | None:
        value = percentile(sorted(self.latencies), fraction)
        return None if value is None else value * 1000

    def error(self, request: Request, why: str, response: Response | None) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = {"request": request.label, "reason": why,
                                "status": response.status if response else None,
                                "body": _shorten(response.body) if response else None}

    def as_json(self) -> dict:
        document = {"name": self.name, "population": self.population, "requests": self.requests,
                    "seconds": round(self.seconds, 3), "requestsPerSecond": round(self.rate, 1),
                    "p50Ms": _round(self.latency_ms(0.50)), "p99Ms": _round(self.latency_ms(0.99)),
                    "errors": self.errors, "firstError": self.first_error, "sent": self.sent,
                    "reportsCreated": self.created}
        if self.skipped:
            document["skipped"] = self.skipped
        document.update(self.extra)
        return document


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _shorten(body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    return text if len(text) <= BODY_SHOWN else text[:BODY_SHOWN] + f"... ({len(text) - BODY_SHOWN} more)"


class Load:
    """`connections` slots; each holds one keep-alive connection per origin it talks to."""

    def __init__(self, connections: int, timeout: float = 30.0,
                 milestone: tuple[int, Callable[[int], None]] | None = None):
        self.timeout = timeout
        self._slots: list[dict[Origin, Connection]] = [{} for _ in range(connections)]
        self.total = 0  # every request sent by this load, seeding and set-up included
        self._milestone = milestone

    @property
    def connections(self) -> int:
        return len(self._slots)

    def close(self) -> None:
        for slot in self._slots:
            for connection in slot.values():
                connection.close()
            slot.clear()

    async def send(self, request: Request, slot: int = 0) -> Response:
        connections = self._slots[slot]
        connection = connections.get(request.origin)
        if connection is None:
            connection = connections[request.origin] = Connection(request.origin, self.timeout)
        self.total += 1
        if self._milestone and self.total == self._milestone[0]:
            self._milestone[1](self.total)
        return await connection.send(request.data, request.method)

    async def measure(self, measurement: Measurement, make: Make, check: Check, *, duration: float,
                      warmup: float, ticker: Ticker | None = None, rate: float | None = None) -> Measurement:
        """Requests back to back on every connection for warmup + duration seconds; the window after the
        warm-up is measured: the answers that arrived in it and their latencies (a request sent during the
        warm-up and answered in the window counts, so a scenario slower than the window still has figures).
        No request is sent after the window; those still in flight are awaited, checked, but not counted.
        `rate`: requests per second in all, paced on a fixed schedule (request i is not sent before i / rate
        seconds); a connection still waiting for an answer sends its next request late."""
        counter = itertools.count()
        started = time.perf_counter()
        window_start, window_end = started + warmup, started + warmup + duration

        async def connection_loop(slot: int) -> None:
            perf_counter = time.perf_counter
            while True:
                index = next(counter)
                if rate:
                    await asyncio.sleep(max(0.0, started + index / rate - perf_counter()))
                began = perf_counter()
                if began >= window_end:
                    return
                done = await self._exchange(measurement, make, check, index, slot)
                if done is None:
                    continue
                if window_start <= done <= window_end:
                    measurement.requests += 1
                    measurement.latencies.append(done - began)

        await self._with_ticker(connection_loop, ticker,
                                lambda: (min(1.0, (time.perf_counter() - started) / (warmup + duration)),
                                         measurement.sent))
        measurement.seconds = duration
        return measurement

    async def run_count(self, measurement: Measurement, make: Make, check: Check, count: int, *,
                        ticker: Ticker | None = None) -> Measurement:
        """Exactly `count` requests spread over the connections (seeding); all of them are measured."""
        counter = itertools.count()
        started = time.perf_counter()

        async def connection_loop(slot: int) -> None:
            perf_counter = time.perf_counter
            while (index := next(counter)) < count:
                began = perf_counter()
                done = await self._exchange(measurement, make, check, index, slot)
                if done is None:
                    continue
                measurement.requests += 1
                measurement.latencies.append(done - began)

        await self._with_ticker(connection_loop, ticker,
                                lambda: (min(1.0, measurement.sent / max(count, 1)), measurement.sent))
        measurement.seconds = time.perf_counter() - started
        return measurement

    async def _exchange(self, measurement: Measurement, make: Make, check: Check, index: int,
                        slot: int) -> float | None:
        """Sends request `index` on connection `slot` and checks its answer (unexpected ones are recorded);
        returns when the answer ended, or None when none came."""
        request = make(index)
        measurement.sent += 1
        try:
            response = await self.send(request, slot)
        except TransportError as exc:
            measurement.error(request, f"no answer: {exc}", None)
            await asyncio.sleep(PAUSE_AFTER_TRANSPORT_ERROR)
            return None
        done = time.perf_counter()
        why = check(index, response, done)
        if why is not None:
            measurement.error(request, why, response)
        return done

    async def _with_ticker(self, connection_loop, ticker: Ticker | None, state) -> None:
        loops = asyncio.gather(*(connection_loop(slot) for slot in range(self.connections)))
        if ticker is None:
            await loops
            return

        async def tick() -> None:
            while True:
                ticker(*state())
                await asyncio.sleep(0.2)

        ticking = asyncio.ensure_future(tick())
        try:
            await loops
        finally:
            ticking.cancel()
            ticker(*state())
