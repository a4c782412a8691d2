"""`tmf-server conformance`: options, progress on a terminal, reports, exit code."""
from __future__ import annotations

import argparse
import shutil
import sys
from typing import TextIO

from tmf_server.command_options import header_options
from tmf_server.conformance import report
from tmf_server.conformance.auth import TokenUnavailable, client_credentials_token
from tmf_server.conformance.checks import ANONYMOUS_REFUSED, CHECKS, Check
from tmf_server.conformance.runner import run_checks
from tmf_server.conformance.session import Options

DESCRIPTION = """\
Check a TMF656 v4 Service Problem Management server from outside, over HTTP only.

BASE_URL is the API root, e.g. http://host:8080/tmf-api/serviceProblemManagement/v4 .
Each check creates its own service problems (marked 'conformance.<id>' in category) and deletes them
afterwards; the hub check subscribes a listener the kit starts itself and unsubscribes it again.
Requirements come from the official TMF656 v4.0.0 document and TMF630 (filtering, fields, sort,
paging headers, merge/JSON patch, TMF Error bodies, hub).
"""
EPILOG = """\
exit status: 0 when every required check passed (optional ones and skipped ones do not count),
1 when a required check failed, 2 for a usage error.

The server under test must be able to reach the kit's listener: by default it listens on
127.0.0.1 on a free port. For a remote server, listen on an address it can reach and tell it
the public URL, e.g. --callback-host 0.0.0.0 --callback-port 9090 --callback-url http://me.example:9090
"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("conformance", help="check any TMF656 v4 server (conformance kit)",
                                 description=DESCRIPTION, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base_url", metavar="BASE_URL", nargs="?", help="the API root of the server under test")
    parser.add_argument("--json", metavar="FILE", help="write a machine-readable report to FILE")
    parser.add_argument("--html", metavar="FILE", help="write a standalone HTML report to FILE")
    parser.add_argument("--check", metavar="ID", action="append",
                        help="run only this check (repeatable); see --list-checks")
    parser.add_argument("--list-checks", action="store_true", help="list the checks and exit")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                        help="time limit of each HTTP request (default 30)")
    parser.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                        help="send this header with every request, e.g. an Authorization header (repeatable)")
    auth = parser.add_argument_group(
        "authentication", "the kit sends a bearer token with every request, and then also checks that a request "
                          "without one is refused (check anonymous-refused); credentials never reach a report")
    auth.add_argument("--token", metavar="TOKEN", help="an OAuth 2.0 access token to send as Authorization: Bearer")
    auth.add_argument("--token-url", metavar="URL", help="fetch a token with the client credentials grant here")
    auth.add_argument("--client-id", metavar="ID", help="the client's id (with --token-url)")
    auth.add_argument("--client-secret", metavar="SECRET", help="the client's secret (with --token-url)")
    auth.add_argument("--scope", metavar="'SCOPE ...'", help="the scopes to ask for (with --token-url)")
    hub = parser.add_argument_group("hub check")
    hub.add_argument("--callback-host", default="127.0.0.1",
                     help="address the kit's notification listener binds (default 127.0.0.1)")
    hub.add_argument("--callback-port", type=int, default=0, help="its port (default: a free port)")
    hub.add_argument("--callback-url", metavar="URL",
                     help="the listener's address as the server must call it (default http://HOST:PORT)")
    hub.add_argument("--event-timeout", type=float, default=30.0, metavar="SECONDS",
                     help="how long to wait for a notification (default 30)")
    hub.add_argument("--quiet-period", type=float, default=3.0, metavar="SECONDS",
                     help="how long no notification must arrive after unsubscribing (default 3)")
    hub.add_argument("--skip-hub", action="store_true", help="skip the hub check (reported as skipped)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")


def main(args: argparse.Namespace, parser_error) -> int:
    if args.list_checks:
        for item in CHECKS:
            print(f"{item.id:<18} {'required' if item.required else 'optional'}  {item.title}")
        return 0
    if not args.base_url:
        parser_error("BASE_URL is required")
    if not args.base_url.startswith(("http://", "https://")):
        parser_error(f"BASE_URL must be an http(s) URL, not {args.base_url!r}")
    selected = select(args.check, parser_error)
    headers = header_options(args.header, parser_error)
    token = access_token(args, parser_error)
    if token is None and (args.token_url or args.client_id or args.client_secret):
        return 2
    if token:
        headers["Authorization"] = f"Bearer {token}"
        selected = [ANONYMOUS_REFUSED, *selected]
    options = Options(event_timeout=args.event_timeout, quiet_period=args.quiet_period,
                      callback_host=args.callback_host, callback_port=args.callback_port,
                      callback_url=args.callback_url, skip_hub=args.skip_hub)
    show_progress = sys.stderr.isatty() and not args.no_progress
    run = run_checks(args.base_url, selected, options, timeout=args.timeout, headers=headers,
                     progress=ProgressBar(sys.stderr) if show_progress else None)
    print(report.table(run, shutil.get_terminal_size().columns if sys.stdout.isatty() else None))
    if args.json:
        report.write_json(run, args.json)
    if args.html:
        report.write_html(run, args.html)
    return 0 if run.passed else 1


def access_token(args: argparse.Namespace, parser_error) -> str | None:
    """The token to send: --token, or one from --token-url with --client-id and --client-secret (None on failure,
    reported on stderr)."""
    if args.token and args.token_url:
        parser_error("give either --token or --token-url, not both")
    if args.token:
        return args.token
    if not (args.token_url or args.client_id or args.client_secret or args.scope):
        return None
    if not (args.token_url and args.client_id and args.client_secret):
        parser_error("the client credentials flow needs --token-url, --client-id and --client-secret")
    try:
        return client_credentials_token(args.token_url, args.client_id, args.client_secret, args.scope,
                                        args.timeout)
    except TokenUnavailable as exc:
        print(f"tmf-server conformance: no access token: {exc}", file=sys.stderr)
        return None


def select(wanted: list[str] | None, parser_error) -> list[Check]:
    if not wanted:
        return list(CHECKS)
    known = {c.id: c for c in CHECKS}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        parser_error(f"unknown check(s) {', '.join(unknown)}; --list-checks lists them")
    return [c for c in CHECKS if c.id in wanted]


class ProgressBar:
    WIDTH = 30

    def __init__(self, stream: TextIO):
        self.stream = stream

    def __call__(self, done: int, total: int, check: Check, outcome) -> None:
        filled = self.WIDTH * done // max(total, 1)
        state = f"{check.id}: {outcome.result}" if outcome else f"{check.id} ..."
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{total} {state:<40}")
        if done == total and outcome:
            self.stream.write("\r" + " " * (self.WIDTH + 60) + "\r")
        self.stream.flush()
