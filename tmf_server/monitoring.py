"""The outermost layer of the app: health, /metrics, and one access-log line and metric per request.

`/health/live`, `/health/ready` and `/metrics` are answered here, before Connexion routes anything: they are not
part of the OpenAPI documents, need no credentials and cost no validation. Every other request passes through
and is timed; its OpenAPI operationId comes from Connexion's routing (None for unrouted paths).
"""
from __future__ import annotations

import asyncio
import json
import logging
import time

from pymongo.errors import PyMongoError

from tmf_server import __version__, metrics
from tmf_server.errors import error_body

access_log = logging.getLogger("tmf_server.access")

LIVE, READY, METRICS = "/health/live", "/health/ready", "/metrics"
OWN_PATHS = {LIVE: "health_live", READY: "health_ready", METRICS: "metrics"}
UNROUTED = "unrouted"


class Readiness:
    """What /health/ready checks: the database answers a ping in time (with the embedded engine, the ping is its
    proof of life: `tmf-server serve` restarts a dead engine on the same port), and the dispatcher thread runs
    (when enabled)."""

    def __init__(self, ping, timeout_seconds: float, dispatcher=None):
        self.ping = ping  # asks the database for a sign of life (wiring.Services.ping)
        self.timeout = timeout_seconds
        self.dispatcher = dispatcher

    async def problems(self) -> dict[str, str]:
        found: dict[str, str] = {}
        try:
            await asyncio.wait_for(asyncio.to_thread(self.ping), self.timeout)
        except (PyMongoError, asyncio.TimeoutError) as exc:
            found["database"] = f"no answer to ping within {self.timeout:g} s: {exc or type(exc).__name__}"
        if self.dispatcher is not None and not self.dispatcher.alive():
            found["dispatcher"] = "the event dispatcher is not running"
        return found


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class Monitoring:
    """ASGI middleware (Connexion position BEFORE_EXCEPTION): own endpoints, access log, request metrics."""

    def __init__(self, app, readiness: Readiness, store_gauges):
        self.app = app
        self.readiness = readiness
        self.store_gauges = store_gauges  # what /metrics reads from the database at scrape time

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # Connexion's routing records the operationId in a copy of the scope; a shared `extensions` dict
        # brings it back here.
        extensions = scope.setdefault("extensions", {})
        path = scope["path"]
        status = 500  # what the client sees if nothing inside answers (the ASGI server's own 500)

        async def send_and_watch(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if path in OWN_PATHS:
                status = await self._answer_own(path, scope, send)
            else:
                await self.app(scope, receive, send_and_watch)
        finally:
            # Connexion's id is the resolved function ("tmf_server.api.hub.registerListener"): the last part is
            # the document's operationId.
            operation = OWN_PATHS.get(path) or \
                (extensions.get("connexion_routing", {}).get("operation_id") or UNROUTED).rsplit(".", 1)[-1]
            elapsed = time.perf_counter() - started
            metrics.http_request(operation, scope["method"], status, elapsed)
            self._log(scope, status, elapsed, quiet=path in OWN_PATHS)

    async def _answer_own(self, path: str, scope, send) -> int:
        if scope["method"] not in ("GET", "HEAD"):
            body = _json(error_body(405, "methodNotAllowed", f"{scope['method']} is not allowed here; allowed: GET."))
            status, content_type = 405, "application/json"
        elif path == METRICS:
            exposition, content_type = await asyncio.to_thread(metrics.exposition, self.store_gauges)
            body, status = exposition, 200
        elif path == LIVE:
            body, status, content_type = _json({"status": "up", "version": __version__}), 200, "application/json"
        else:
            problems = await self.readiness.problems()
            answer = {"status": "down" if problems else "up", "version": __version__}
            if problems:
                answer["problems"] = problems
            body, status, content_type = _json(answer), 503 if problems else 200, "application/json"
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
                   (b"cache-control", b"no-store")]
        if status == 405:
            headers.append((b"allow", b"GET"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
        return status

    @staticmethod
    def _log(scope, status: int, elapsed: float, quiet: bool) -> None:
        level = logging.DEBUG if quiet else logging.INFO  # probes and scrapes every few seconds are noise
        if not access_log.isEnabledFor(level):
            return
        client = scope.get("client")
        query = scope.get("query_string", b"").decode("latin-1")
        fields = {"method": scope["method"], "path": scope["path"] + (f"?{query}" if query else ""),
                  "status": status, "durationMs": round(elapsed * 1000, 1),
                  "correlationId": _header(scope, b"x-correlation-id") or _header(scope, b"x-request-id"),
                  "client": f"{client[0]}:{client[1]}" if client else None}
        # The record made directly: Logger.log would also look up the calling frame's file and line (a stack
        # walk per request), which neither format writes.
        access_log.handle(access_log.makeRecord(
            access_log.name, level, __file__, 0, '%s "%s %s" %s %.1f ms correlation=%s',
            (fields["client"], fields["method"], fields["path"], status, fields["durationMs"],
             fields["correlationId"] or "-"), None, extra={"access": fields}))


def _json(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
