"""Runs the embedded MongoDB-wire engine (nx-27017 on SQLite) as a managed child process."""
from __future__ import annotations

import logging
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import pymongo

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def terminate(process: subprocess.Popen, timeout: float) -> None:
    """Ends a child process: SIGTERM, then SIGKILL if it is still there after `timeout` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def die_with_parent() -> None:
    """In the child before exec: Linux sends it SIGTERM when the server process ends, even by SIGKILL."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: stop() on a normal exit still ends the engine


class DataDirectoryInUse(RuntimeError):
    """Another live engine serves the data directory (its server is the engine's parent process)."""

    def __init__(self, data_dir: Path, engine_pid: int, server_pid: int | None):
        self.engine_pid, self.server_pid = engine_pid, server_pid
        owner = f"another tmf-server (pid {server_pid}; its engine is pid {engine_pid})" if server_pid else \
            f"an embedded engine (pid {engine_pid})"
        super().__init__(f"the data directory {data_dir} is already served by {owner}")


def _engine_command() -> list[str]:
    exe = shutil.which("nx-27017") or str(Path(sys.executable).with_name("nx-27017"))
    return [exe]


class EmbeddedEngine:
    """nx-27017 on a free loopback port, its data file under data_dir; start() waits until it answers."""

    def __init__(self, data_dir: Path, port: int | None = None):
        self.data_dir = Path(data_dir)
        self.port = port
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def _clear_stale_pid_file(self) -> None:
        """The engine refuses to start while its pid file names a process that exists, even a zombie left
        by a crashed server whose children nobody reaped; only a live engine on this data keeps the file."""
        pid_file = self.data_dir / "engine.pid"
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            with open(f"/proc/{pid}/stat") as stat:
                state, parent = stat.read().rsplit(")", 1)[1].split()[:2]
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                engine = b"nx-27017" in cmdline.read()
        except OSError:
            state, parent, engine = "gone", "0", False
        if engine and state != "Z":
            raise DataDirectoryInUse(self.data_dir, pid, int(parent) if int(parent) > 1 else None)
        pid_file.unlink(missing_ok=True)

    def start(self, timeout: float = 30.0) -> "EmbeddedEngine":
        fixed = self.port is not None
        last_error: Exception | None = None
        for _attempt in range(3):  # the chosen free port can be taken before the engine binds it
            try:
                return self._launch(self.port or free_port(), timeout)
            except RuntimeError as exc:
                last_error = exc
                if not fixed:
                    self.port = None
        raise RuntimeError(f"embedded engine did not start: {last_error}")

    def restart(self, timeout: float = 30.0) -> "EmbeddedEngine":
        """Starts the engine again on the same port (clients keep their URI), after it died."""
        self.stop(timeout=3)
        return self._launch(self.port, timeout)

    def _launch(self, port: int, timeout: float) -> "EmbeddedEngine":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._clear_stale_pid_file()
        command = _engine_command() + [
            "--db", str(self.data_dir / "tmf656.db"), "--host", "127.0.0.1", "-p", str(port),
            "--pid-file", str(self.data_dir / "engine.pid"), "--log-file", str(self.data_dir / "engine.log"),
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True, preexec_fn=die_with_parent)
        self.port = port
        try:
            self._wait_ready(timeout)
        except RuntimeError:
            self.stop()
            raise
        log.info("embedded engine on %s (data in %s)", self.uri, self.data_dir)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"engine exited with {self.process.returncode}")
            try:
                client = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=250, connectTimeoutMS=250)
                try:
                    client.admin.command("ping")
                    return
                finally:
                    client.close()
            except pymongo.errors.PyMongoError:
                time.sleep(0.05)
        raise RuntimeError("engine did not answer in time")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        terminate(self.process, timeout)
        self.process = None


class EngineSupervisor:
    """Restarts the embedded engine when it dies, on the same port, after each delay of `delays` in turn (the
    backoff); meanwhile the server answers 503 with Retry-After, and it serves again by itself once the engine is
    back (pymongo reconnects). When the last attempt fails it calls `give_up`, which ends the server with a
    non-zero status so that an outer supervisor can act."""

    POLL_SECONDS = 0.25

    def __init__(self, engine: EmbeddedEngine, give_up: Callable[[], None], delays: tuple[float, ...]):
        self.engine = engine
        self.give_up = give_up
        self.delays = delays
        self.gave_up = False
        self.restarts = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="engine-supervisor", daemon=True)

    def start(self) -> "EngineSupervisor":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopping.wait(self.POLL_SECONDS):
            process = self.engine.process
            if process is None or process.poll() is None:
                continue
            log.error("embedded engine (pid %s) exited with %s; restarting it", process.pid, process.returncode)
            if not self._restart():
                if not self._stopping.is_set():
                    self.gave_up = True
                    log.critical("embedded engine could not be restarted after %d attempts; stopping the server",
                                 len(self.delays))
                    self.give_up()
                return

    def _restart(self) -> bool:
        for attempt, delay in enumerate(self.delays, 1):
            if self._stopping.wait(delay):
                return False
            try:
                self.engine.restart()
            except (RuntimeError, OSError) as exc:
                log.error("embedded engine restart %d of %d failed: %s", attempt, len(self.delays), exc)
                continue
            self.restarts += 1
            log.warning("embedded engine restarted on %s (attempt %d)", self.engine.uri, attempt)
            return True
        return False
