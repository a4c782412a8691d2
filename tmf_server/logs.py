"""Logging of every process (server, uvicorn workers, dispatcher workers): level and format from the settings.

`text`: `2026-11-30T10:00:00.123Z INFO tmf_server.access: 127.0.0.1:5123 "GET /path" 200 1.2 ms correlation=-`.
`json`: one JSON object per line with `time`, `level`, `logger`, `message`, the access fields of an access line
(`method`, `path`, `status`, `durationMs`, `correlationId`, `client`) and `exception` when there is one.
"""
from __future__ import annotations

import json
import logging
import sys
import time

def _utc_time(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    def __init__(self, prefix: str = ""):
        super().__init__()
        self.prefix = prefix

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_utc_time(record)} {self.prefix}{record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def __init__(self, prefix: str = ""):
        super().__init__()
        self.process_name = prefix.strip() or None

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": _utc_time(record), "level": record.levelname, "logger": record.name,
                 "message": record.getMessage()}
        if self.process_name:
            entry["process"] = self.process_name
        entry.update(getattr(record, "access", None) or {})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str, fmt: str, prefix: str = "") -> None:
    """Replaces the root handlers with one on stderr; uvicorn's loggers propagate to it (log_config=None)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(prefix) if fmt == "json" else TextFormatter(prefix))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):  # uvicorn's own handlers, if any were set
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # tmf_server.monitoring writes the access log
