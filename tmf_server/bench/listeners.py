"""Notification listeners for the hub scenario: real HTTP servers on 127.0.0.1, served by the bench's own event
loop, each noting when the ServiceProblemCreateEvent of each report reached it."""
from __future__ import annotations

import asyncio
import json
import time

from tmf_server.bench.wire import read_chunked

CREATE_EVENT = "ServiceProblemCreateEvent"
MAX_BODY = 1 << 22


class Listener:
    """Accepts POSTs on any path, answers 204, and keeps {serviceProblem id: arrival time} of create events."""

    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self.arrivals: dict[str, float] = {}
        self.duplicates = 0  # create events of a report that had already arrived (at-least-once delivery)
        self.other = 0  # notifications that are not create events, or not JSON
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        port = self._server.sockets[0].getsockname()[1]
        return f"http://{self.host}:{port}/listener"

    async def start(self) -> "Listener":
        self._server = await asyncio.start_server(self._serve, self.host, 0, limit=MAX_BODY)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head[:-4].decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    body = await read_chunked(reader)
                else:
                    body = await reader.readexactly(int(headers.get("content-length") or 0))
                arrived = time.perf_counter()
                closing = headers.get("connection", "").lower() == "close"
                writer.write(b"HTTP/1.1 204 No Content\r\n" + (b"Connection: close\r\n" if closing else b"")
                             + b"\r\n")
                await writer.drain()
                self._note(body, arrived)
                if closing:
                    return
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    def _note(self, body: bytes, arrived: float) -> None:
        try:
            notification = json.loads(body)
            problem_id = notification["event"]["serviceProblem"]["id"] \
                if notification.get("eventType") == CREATE_EVENT else None
        except (ValueError, TypeError, KeyError, AttributeError):
            problem_id = None
        if not isinstance(problem_id, str):
            self.other += 1
        elif problem_id in self.arrivals:
            self.duplicates += 1
        else:
            self.arrivals[problem_id] = arrived

