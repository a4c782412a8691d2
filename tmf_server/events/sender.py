"""Webhook attempts: HTTP/1.1 POSTs over kept-alive connections; every outcome (2xx, other status, refusal, network
error) is a value.

The exchange is written on the socket here rather than with http.client: a delivery is one small POST and one
short answer, and http.client's request building and header parsing (email.parser) cost about eight times the
CPU of the exchange itself, on every delivery of an alarm storm (docs/performance.md, hub)."""
from __future__ import annotations

import functools
import heapq
import itertools
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from tmf_server.errors import BadRequest
from tmf_server.events.callbacks import allowed_addresses

USER_AGENT = "tmf656-qos-server-webhooks/1"
EXCERPT_BYTES = 512  # of the response body, kept with the attempt
DRAIN_BYTES = 65536  # read past the excerpt to keep a connection; a longer answer closes it instead
IDLE_PER_ORIGIN = 16  # kept-alive connections per (origin, checked addresses)
MAX_HEAD_BYTES = 65536  # of an answer's status line and headers
_NO_BODY = (204, 304)  # statuses whose answers have no body (RFC 9110), besides the interim 1xx


class ProtocolError(ValueError):
    """The answer is not HTTP/1.x as RFC 9112 frames it."""


class _Stale(Exception):
    """A kept-alive connection the listener closed while it sat idle: the request did not reach it."""


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


