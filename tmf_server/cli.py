"""tmf-server: command line (serve, worker, conformance, bench, listen).

Start-up failures (port in use, data directory served by another server, database unreachable, bad settings) are
one line on stderr and exit status 1 (2 for a security configuration that must not serve:
`tmf_server/security/contract.py`), never a traceback. prometheus_client is imported only after
`_metrics_folder` has set PROMETHEUS_MULTIPROC_DIR, so every process of a command counts into the same folder.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
from pathlib import Path

from tmf_server import __version__
from tmf_server.security.contract import exposure_warning, startup_problem
from tmf_server.settings import BASE_PATH, Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
ENGINE_LOST = 3  # exit status when the embedded engine died and could not be restarted

ENVIRONMENT_HELP = """\
environment variables (README.md, "Configuration", has the details):
  MONGODB_URI              a MongoDB to use; unset starts the embedded engine
  TMF_DATABASE             database name (tmf656)
  TMF_DATA_DIR             data directory of the embedded engine (./var)
  TMF_HOST, TMF_PORT       listen address (127.0.0.1, 8080)
  TMF_WORKERS              server worker processes (1)
  TMF_PUBLIC_BASE_URL      base of href and Location behind a proxy
  TMF_MAX_BODY_BYTES       request body limit (1048576)
  TMF_DEFAULT_LIMIT        default list page size (100)
  TMF_MAX_LIMIT            largest list page size (1000)
  TMF_DB_TIMEOUT_MS        wait for the database before a 503 (2000)
  TMF_RETRY_AFTER          Retry-After of a 503, seconds (5)
  TMF_RESPONSIBLE_PARTY_ID, TMF_RESPONSIBLE_PARTY_NAME   default responsibleParty
  TMF_SYSTEM_ID            systemId of tracking records (tmf656-qos-server)
  TMF_VALIDATE_RESPONSES   validate every response against the contract (off)
  TMF_DISPATCHER           deliver events from the server processes (on)
  TMF_ENGINE_PORT          fixed port of the embedded engine (a free port)
  TMF_CALLBACK_ALLOW       callbacks allowed beyond public addresses: loopback, private, CIDRs
  TMF_DELIVERY_SCHEDULE    seconds between failed attempts (5,300,1800,7200,18000,36000,36000)
  TMF_DELIVERY_TIMEOUT     seconds an attempt may take (10)
  TMF_DELIVERY_CONCURRENCY attempts in flight per dispatcher (16)
  TMF_DELIVERY_PER_SUBSCRIPTION  attempts in flight to one listener, once it answered 2xx (4)
  TMF_DISPATCH_POLL        seconds between dispatcher rounds when idle (0.5)
  TMF_LEASE_SECONDS        how long a dispatcher's claim holds (60)
  TMF_MAX_RETRY_AFTER      cap on a listener's Retry-After, seconds (36000)
  TMF_INTAKE_PRIORITY_MATRIX, TMF_INTAKE_DEFAULT_TIER   the intake's priority rule (docs/intake.md)
  TMF_INTAKE_QOS_TICKET_WORDS  words that make a trouble ticket a QoS report (docs/intake.md)
  TMF_INTAKE_LEASE         seconds a request holds a received notification (30)
  TMF_INTAKE_SWEEP         seconds between sweeps of records a crash left received (10)
  TMF_AUTH                 off or jwt: OAuth 2.0 bearer tokens on every API operation (docs/security.md)
  TMF_JWT_ISSUER, TMF_JWT_AUDIENCE   the tokens' iss and aud
  TMF_JWKS_URL, TMF_JWKS_FILE        where the identity provider's keys are
  TMF_JWT_SCOPE_CLAIMS     claims holding scopes or roles (scope,scp)
  TMF_JWT_LEEWAY           clock skew allowed on exp and nbf, seconds (60)
  TMF_JWKS_MIN_REFRESH     least seconds between JWKS refreshes for an unknown key (30)
  TMF_OAUTH_TOKEN_URL      token URL stated in the served documents
  TMF_INTAKE_WEBHOOK_SECRETS  source=whsec_... pairs: intake signatures checked
  TMF_ADMIN                on, or off: no admin API at all
  TMF_ADMIN_HOST, TMF_ADMIN_PORT     the admin API on its own listener (127.0.0.1, none)
  TMF_LOG_LEVEL            DEBUG, INFO, WARNING or ERROR (INFO)
  TMF_LOG_FORMAT           text or json (text)
  TMF_ENGINE_RESTART_DELAYS  seconds before each restart of an embedded engine that died (then exit 3)
  TMF_MAX_URL_BYTES        longest URL, 414 above (8192)
  TMF_MAX_IN_FLIGHT        requests handled at once per process, 503 above (256)
  TMF_BODY_TIMEOUT         seconds a request body may take to arrive, 408 after (10)
  TMF_HEADER_TIMEOUT       seconds a request line and headers may take, connection closed after (10)
  TMF_QUERY_TIMEOUT_MS     maxTimeMS of every list query (5000)
  TMF_IDEMPOTENCY_TTL      seconds an Idempotency-Key is remembered (86400)
