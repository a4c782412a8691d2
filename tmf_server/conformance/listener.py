"""The kit's own notification listener: a real HTTP server that accepts TMF event POSTs on any path."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_NOTIFICATION_BYTES = 1 << 20


class NotificationListener:
    """Listens on (host, port); `public_url` is the callback given to the server (it may differ behind NAT)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, public_url: str | None = None):
        self._received: list[dict] = []
        self._condition = threading.Condition()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, MAX_NOTIFICATION_BYTES))
                try:
                    notification = json.loads(body)
                except ValueError:
                    notification = None
                with listener._condition:
                    listener._received.append({"path": self.path, "body": notification})
                    listener._condition.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args):
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        bound_host, bound_port = self._server.server_address[:2]
        self.public_url = (public_url or f"http://{bound_host}:{bound_port}").rstrip("/") + "/listener"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> NotificationListener:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, matches: Callable[[dict], bool], timeout: float) -> dict | None:
        """The first notification body `matches` accepts, waiting up to `timeout` seconds for it."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                for item in self._received:
                    if isinstance(item["body"], dict) and matches(item["body"]):
                        return item["body"]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._condition.wait(remaining)
