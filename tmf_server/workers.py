"""`tmf-server worker`: N dispatcher processes, each with its own services (tmf_server/wiring.py) and MongoClient,
until SIGTERM or SIGINT. Each also runs the intake's sweep, as the server's dispatcher does."""
from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler

from prometheus_client.exposition import ThreadingWSGIServer, make_wsgi_app

from tmf_server import logs, metrics
from tmf_server.app import load_spec
from tmf_server.events.gauges import StoreGauges
from tmf_server.settings import Settings
from tmf_server.store.database import connect
from tmf_server.wiring import build_services

log = logging.getLogger(__name__)

RESTART_PAUSE = 5.0  # a worker process that ended by itself is started again, at most this often per slot


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def _worker_main(settings: Settings, index: int) -> None:
    """One worker process: a Dispatcher (which also runs the intake's sweep) on its own client until a signal,
    then a clean stop."""
    logs.configure(settings.log_level, settings.log_format, prefix=f"worker-{index} ")
    stop = _stop_on_signals()
    services = build_services(settings, load_spec(), dispatcher=True, dispatcher_name=f"worker-{index}")
    dispatcher = services.dispatcher.start()
    log.info("dispatcher %s started", dispatcher.owner)
    while not stop.wait(1.0):
        pass
    if not dispatcher.stop(settings.delivery_timeout + 5):
        log.warning("dispatcher %s: attempts still in flight at exit; their leases will expire", dispatcher.owner)
    services.close()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:  # a scrape every few seconds is not worth a log line
        pass


def _serve_metrics(settings: Settings, sock: socket.socket):
    """/metrics of the worker processes (their multiprocess files) and of the database, on `sock`."""
    client = connect(settings.mongodb_uri, settings)
    registry = metrics.registry(StoreGauges(client[settings.database]))
    server = ThreadingWSGIServer(sock.getsockname()[:2], _QuietHandler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock  # bound by the command, so a busy port was a clear error before anything started
    server.server_address = sock.getsockname()
    server.server_name, server.server_port = server.server_address[:2]
    server.setup_environ()
    server.server_activate()  # listen
    server.set_app(make_wsgi_app(registry))
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    log.info("metrics at http://%s:%s/metrics", settings.host, sock.getsockname()[1])
    return server, client


def run_workers(settings: Settings, processes: int, metrics_socket: socket.socket | None = None) -> int:
    """Runs `processes` dispatcher processes until SIGTERM/SIGINT, restarting any that end by themselves;
    with `metrics_socket`, serves their metrics on it."""
    if not settings.mongodb_uri:
        raise ValueError("run_workers needs settings.mongodb_uri (the database the servers use)")
    context = multiprocessing.get_context("spawn")  # no fork of a process holding threads or clients
    stop = _stop_on_signals()
    exporter = _serve_metrics(settings, metrics_socket) if metrics_socket is not None else None

    def launch(index: int):
        process = context.Process(target=_worker_main, args=(settings, index), name=f"tmf-worker-{index}")
        process.start()
        return process, time.monotonic()

    children = [launch(i) for i in range(max(1, processes))]
    log.info("%d dispatcher worker processes started", len(children))
    while not stop.wait(1.0):
        for index, (process, started) in enumerate(children):
            if not process.is_alive() and time.monotonic() - started >= RESTART_PAUSE:
                log.warning("worker %d ended with %s; starting it again", index, process.exitcode)
                children[index] = launch(index)
    for process, _started in children:
        if process.is_alive():
            process.terminate()  # SIGTERM: the worker stops its dispatcher cleanly
    deadline = time.monotonic() + settings.delivery_timeout + 10
    for process, _started in children:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
    if exporter is not None:
        server, client = exporter
        server.shutdown()
        server.server_close()
        client.close()
    return 0
