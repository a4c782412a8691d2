"""`tmf-server bench`: options, the event loop, progress on a terminal, the table or the JSON document."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys

from tmf_server.bench.report import ProgressBar, table
from tmf_server.bench.runner import SCENARIOS, Bench, BenchAborted, Config, Progress
from tmf_server.command_options import header_options

DESCRIPTION = """\
Measure a TMF656 v4 Service Problem Management server from outside, over HTTP only.

BASE_URL is the API root, e.g. http://127.0.0.1:8080/tmf-api/serviceProblemManagement/v4 ; the intake is
the same root + /intake (--intake-url to change it). Each scenario sends requests back to back on every
connection for a warm-up and then DURATION measured seconds; it reports requests/s, p50 and p99 latency and
unexpected answers. Lists and intake run at a small and at a large stored population, which the bench tops
up through POST /serviceProblem (customers C0..C99). The bench writes to the server and does not clean up:
point it at a server whose data you can spare.

Scenarios: """ + ", ".join(SCENARIOS) + """ (docs/performance.md describes each).

With --local instead of BASE_URL (what `make bench` runs): a temporary embedded engine is measured raw
with pymongo, this server is started on it, measured, and every ratio is printed against its target.
"""
EPILOG = """\
exit status: 0 when the run completed and every answer was the expected one; 1 when some answers were not
(the table shows the first of each scenario); 2 for a usage error, or a server that cannot be reached or
does not answer like a TMF656 server.
"""


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = commands.add_parser("bench", help="benchmark a TMF656 server over HTTP (or this one: --local)",
                                 description=DESCRIPTION, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base_url", metavar="BASE_URL", nargs="?", help="the API root of the server to measure")
    parser.add_argument("--connections", type=int, default=16, help="persistent connections (default 16)")
    parser.add_argument("--duration", type=float, default=5.0, metavar="SECONDS",
                        help="measured seconds per scenario (default 5)")
    parser.add_argument("--warmup", type=float, metavar="SECONDS",
                        help="warm-up before each measurement (default 1, or half the duration if shorter)")
    parser.add_argument("--small", type=int, default=1000, help="small stored population (default 1000)")
    parser.add_argument("--large", type=int, default=10000,
                        help="large stored population (default 10000; 0 leaves it out)")
    parser.add_argument("--scenarios", metavar="A,B,...", help="only these scenarios (default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    parser.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                        help="send this header with every request, e.g. an Authorization header (repeatable)")
    parser.add_argument("--intake-url", metavar="URL", help="the intake base (default: the root of BASE_URL + /intake)")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                        help="time limit of each request (default 30)")
    parser.add_argument("--quiet-wait", type=float, default=120.0, metavar="SECONDS",
                        help="before each scenario, wait at most this long for the server's event records "
                             "(GET /serviceProblemEventRecord) to stop growing; 0: no wait (default 120)")
    hub = parser.add_argument_group("hub scenarios (hub: creates at full speed; hub_paced: at --hub-rate)")
    hub.add_argument("--hub-listeners", type=int, default=10, help="listeners subscribed (default 10)")
    hub.add_argument("--hub-settle", type=float, default=120.0, metavar="SECONDS",
                     help="before the load, how long a first create's event may take to reach every listener, "
                          "while the server works off the events of earlier scenarios (default 120)")
    hub.add_argument("--hub-wait", type=float, default=30.0, metavar="SECONDS",
                     help="how long deliveries may take after the load stops (default 30)")
    hub.add_argument("--hub-rate", type=float, default=100.0, metavar="CREATES_PER_SECOND",
                     help="the create rate of hub_paced, in all connections together (default 100)")
    local = parser.add_argument_group("this server on a temporary embedded engine (make bench)")
    local.add_argument("--local", action="store_true", help="start the engine and the server, measure both")
    local.add_argument("--workers", type=int, default=1, help="server worker processes (default 1)")
    local.add_argument("--rss-after", type=int, default=10000, metavar="REQUESTS",
                       help="read the server's RSS after this many requests, and again at the end (default 10000)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    return parser


def config_from(args: argparse.Namespace, parser_error, base_url: str) -> Config:
    if not base_url.startswith(("http://", "https://")):
        parser_error(f"BASE_URL must be an http(s) URL, not {base_url!r}")
    if args.intake_url and not args.intake_url.startswith(("http://", "https://")):
        parser_error(f"--intake-url must be an http(s) URL, not {args.intake_url!r}")
    scenarios = SCENARIOS
    if args.scenarios:
        wanted = [name.strip() for name in args.scenarios.split(",") if name.strip()]
        unknown = [name for name in wanted if name not in SCENARIOS]
        if unknown or not wanted:
            parser_error(f"unknown scenario(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(SCENARIOS)}")
        scenarios = tuple(name for name in SCENARIOS if name in wanted)
    headers = header_options(args.header, parser_error)
    for option, value, least in (("--connections", args.connections, 1), ("--small", args.small, 0),
                                 ("--large", args.large, 0), ("--hub-listeners", args.hub_listeners, 1)):
        if value < least:
            parser_error(f"{option} must be at least {least}")
    if args.hub_rate <= 0:
        parser_error("--hub-rate must be positive")
    if args.duration <= 0 or (args.warmup is not None and args.warmup < 0):
        parser_error("--duration must be positive and --warmup not negative")
    return Config(base_url=base_url, intake_url=args.intake_url, connections=args.connections,
                  duration=args.duration, warmup=args.warmup, small=args.small, large=args.large,
                  scenarios=scenarios, headers=headers, timeout=args.timeout, hub_listeners=args.hub_listeners,
                  hub_wait=args.hub_wait, hub_settle=args.hub_settle, hub_rate=args.hub_rate,
                  quiet_wait=args.quiet_wait)


def progress_for(args: argparse.Namespace, config: Config) -> Progress:
    if sys.stderr.isatty() and not args.no_progress:
        return ProgressBar(sys.stderr, config.steps())
    return Progress()


def run_bench(bench: Bench) -> dict:
    """The run on one event loop in this thread (uvloop when it is installed: cheaper per request)."""
    try:
        import uvloop
        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(bench.run())


def main(args: argparse.Namespace, parser_error) -> int:
    if args.local:
        if args.base_url:
            parser_error("give either BASE_URL or --local, not both")
        from tmf_server.bench import local

        return local.main(args, parser_error)
    if not args.base_url:
        parser_error("BASE_URL (or --local) is required")
    config = config_from(args, parser_error, args.base_url)
    try:
        document = run_bench(Bench(config, progress_for(args, config)))
    except BenchAborted as exc:
        print(f"tmf-server bench: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(document, indent=2) if args.json else table(document))
    return 0 if document["errors"] == 0 else 1
