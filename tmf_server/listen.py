"""`tmf-server listen`: a webhook receiver for trying the hub by hand; prints each notification and checks its
Standard Webhooks signature when given the subscription's secret (a bad signature is answered 401)."""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tmf_server.events.signing import verify


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("listen", help="receive hub notifications on this machine and print them")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9090, help="listen port (default 9090)")
    parser.add_argument("--secret", help="the subscription's secret: check every webhook-signature")
    parser.add_argument("--count", type=int, help="exit after this many notifications (default: until Ctrl-C)")
    parser.add_argument("--timeout", type=float, help="with --count: give up after this many seconds (exit 1)")


def describe(headers, body: bytes, secret: str | None) -> tuple[str, bool]:
    """The printed line of one notification and whether its signature (if checked) is valid."""
    try:
        notification = json.loads(body)
        problem = (notification.get("event") or {}).get("serviceProblem") or {}
        what = f"{notification.get('eventType')} problem={problem.get('id')} status={problem.get('status')}"
    except (ValueError, AttributeError):
        what = f"not JSON ({len(body)} bytes)"
    line = f"{what} webhook-id={headers.get('webhook-id')}"
    if secret is None:
        return line, True
    valid = verify(secret, headers.get("webhook-id") or "", headers.get("webhook-timestamp") or "",
                   body.decode("utf-8", "replace"), headers.get("webhook-signature") or "", time.time())
    return f"{line} signature={'verified' if valid else 'INVALID'}", valid


def main(args, error) -> int:
    if args.timeout is not None and args.count is None:
        error("--timeout needs --count")
    received = threading.Semaphore(0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            line, valid = describe(self.headers, body, args.secret)
            print(line, flush=True)  # before the answer: lines come in the order the sender was answered
            self.send_response(204 if valid else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            received.release()

        def log_message(self, *_args):
            pass

    try:
        server = ThreadingHTTPServer((args.host, args.port), Handler)
    except OSError as exc:
        print(f"tmf-server: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"listening on http://{args.host}:{args.port}/", file=sys.stderr, flush=True)
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    remaining = args.count
    try:
        while remaining is None or remaining > 0:
            if not received.acquire(timeout=None if deadline is None else max(0.0, deadline - time.monotonic())):
                print(f"tmf-server: fewer than {args.count} notifications within {args.timeout:g} s", file=sys.stderr)
                return 1
            remaining = None if remaining is None else remaining - 1
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
    return 0
