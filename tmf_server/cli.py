"""tmf-server: command line (serve, worker, conformance, bench)."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

import uvicorn

from tmf_server.bench import command as bench
from tmf_server.conformance import command as conformance
from tmf_server.security.contract import exposure_warning, startup_problem
from tmf_server.settings import BASE_PATH, Settings
from tmf_server.store.embedded import EmbeddedEngine, EngineSupervisor

ENGINE_LOST = 3  # exit status when the embedded engine died and could not be restarted


def listen_hosts(settings: Settings) -> tuple[str, ...]:
    return (settings.host, settings.admin_host) if settings.admin_port and settings.admin != "off" else (settings.host,)


def start_admin_listener(settings: Settings):
    """The admin API on its own listener (`--admin-port`), in a thread of this process; None when not asked for."""
    if settings.admin == "off" or not settings.admin_port:
        return None
    server = uvicorn.Server(uvicorn.Config("tmf_server.app:admin_app_from_env", factory=True, host=settings.admin_host,
                                           port=settings.admin_port, log_level="info", access_log=False))
    threading.Thread(target=server.run, name="admin-listener", daemon=True).start()
    print(f"Admin API:   http://{settings.admin_host}:{settings.admin_port}/admin/delivery", flush=True)
    return server


def serve(settings: Settings) -> int:
    problem = startup_problem(settings, listen_hosts(settings))
    if problem:  # before anything starts or binds: one clear line
        print(f"tmf-server: {problem}", file=sys.stderr, flush=True)
        return 2
    warning = exposure_warning(settings, listen_hosts(settings))
    if warning:
        print(warning, file=sys.stderr, flush=True)
    engine = supervisor = None
    env = dict(os.environ)
    if not settings.mongodb_uri:
        engine = EmbeddedEngine(settings.data_dir, port=settings.engine_port).start()
        supervisor = EngineSupervisor(engine, give_up=lambda: os.kill(os.getpid(), signal.SIGTERM),
                                      delays=settings.engine_restart_delays).start()
        env["MONGODB_URI"] = engine.uri
        print(f"Embedded MongoDB-wire engine on {engine.uri} (data in {settings.data_dir}/)", flush=True)
    env.update({"TMF_HOST": settings.host, "TMF_PORT": str(settings.port)})
    if settings.admin_port:
        env["TMF_ADMIN_PORT"] = str(settings.admin_port)
    os.environ.update(env)  # uvicorn workers build the app from the environment
    base = f"http://{settings.host}:{settings.port}{BASE_PATH}"
    print(f"TMF656 API:  {base}/serviceProblem\nSwagger UI:  {base}/ui/", flush=True)
    def status() -> int:
        return ENGINE_LOST if supervisor is not None and supervisor.gave_up else 0

    # uvicorn re-raises SIGTERM/SIGINT after its shutdown; exiting through SystemExit lets `finally` stop the engine.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(status()))
    admin = None
    try:
        admin = start_admin_listener(settings)
        uvicorn.run("tmf_server.app:app_from_env", factory=True, host=settings.host, port=settings.port,
                    workers=settings.workers, log_level="info", access_log=False)
    finally:
        if admin is not None:
            admin.should_exit = True
        if supervisor is not None:
            supervisor.stop()
        if engine is not None:
            engine.stop()
    return status()


def worker(settings: Settings, processes: int) -> int:
    if not settings.mongodb_uri:
        print("tmf-server worker needs MONGODB_URI: the database the servers use (for the embedded engine, "
              "start the server with TMF_ENGINE_PORT and use mongodb://127.0.0.1:PORT/).", file=sys.stderr)
        return 2
    from tmf_server.events.workers import run_workers

    return run_workers(settings, processes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tmf-server", description="TMF656 Service Problem Management server")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="serve the API (starts the embedded engine without MONGODB_URI)")
    serve_cmd.add_argument("--host", help="listen address (default 127.0.0.1, env TMF_HOST)")
    serve_cmd.add_argument("--port", type=int, help="listen port (default 8080, env TMF_PORT)")
    serve_cmd.add_argument("--workers", type=int, help="worker processes (default 1, env TMF_WORKERS)")
    serve_cmd.add_argument("--data-dir", help="embedded engine data directory (default ./var, env TMF_DATA_DIR)")
    serve_cmd.add_argument("--admin-port", type=int, help="serve the admin API on its own listener at this port, on "
                                                          "TMF_ADMIN_HOST (default 127.0.0.1), and not on the API's "
                                                          "(env TMF_ADMIN_PORT; TMF_ADMIN=off serves it nowhere)")
    worker_cmd = commands.add_parser("worker", help="deliver events to hub subscribers, without serving HTTP")
    worker_cmd.add_argument("--processes", type=int, default=1, help="dispatcher processes (default 1)")
    conformance.add_parser(commands)
    bench.add_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "conformance":
        return conformance.main(args, commands.choices["conformance"].error)
    if args.command == "bench":
        return bench.main(args, commands.choices["bench"].error)
    logging.basicConfig(level=logging.INFO)
    if args.command == "worker":
        return worker(Settings.from_env(), args.processes)
    overrides = {k: v for k, v in {"host": args.host, "port": args.port, "workers": args.workers,
                                   "admin_port": args.admin_port}.items() if v}
    if args.data_dir:
        from pathlib import Path
        overrides["data_dir"] = Path(args.data_dir)
    return serve(Settings.from_env(**overrides))


if __name__ == "__main__":
    sys.exit(main())
