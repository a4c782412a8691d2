"""A real webhook receiver on a free loopback port: records every request; can fail, hang, or be down."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tmf_server.store.embedded import free_port


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float  # time.monotonic() when it arrived
    status: int  # what the listener answered
    client: tuple[str, int] = ("", 0)  # the sender's address: the same one for requests on one connection

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def json(self) -> dict:
        return json.loads(self.body)


# A responder gets the request and how many earlier requests carried the same webhook-id; it returns
# (status, extra headers). The default answers 204.
Responder = Callable[[Received, int], tuple[int, dict]]


class Listener:
    """keep_alive: HTTP/1.1 with persistent connections (else HTTP/1.0, one request per connection);
    close_after: with keep_alive, close each connection after this many requests without saying so, as a
    listener whose idle timeout ran out does."""

    def __init__(self, responder: Responder | None = None, keep_alive: bool = False, close_after: int | None = None):
        self.port = free_port()
        self.keep_alive = keep_alive
        self.close_after = close_after
        self.responder: Responder = responder or (lambda _request, _seen: (204, {}))
        self.requests: list[Received] = []
        self.arrivals = 0  # requests that arrived, including those still held
        self.hold = threading.Event()  # cleared: requests wait (a slow receiver) until set again
        self.hold.set()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def up(self) -> Listener:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if listener.keep_alive else "HTTP/1.0"
            served = 0

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                arrived = time.monotonic()
                with listener._lock:
                    listener.arrivals += 1
                listener.hold.wait(30)
                with listener._lock:
                    seen = sum(1 for r in listener.requests if r.headers.get("webhook-id") == headers.get("webhook-id"))
                    probe = Received(self.path, headers, body, arrived, 0, self.client_address[:2])
                    status, extra = listener.responder(probe, seen)
                    listener.requests.append(Received(self.path, headers, body, probe.at, status, probe.client))
                try:
                    self.send_response(status)
                    for name, value in extra.items():
                        self.send_header(name, value)
                    body = b"" if status in (204, 304) else b"ok"  # those may not carry a body (RFC 9110)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    self.served += 1
                    if listener.close_after is not None and self.served >= listener.close_after:
                        self.close_connection = True
                except OSError:
                    pass  # the sender gave up waiting (a timeout test)

            def log_message(self, *_args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def down(self) -> None:
        """Stops listening: connections are refused until up() again (same port)."""
        self.hold.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None

    def received(self, status_class: int | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if status_class is None or r.status // 100 == status_class]

    def delivered_ids(self) -> list[str]:
        """webhook-ids of the requests answered 2xx, in arrival order."""
        return [r.webhook_id for r in self.received(2)]