"""


def _fail(message: str) -> int:
    print(f"tmf-server: {message}", file=sys.stderr, flush=True)
    return 1


def _redacted(uri: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", uri)


@contextlib.contextmanager
def _metrics_folder():
    """A fresh private folder for the metric files of this command's processes (inherited through the
    environment), removed when the command ends."""
    if "prometheus_client" in sys.modules:  # its value class is chosen at import: it would count in memory only
        raise RuntimeError("prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set")
    folder = tempfile.mkdtemp(prefix="tmf-server-metrics-")
    os.environ[MULTIPROC_ENV] = folder
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _bind(host: str, port: int) -> socket.socket:
    """The bound socket the server will listen on (the worker processes inherit it). It listens only once the
    app is ready: until then connections are refused rather than left waiting."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _listen_failure(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is already in use; stop what uses it or choose another (--port, TMF_PORT)"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def _database_problem(settings: Settings) -> str | None:
    """None if the database answers a ping within TMF_DB_TIMEOUT_MS, else why not."""
    from pymongo.errors import PyMongoError

    from tmf_server.store.database import connect

    try:
        client = connect(settings.mongodb_uri, settings)
    except (PyMongoError, ValueError) as exc:
        return f"MONGODB_URI is not usable: {exc}"
    try:
        client.admin.command("ping")
        return None
    except PyMongoError as exc:
        first_line = str(exc).split(" (configured timeouts")[0].split(", Timeout:")[0]
        return f"the database at {_redacted(settings.mongodb_uri)} does not answer: {first_line}"
    finally:
        client.close()


def listen_hosts(settings: Settings) -> tuple[str, ...]:
    return (settings.host, settings.admin_host) if settings.admin_port and settings.admin != "off" else (settings.host,)


def start_admin_listener(settings: Settings, sock: socket.socket | None):
    """The admin API on its own listener (`--admin-port`), in a thread of this process; None when not asked for."""
    if sock is None:
        return None
    import uvicorn

    server = uvicorn.Server(uvicorn.Config("tmf_server.app:admin_app_from_env", factory=True, host=settings.admin_host,
                                           port=settings.admin_port, log_config=None, access_log=False,
                                           http=http_protocol(settings)))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="admin-listener", daemon=True).start()
    print(f"Admin API:   http://{settings.admin_host}:{settings.admin_port}/admin/delivery", flush=True)
    return server


def http_protocol(settings: Settings):
    """The HTTP protocol of every listener: uvicorn's, with a deadline for each request head."""
    from tmf_server.http_protocol import HeadTimeoutProtocol

    return functools.partial(HeadTimeoutProtocol, head_timeout=settings.header_timeout)


def serve(settings: Settings) -> int:
    import uvicorn

    from tmf_server.store.embedded import DataDirectoryInUse, EmbeddedEngine, EngineSupervisor

    problem = startup_problem(settings, listen_hosts(settings))
    if problem:  # before anything starts or binds: one clear line
        print(f"tmf-server: {problem}", file=sys.stderr, flush=True)
        return 2
    warning = exposure_warning(settings, listen_hosts(settings))
    if warning:
        print(warning, file=sys.stderr, flush=True)
    sockets: list[socket.socket] = []
    try:
        sockets.append(_bind(settings.host, settings.port))
        if settings.admin != "off" and settings.admin_port:
            sockets.append(_bind(settings.admin_host, settings.admin_port))
    except OSError as exc:
        for bound in sockets:
            bound.close()
        host, port = (settings.host, settings.port) if not sockets else (settings.admin_host, settings.admin_port)
        return _fail(_listen_failure(host, port, exc))
    sock, admin_sock = sockets[0], (sockets[1] if len(sockets) > 1 else None)
    engine = admin = supervisor = None

    def status() -> int:
        return ENGINE_LOST if supervisor is not None and supervisor.gave_up else 0

    try:
        with _metrics_folder():
            env = {"TMF_HOST": settings.host, "TMF_PORT": str(settings.port)}
            if settings.admin_port:
                env["TMF_ADMIN_PORT"] = str(settings.admin_port)
            if not settings.mongodb_uri:
                try:
                    engine = EmbeddedEngine(settings.data_dir, port=settings.engine_port).start()
                except DataDirectoryInUse as exc:
                    return _fail(f"{exc}; stop it, or choose another data directory (--data-dir, TMF_DATA_DIR)")
                except (RuntimeError, OSError) as exc:
                    return _fail(f"the embedded engine did not start: {exc} (see {settings.data_dir}/engine.log)")
                supervisor = EngineSupervisor(engine, give_up=lambda: os.kill(os.getpid(), signal.SIGTERM),
                                              delays=settings.engine_restart_delays).start()
                env["MONGODB_URI"] = engine.uri
                print(f"Embedded MongoDB-wire engine on {engine.uri} (data in {settings.data_dir}/)", flush=True)
            elif problem := _database_problem(settings):
                return _fail(problem)
            os.environ.update(env)  # uvicorn workers build the app from the environment
            root = f"http://{settings.host}:{settings.port}"
            print(f"TMF656 API:  {root}{BASE_PATH}/serviceProblem\nSwagger UI:  {root}{BASE_PATH}/ui/\n"
                  f"Health:      {root}/health/ready   Metrics: {root}/metrics\nStop with Ctrl-C (or SIGTERM).",
                  flush=True)
            # uvicorn re-raises SIGTERM/SIGINT after its shutdown; exiting through SystemExit runs the `finally`s.
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(status()))
            admin = start_admin_listener(settings, admin_sock)
            config = uvicorn.Config("tmf_server.app:app_from_env", factory=True, host=settings.host,
                                    port=settings.port, workers=settings.workers, log_config=None,
                                    access_log=False,  # tmf_server.monitoring writes the access log
                                    http=http_protocol(settings))
            server = uvicorn.Server(config)
            if config.workers > 1:
                from uvicorn.supervisors import Multiprocess

                Multiprocess(config, sockets=[sock]).run()
                return status()
            try:
                server.run(sockets=[sock])
            except KeyboardInterrupt:
                pass
            return status() if server.started else 1
    finally:
        if admin is not None:
            admin.should_exit = True
        for bound in sockets:
            bound.close()
        if supervisor is not None:
            supervisor.stop()
        if engine is not None:
            engine.stop()