class _Connection:
    """One HTTP/1.1 connection to a checked address, carrying one exchange at a time."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = b""  # read past the last answer: must stay empty between exchanges

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def exchange(self, request: bytes, deadline: float, reused: bool) -> tuple[int, str, dict[str, str], str | None, bool]:
        """Sends `request` and reads the answer: (status, reason, headers by lower-case name, the start of the
        body, whether the connection can carry the next request). On a `reused` connection, a send that fails
        or an end of stream before the first byte of an answer raises _Stale."""
        try:
            self._timeout(deadline)
            self.sock.sendall(request)
            if not self._fill(deadline) and reused:
                raise _Stale()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            if reused:
                raise _Stale() from None
            raise
        while True:
            version, status, reason, headers = self._head(deadline)
            if not 100 <= status < 200:
                break  # an interim answer (100 Continue) precedes the final one
        keep = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
        try:
            excerpt, complete = self._body(status, headers, deadline)
        except (OSError, ProtocolError):  # the status stands; the connection does not
            return status, reason, headers, None, False
        return status, reason, headers, excerpt, keep and complete

    def _timeout(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out")
        self.sock.settimeout(remaining)

    def _fill(self, deadline: float) -> bool:
        """Reads what has arrived into the buffer; False at the end of the stream."""
        self._timeout(deadline)
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def _head(self, deadline: float) -> tuple[str, int, str, dict[str, str]]:
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise ProtocolError("the answer's header block is too long")
            if not self._fill(deadline):
                raise ConnectionResetError("the listener closed the connection before answering")
        lines = self.buffer[:end].decode("latin-1").split("\r\n")
        self.buffer = self.buffer[end + 4:]
        version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise ProtocolError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
        headers = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise ProtocolError(f"a header line without a colon: {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()
        return version, int(code), reason.strip(), headers

    def _body(self, status: int, headers: dict[str, str], deadline: float) -> tuple[str | None, bool]:
        """(the start of the body, whether all of it was read so that the connection can be kept)."""
        if status in _NO_BODY:
            return None, True
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body, complete = self._chunked(deadline)
        elif "content-length" in headers:
            length = headers["content-length"]
            if not length.isdigit():
                raise ProtocolError(f"Content-Length {length[:40]!r}")
            body, complete = self._exactly(int(length), deadline)
        else:  # delimited by the end of the stream: the connection ends with it
            body, _ = self._exactly(DRAIN_BYTES, deadline, until_closed=True)
            complete = False
        return body[:EXCERPT_BYTES].decode("utf-8", "replace") or None, complete

    def _exactly(self, length: int, deadline: float, until_closed: bool = False) -> tuple[bytes, bool]:
        """The next `length` bytes, or the start of them when they are more than DRAIN_BYTES (then not
        complete: the rest is left unread and the connection closed)."""
        wanted = min(length, DRAIN_BYTES)
        while len(self.buffer) < wanted:
            if not self._fill(deadline):
                if until_closed:
                    break
                raise ConnectionResetError("the listener closed the connection within the answer's body")
        data, self.buffer = self.buffer[:wanted], self.buffer[wanted:]
        return data, length <= DRAIN_BYTES and not until_closed

    def _chunked(self, deadline: float) -> tuple[bytes, bool]:
        """A chunked body (RFC 9112 7.1), trailers skipped; not complete past DRAIN_BYTES."""
        parts, size_read = [], 0
        while True:
            line = self._line(deadline)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ProtocolError(f"a chunk size of {line[:40]!r}") from None
            if size == 0:
                while self._line(deadline):
                    pass
                return b"".join(parts), True
            if size_read + size > DRAIN_BYTES:
                return b"".join(parts), False
            chunk, _ = self._exactly(size + 2, deadline)
            parts.append(chunk[:-2])
            size_read += size

    def _line(self, deadline: float) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise ProtocolError("a chunk line is too long")
            if not self._fill(deadline):
                raise ConnectionResetError("the listener closed the connection within a chunked body")
        line, self.buffer = self.buffer[:end], self.buffer[end + 2:]
        return line


@functools.lru_cache(maxsize=1024)
def _route(url: str) -> tuple[tuple, str]:
    """(scheme, host, port) and the start of the request (request line, Host, fixed headers) for a callback.
    A character beyond ASCII is sent percent-encoded in the target (UTF-8) and IDNA-encoded in the host."""
    parts = urlsplit(url)
    scheme, host = parts.scheme, parts.hostname
    port = parts.port or (443 if scheme == "https" else 80)
    target = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), safe=_TARGET_ASCII)
    shown = host if host.isascii() else host.encode("idna").decode("ascii")
    shown = f"[{shown}]" if ":" in shown else shown
    host_header = shown if port == (443 if scheme == "https" else 80) else f"{shown}:{port}"
    return (scheme, host, port), (f"POST {target} HTTP/1.1\r\nHost: {host_header}\r\n"
                                  f"Content-Type: application/json\r\nUser-Agent: {USER_AGENT}\r\n")


_TARGET_ASCII = "".join(chr(c) for c in range(33, 127))  # kept as they are (the callback check refused the rest)


class Sender:
    """POSTs notifications; connections to a listener are kept alive and reused by the next attempt to it."""

    def __init__(self, timeout: float, allow: tuple[str, ...]):
        self.timeout = timeout
        self.allow = allow
        self._idle: dict[tuple, list[_Connection]] = {}
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
        deadline = started + self.timeout

        def result(status=None, error=None, retry_after=None, response=None) -> AttemptResult:
            return AttemptResult(status, error, int((time.monotonic() - started) * 1000), retry_after, response)

        try:
            addresses = tuple(str(ip) for ip in allowed_addresses(url, self.allow))
        except BadRequest as exc:
            return result(error=f"callback refused: {exc.message}")
        try:
            origin, start = _route(url)
            payload = body.encode("utf-8")
            request = (start + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
                       + f"Content-Length: {len(payload)}\r\n\r\n").encode("ascii") + payload
        except (UnicodeError, ValueError) as exc:  # a host the IDNA codec refuses
            return result(error=f"the request cannot be written: {exc}")
        key = (*origin, addresses)
        fired = threading.Event()
        connection: _Connection | None = None
        current: list[_Connection | None] = [None]  # the watchdog aborts whichever connection the attempt is on
        handle = self._watchdog.watch(deadline, lambda: _abort(current[0], fired))
        try:
            connection, reused = self._take(key, deadline)
            current[0] = connection
            try:
                status, reason, answer, excerpt, keep = connection.exchange(request, deadline, reused)
            except _Stale:
                if fired.is_set():  # the end of stream was the watchdog's abort, not the listener's close
                    raise TimeoutError("timed out") from None
                connection.close()  # closed by the listener while idle: once more on a new connection
                connection = current[0] = self._connect(key, deadline)
                status, reason, answer, excerpt, keep = connection.exchange(request, deadline, False)
            if 200 <= status < 300:
                outcome = result(status=status, response=excerpt)
            else:
                outcome = result(status=status, error=f"HTTP {status}" + (f" {reason}" if reason else ""),
                                 retry_after=answer.get("retry-after"), response=excerpt)
            Watchdog.cancel(handle)  # before the connection can serve another attempt
            if keep and not fired.is_set() and not connection.buffer:
                self._give(key, connection)
            else:
                connection.close()
            return outcome
        except (OSError, ValueError) as exc:  # ValueError: ProtocolError, a header the codec refuses
            if connection is not None:
                connection.close()
            if fired.is_set() or isinstance(exc, TimeoutError):
                return result(error=f"timed out after {self.timeout:g} s")
            return result(error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        finally:
            Watchdog.cancel(handle)

    def _connect(self, key: tuple, deadline: float) -> _Connection:
        """A new connection, only to the addresses the callback policy checked (no second DNS lookup)."""
        scheme, host, port, addresses = key
        last: OSError | None = None
        for ip in addresses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("timed out")
            try:
                sock = socket.create_connection((ip, port), remaining)
                break
            except OSError as exc:
                last = exc
        else:
            raise last or OSError("no address to connect to")
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                sock = _tls_context().wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
        return _Connection(sock)

    def _take(self, key: tuple, deadline: float) -> tuple[_Connection, bool]:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                connection = idle.pop() if idle else None
            if connection is None:
                return self._connect(key, deadline), False
            if _quiet(connection):
                return connection, True
            connection.close()  # closed by the listener, or it sent more than its answer: not reusable

    def _give(self, key: tuple, connection: _Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < IDLE_PER_ORIGIN:
                idle.append(connection)
                return
        connection.close()


def _abort(connection: _Connection | None, fired: threading.Event) -> None:
    fired.set()
    if connection is not None:
        try:
            connection.sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked send/recv in the delivering thread
        except OSError:
            pass


def _quiet(connection: _Connection) -> bool:
    """Whether an idle connection has nothing to read: readable means the listener closed it (or wrote bytes
    no request asked for), and the next answer read from it would be wrong."""
    try:
        poller = select.poll()  # not select.select: it fails for descriptors above 1023
        poller.register(connection.sock, select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError, AttributeError):
        return False
