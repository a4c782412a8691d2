"""Runs the checks one after another and keeps an outcome for each."""
from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from tmf_server.conformance.checks import Check
from tmf_server.conformance.client import Client
from tmf_server.conformance.session import CheckFailed, CheckSkipped, Options, Session

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass
class Outcome:
    check: Check
    result: str
    reason: str = ""
    seconds: float = 0.0
    exchange: dict | None = None  # the request that failed, and its answer
    notes: list[str] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        """A failure that makes the run fail: a required check that did not pass."""
        return self.result == FAILED and self.check.required


@dataclass
class Run:
    base_url: str
    started: str
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not any(o.blocking for o in self.outcomes)

    def count(self, result: str) -> int:
        return sum(1 for o in self.outcomes if o.result == result)


Progress = Callable[[int, int, Check, "Outcome | None"], None]


def run_checks(base_url: str, checks: Sequence[Check], options: Options, *, timeout: float,
               headers: dict[str, str] | None = None, progress: Progress | None = None) -> Run:
    run = Run(base_url, datetime.now(timezone.utc).isoformat(timespec="seconds"))
    began = time.monotonic()
    client = Client(base_url, timeout=timeout, headers=headers)
    try:
        for index, current in enumerate(checks):
            if progress:
                progress(index, len(checks), current, None)
            outcome = run_one(current, Session(client, options))
            run.outcomes.append(outcome)
            if progress:
                progress(index + 1, len(checks), current, outcome)
    finally:
        client.close()
    run.seconds = time.monotonic() - began
    return run


def run_one(current: Check, session: Session) -> Outcome:
    began = time.monotonic()
    outcome = Outcome(current, PASSED)
    try:
        current.run(session)
    except CheckFailed as failure:
        outcome.result, outcome.reason = FAILED, str(failure)
        outcome.exchange = failure.exchange.as_report() if failure.exchange else None
    except CheckSkipped as skip:
        outcome.result, outcome.reason = SKIPPED, str(skip)
    except Exception as error:  # an answer the check did not foresee still fails the check, never the run
        outcome.result = FAILED
        outcome.reason = f"unexpected answer ({type(error).__name__}: {error}); " \
                         f"{traceback.format_exception_only(error)[-1].strip()}"
        last = session.client.last
        outcome.exchange = last.as_report() if last else None
    finally:
        session.clean_up()
    outcome.notes = list(session.notes)
    outcome.seconds = time.monotonic() - began
    return outcome
