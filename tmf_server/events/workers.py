"""`tmf-server worker`: N dispatcher processes, each with its own MongoClient, until SIGTERM or SIGINT."""
from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
import time

from pymongo.errors import PyMongoError

from tmf_server.events.dispatcher import Dispatcher, ensure_indexes
from tmf_server.settings import Settings
from tmf_server.store.database import connect

log = logging.getLogger(__name__)

RESTART_PAUSE = 5.0  # a worker process that ended by itself is started again, at most this often per slot


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def _worker_main(settings: Settings, index: int, log_level: int) -> None:
    """One worker process: a Dispatcher on its own client until a signal, then a clean stop."""
    logging.basicConfig(level=log_level, format=f"%(asctime)s worker-{index} %(levelname)s %(name)s: %(message)s")
    stop = _stop_on_signals()
    client = connect(settings.mongodb_uri, settings)
    db = client[settings.database]
    try:
        ensure_indexes(db)
    except PyMongoError as exc:
        log.warning("indexes not ensured, database unreachable: %s", exc)
    dispatcher = Dispatcher(db, settings, name=f"worker-{index}").start()
    log.info("dispatcher %s started", dispatcher.owner)
    while not stop.wait(1.0):
        pass
    if not dispatcher.stop(settings.delivery_timeout + 5):
        log.warning("dispatcher %s: attempts still in flight at exit; their leases will expire", dispatcher.owner)
    client.close()


def run_workers(settings: Settings, processes: int) -> int:
    """Runs `processes` dispatcher processes until SIGTERM/SIGINT, restarting any that end by themselves."""
    if not settings.mongodb_uri:
        raise ValueError("run_workers needs settings.mongodb_uri (the database the servers use)")
    context = multiprocessing.get_context("spawn")  # no fork of a process holding threads or clients
    level = logging.getLogger().getEffectiveLevel()
    stop = _stop_on_signals()

    def launch(index: int):
        process = context.Process(target=_worker_main, args=(settings, index, level), name=f"tmf-worker-{index}")
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
    return 0
