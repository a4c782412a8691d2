"""Waiting for something to happen without assuming how fast the machine is: poll, with a generous bound."""
from __future__ import annotations

import time


def wait_for(condition, timeout: float = 60.0, message: str = "condition", interval: float = 0.05):
    """Polls `condition` until it returns something truthy (returned) or fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}; last value: {last!r}")
