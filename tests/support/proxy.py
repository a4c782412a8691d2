"""A real HTTP reverse proxy on a free loopback port that forwards to a server and can break its answers on the
way back: a deliberately non-conformant server built from a conformant one."""
from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Forwarded:
    """One request as the proxy forwards it and the answer as it returns it; a Breakage may change both."""

    method: str
    target: str  # path and query
    request_headers: dict[str, str] = field(default_factory=dict)
    request_body: bytes | None = None
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


# Called before forwarding (status 0) and again with the answer.
Breakage = Callable[[Forwarded], None]


class BreakingProxy:
    def __init__(self, upstream: str, breakage: Breakage):
        parts = urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname, parts.port
        self.breakage = breakage
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection", "content-length")}
                exchange = Forwarded(self.command, self.path, headers, body)
                proxy.breakage(exchange)
                connection = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
                try:
                    connection.request(self.command, exchange.target, body=exchange.request_body,
                                       headers=exchange.request_headers)
                    answer = connection.getresponse()
                    exchange.status = answer.status
                    exchange.headers = {k: v for k, v in answer.getheaders()
                                        if k.lower() not in ("content-length", "transfer-encoding", "connection")}
                    exchange.body = answer.read()
                finally:
                    connection.close()
                proxy.breakage(exchange)
                self.send_response(exchange.status)
                for name, value in exchange.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(exchange.body)))
                self.end_headers()
                self.wfile.write(exchange.body)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _forward

            def log_message(self, *_args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> BreakingProxy:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._server.shutdown()
        self._server.server_close()
