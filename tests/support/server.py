"""Starts the real server process (`python -m tmf_server serve`) and worker processes, and stops them."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tmf_server.settings import BASE_PATH
from tmf_server.store.embedded import free_port, terminate

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class ChildProcess:
    """A `python -m tmf_server ...` process with a clean environment and its output in a log file."""

    log_path: Path
    process: subprocess.Popen | None = None

    def _spawn(self, arguments: list[str], env: dict) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("TMF_") and k != "MONGODB_URI"}
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "tmf_server", *arguments], cwd=PROJECT_ROOT,
                                        env={**clean, "PYTHONUNBUFFERED": "1", **env},
                                        stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self, timeout: float = 30.0) -> None:
        if self.process:
            terminate(self.process, timeout)
        self.process = None
        if getattr(self, "_log", None):
            self._log.close()

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.process = None
        self._log.close()


class ServerProcess(ChildProcess):
    def __init__(self, data_dir: Path, env: dict | None = None, port: int | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.extra_env = env or {}
        self.log_path = self.data_dir / "server.log"

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + BASE_PATH

    def start(self, timeout: float = 60.0) -> "ServerProcess":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._spawn(["serve", "--host", "127.0.0.1", "--port", str(self.port)],
                    {"TMF_DATA_DIR": str(self.data_dir), "TMF_VALIDATE_RESPONSES": "1", **self.extra_env})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                requests.get(self.base_url + "/serviceProblem?limit=1", timeout=2)
                return self
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not answer within {timeout}s:\n{self.log()}")


class WorkerProcess(ChildProcess):
    """`python -m tmf_server worker`: dispatcher processes without HTTP, sharing the server's database."""

    def __init__(self, log_path: Path, mongodb_uri: str, processes: int = 1, env: dict | None = None,
                 arguments: list[str] | None = None):
        self.log_path = Path(log_path)
        self.mongodb_uri = mongodb_uri
        self.processes = processes
        self.extra_env = env or {}
        self.arguments = arguments or []

    def start(self) -> "WorkerProcess":
        self._spawn(["worker", "--processes", str(self.processes), *self.arguments],
                    {"MONGODB_URI": self.mongodb_uri, **self.extra_env})
        return self