def worker(settings: Settings, processes: int, metrics_port: int | None) -> int:
    if not settings.mongodb_uri:
        return _fail("tmf-server worker needs MONGODB_URI: the database the servers use (for the embedded engine, "
                     "start the server with TMF_ENGINE_PORT and use mongodb://127.0.0.1:PORT/).")
    if problem := _database_problem(settings):
        return _fail(problem)
    metrics_socket = None
    if metrics_port is not None:
        try:
            metrics_socket = _bind(settings.host, metrics_port)
        except OSError as exc:
            return _fail(_listen_failure(settings.host, metrics_port, exc))
    with _metrics_folder():
        from tmf_server.workers import run_workers

        return run_workers(settings, processes, metrics_socket)


def _settings(**overrides) -> Settings:
    from tmf_server import logs

    settings = Settings.from_env(**overrides)
    logs.configure(settings.log_level, settings.log_format)
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tmf-server", description="TMF656 Service Problem Management server")
    parser.add_argument("--version", action="version",
                        version=f"tmf-server {__version__} (Python {sys.version.split()[0]})")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="serve the API (starts the embedded engine without MONGODB_URI)",
                                    epilog=ENVIRONMENT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    serve_cmd.add_argument("--host", help="listen address (default 127.0.0.1, env TMF_HOST)")
    serve_cmd.add_argument("--port", type=int, help="listen port (default 8080, env TMF_PORT)")
    serve_cmd.add_argument("--workers", type=int, help="worker processes (default 1, env TMF_WORKERS)")
    serve_cmd.add_argument("--data-dir", help="embedded engine data directory (default ./var, env TMF_DATA_DIR)")
    serve_cmd.add_argument("--admin-port", type=int, help="serve the admin API on its own listener at this port, on "
                                                          "TMF_ADMIN_HOST (default 127.0.0.1), and not on the API's "
                                                          "(env TMF_ADMIN_PORT; TMF_ADMIN=off serves it nowhere)")
    worker_cmd = commands.add_parser("worker", help="deliver events to hub subscribers, without serving HTTP",
                                     epilog=ENVIRONMENT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    worker_cmd.add_argument("--processes", type=int, default=1, help="dispatcher processes (default 1)")
    worker_cmd.add_argument("--metrics-port", type=int,
                            help="serve Prometheus metrics at http://TMF_HOST:PORT/metrics (default: not served)")
    from tmf_server import listen
    from tmf_server.bench import command as bench
    from tmf_server.conformance import command as conformance

    conformance.add_parser(commands)
    bench.add_parser(commands)
    listen.add_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "listen":
        return listen.main(args, commands.choices["listen"].error)
    if args.command == "conformance":
        return conformance.main(args, commands.choices["conformance"].error)
    if args.command == "bench":
        return bench.main(args, commands.choices["bench"].error)
    overrides = {k: v for k, v in {"host": args.host, "port": args.port, "workers": args.workers,
                                   "admin_port": args.admin_port}.items()
                 if v not in (None, "")} if args.command == "serve" else {}  # --port 0 is refused, not ignored
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    try:
        settings = _settings(**overrides)
    except ValueError as exc:
        return _fail(f"invalid setting: {exc}")
    if args.command == "worker":
        return worker(settings, args.processes, args.metrics_port)
    return serve(settings)


if __name__ == "__main__":
    sys.exit(main())
