"""One webhook attempt: an HTTP POST whose every outcome (2xx, other status, refusal, network error) is a value."""
from __future__ import annotations

import functools
import http.client
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


def _pinned(addresses: list):
    """socket.create_connection, but only to the addresses the callback policy checked (no second DNS lookup)."""

    def create_connection(address, timeout=None, source_address=None):
        last: OSError | None = None
        for ip in addresses:
            try:
                return socket.create_connection((str(ip), address[1]), timeout, source_address)
            except OSError as exc:
                last = exc
        raise last or OSError("no address to connect to")

    return create_connection


def _abort(connection: http.client.HTTPConnection, fired: threading.Event) -> None:
    fired.set()
    sock = connection.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked send/recv in the delivering thread
        except OSError:
            pass


def _excerpt(response: http.client.HTTPResponse) -> str | None:
    """The start of the body; a body that stalls or breaks does not undo the status already received."""
    try:
        return response.read(EXCERPT_BYTES).decode("utf-8", "replace") or None
    except (OSError, http.client.HTTPException, ValueError):
        return None


def post(url: str, body: str, headers: dict[str, str], timeout: float, allow: tuple[str, ...]) -> AttemptResult:
    """POSTs `body` to `url`; never raises for anything the network or the receiver does.

    The callback policy is checked again first (DNS may have changed since subscribing), and the connection
    goes only to the checked addresses. `timeout` bounds the whole attempt, not each socket operation.
    Redirects are not followed: a 3xx is a failed attempt.
    """
    started = time.monotonic()

    def result(status=None, error=None, retry_after=None, response=None) -> AttemptResult:
        return AttemptResult(status, error, int((time.monotonic() - started) * 1000), retry_after, response)

    try:
        addresses = allowed_addresses(url, allow)
    except BadRequest as exc:
        return result(error=f"callback refused: {exc.message}")
    parts = urlsplit(url)
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout,
                                                 context=_tls_context())
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    connection._create_connection = _pinned(addresses)
    fired = threading.Event()
    watchdog = threading.Timer(timeout, _abort, (connection, fired))
    watchdog.daemon = True
    watchdog.start()
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", target, body=body.encode("utf-8"),
                           headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers})
        response = connection.getresponse()
        status = response.status
        excerpt = _excerpt(response)
        if 200 <= status < 300:
            return result(status=status, response=excerpt)
        reason = f"HTTP {status}" + (f" {response.reason}" if response.reason else "")
        return result(status=status, error=reason, retry_after=response.getheader("Retry-After"),
                      response=excerpt)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if fired.is_set() or isinstance(exc, TimeoutError):
            return result(error=f"timed out after {timeout:g} s")
        return result(error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    finally:
        watchdog.cancel()
        connection.close()
