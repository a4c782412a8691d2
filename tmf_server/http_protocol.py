"""The HTTP/1.1 protocol the server listens with: uvicorn's (httptools), plus a deadline for each request head.

Uvicorn times out a kept-alive connection only while it is idle after an answer; a connection that sends
nothing, or the start of a request head and then nothing more, stays open for ever. Enough of them (a few
thousand sockets) would use up the process's file descriptors and stall every client. Here the request line
and headers must arrive in full within `head_timeout` seconds of the connection or of the previous answer, else
the connection is closed (no answer can be given: the request is not known yet). The body has its own deadline
(TMF_BODY_TIMEOUT, tmf_server/limits.py).
"""
from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeadTimeoutProtocol(HttpToolsProtocol):
    def __init__(self, *args, head_timeout: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.head_timeout = head_timeout
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def on_headers_complete(self) -> None:
        self._head_arrived()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.cycle is not None and self.cycle.response_complete:
            self._await_head()  # the next request's head (a kept-alive connection)

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_arrived()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        self._head_arrived()
        self._head_deadline = self.loop.call_later(self.head_timeout, self._head_late)

    def _head_arrived(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_late(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self.transport.close()
