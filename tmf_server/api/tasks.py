"""TMF656 task operations (/problemAcknowledgement, /problemUnacknowledgement, /problemGroup, /problemUngroup).

Each carries the task out and answers 201 with the task resource; tasks are not stored (no Location, no GET)."""
from __future__ import annotations

from tmf_server.api.context import api_base_url, correlation_id, services
from tmf_server.api.idempotency import once


def _run(task: str, body):
    """The task at most once per Idempotency-Key (a retry whose first answer was not recorded runs it again: each
    task checks the reports' current state first)."""
    tasks, base, correlation = services().tasks, api_base_url(), correlation_id()
    return once(body, lambda _id: (getattr(tasks, task)(body, base, correlation), 201, {}))


def createProblemAcknowledgement(body):
    return _run("acknowledge", body)


def createProblemUnacknowledgement(body):
    return _run("unacknowledge", body)


def createProblemGroup(body):
    return _run("group", body)


def createProblemUngroup(body):
    return _run("ungroup", body)
