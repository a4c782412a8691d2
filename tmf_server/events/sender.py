"""Webhook attempts: HTTP POSTs over kept-alive connections; every outcome (2xx, other status, refusal, network
error) is a value."""
from __future__ import annotations

import functools
import heapq
import http.client
import itertools
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from tmf_server.errors import BadRequest
from tmf_server.events.callbacks import allowed_addresses

USER_AGENT = "tmf656-qos-server-webhooks/1"
EXCERPT_BYTES = 512  # of the response body, kept with the attempt
DRAIN_BYTES = 65536  # read past the excerpt to keep a connection; a longer answer closes it instead
IDLE_PER_ORIGIN = 16  # kept-alive connections per (origin, checked addresses)
# Errors of a kept-alive connection the listener closed while it sat idle: the request never reached it.
STALE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, http.client.RemoteDisconnected)


@dataclass(frozen=True)
class AttemptResult:
    status: int | None  # the HTTP status, None when no response came
    error: str | None  # why there was no 2xx, in words (None when delivered)
    duration_ms: int
    retry_after: str | None = None  # the raw Retry-After header of a failed response
    response: str | None = None  # the start of the response body

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One default TLS context for every HTTPS attempt: building it loads the CA store (tens of milliseconds)."""
    return ssl.create_default_context()


def _pinned(addresses: tuple[str, ...]):
    """socket.create_connection, but only to the addresses the callback policy checked (no second DNS lookup)."""

    def create_connection(address, timeout=None, source_address=None):
        last: OSError | None = None
        for ip in addresses:
            try:
                return socket.create_connection((ip, address[1]), timeout, source_address)
            except OSError as exc:
                last = exc
        raise last or OSError("no address to connect to")

    return create_connection


class Watchdog:
    """One thread that aborts attempts running past their deadline (rather than a timer thread per attempt)."""

    def __init__(self):
        self._heap: list[tuple[float, int, list]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def watch(self, deadline: float, action) -> list:
        """Runs `action()` at `deadline` (time.monotonic) unless the returned handle is cancelled first."""
        entry = [action]
        with self._changed:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="webhook-watchdog", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (deadline, next(self._order), entry))
            if self._heap[0][2] is entry:  # else the thread already wakes sooner, for an earlier deadline
                self._changed.notify()
        return entry

    @staticmethod
    def cancel(handle: list) -> None:
        handle[0] = None

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._closed and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._changed.wait(None if not self._heap else self._heap[0][0] - time.monotonic())
                if self._closed:
                    return
                _deadline, _order, entry = heapq.heappop(self._heap)
            action = entry[0]
            if action is not None:
                action()


class Sender:
    """POSTs notifications; connections to a listener are kept alive and reused by the next attempt to it."""

    def __init__(self, timeout: float, allow: tuple[str, ...]):
        self.timeout = timeout
        self.allow = allow
        self._idle: dict[tuple, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._watchdog = Watchdog()

    def close(self) -> None:
        """Closes the idle connections and ends the watchdog."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()
        self._watchdog.close()

    def post(self, url: str, body: str, headers: dict[str, str]) -> AttemptResult:
        """POSTs `body` to `url`; never raises for anything the network or the receiver does.

        The callback policy is checked again first (DNS may have changed since subscribing), and the connection
        goes only to the checked addresses. The timeout bounds the whole attempt, not each socket operation.
        Redirects are not followed: a 3xx is a failed attempt.
        """
        started = time.monotonic()

        def result(status=None, error=None, retry_after=None, response=None) -> AttemptResult:
            return AttemptResult(status, error, int((time.monotonic() - started) * 1000), retry_after, response)

        try:
            addresses = tuple(str(ip) for ip in allowed_addresses(url, self.allow))
        except BadRequest as exc:
            return result(error=f"callback refused: {exc.message}")
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname, parts.port, addresses)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        payload = body.encode("utf-8")
        fired = threading.Event()
        connection, reused = self._take(key)
        current = [connection]  # the watchdog aborts whichever connection the attempt is on
        handle = self._watchdog.watch(started + self.timeout, lambda: _abort(current[0], fired))
        try:
            try:
                response = self._exchange(connection, target, payload, headers, started)
            except STALE:
                if not reused or fired.is_set():
                    raise
                connection.close()  # closed by the listener while idle: once more on a new connection
                connection = current[0] = self._connect(key)
                response = self._exchange(connection, target, payload, headers, started)
            status = response.status
            excerpt = _excerpt(response)
            keep = not response.will_close and _drained(response)
            if 200 <= status < 300:
                outcome = result(status=status, response=excerpt)
            else:
                reason = f"HTTP {status}" + (f" {response.reason}" if response.reason else "")
                outcome = result(status=status, error=reason, retry_after=response.getheader("Retry-After"),
                                 response=excerpt)
            Watchdog.cancel(handle)  # before the connection can serve another attempt
            if keep and not fired.is_set():
                self._give(key, connection)
            else:
                connection.close()
            return outcome
        except (OSError, http.client.HTTPException, ValueError) as exc:
            connection.close()
            if fired.is_set() or isinstance(exc, TimeoutError):
                return result(error=f"timed out after {self.timeout:g} s")
            return result(error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        finally:
            Watchdog.cancel(handle)

    def _exchange(self, connection, target: str, payload: bytes, headers: dict[str, str],
                  started: float) -> http.client.HTTPResponse:
        if connection.sock is not None:
            connection.sock.settimeout(max(0.001, self.timeout - (time.monotonic() - started)))
        connection.request("POST", target, body=payload,
                           headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers})
        return connection.getresponse()

    def _connect(self, key: tuple) -> http.client.HTTPConnection:
        scheme, host, port, addresses = key
        if scheme == "https":
            connection = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=_tls_context())
        else:
            connection = http.client.HTTPConnection(host, port, timeout=self.timeout)
        connection._create_connection = _pinned(addresses)
        return connection

    def _take(self, key: tuple) -> tuple[http.client.HTTPConnection, bool]:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                connection = idle.pop() if idle else None
            if connection is None:
                return self._connect(key), False
            if _quiet(connection):
                return connection, True
            connection.close()  # closed by the listener, or it sent more than its answer: not reusable

    def _give(self, key: tuple, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < IDLE_PER_ORIGIN:
                idle.append(connection)
                return
        connection.close()


def _abort(connection: http.client.HTTPConnection, fired: threading.Event) -> None:
    fired.set()
    sock = connection.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked send/recv in the delivering thread
        except OSError:
            pass


def _quiet(connection: http.client.HTTPConnection) -> bool:
    """Whether an idle connection has nothing to read: readable means the listener closed it (or wrote bytes
    no request asked for), and the next answer read from it would be wrong."""
    try:
        poller = select.poll()  # not select.select: it fails for descriptors above 1023
        poller.register(connection.sock, select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError, AttributeError):
        return False


def _excerpt(response: http.client.HTTPResponse) -> str | None:
    """The start of the body; a body that stalls or breaks does not undo the status already received."""
    try:
        return response.read(EXCERPT_BYTES).decode("utf-8", "replace") or None
    except (OSError, http.client.HTTPException, ValueError):
        return None


def _drained(response: http.client.HTTPResponse) -> bool:
    """Reads the rest of a short answer so its connection can carry the next request; False if it cannot."""
    try:
        if not response.isclosed():
            response.read(DRAIN_BYTES)
        return response.isclosed()
    except (OSError, http.client.HTTPException, ValueError):
        return False
