"""TMF656 task operations (/problemAcknowledgement, /problemUnacknowledgement, /problemGroup, /problemUngroup).

Each carries the task out and answers 201 with the task resource; tasks are not stored (no Location, no GET)."""
from __future__ import annotations

from tmf_server.api.context import api_base_url, correlation_id, services
from tmf_server.problems.tasks import ProblemTasks


def _tasks() -> ProblemTasks:
    return ProblemTasks(services().problems)


def createProblemAcknowledgement(body):
    return _tasks().acknowledge(body, api_base_url(), correlation_id()), 201


def createProblemUnacknowledgement(body):
    return _tasks().unacknowledge(body, api_base_url(), correlation_id()), 201


def createProblemGroup(body):
    return _tasks().group(body, api_base_url(), correlation_id()), 201


def createProblemUngroup(body):
    return _tasks().ungroup(body, api_base_url(), correlation_id()), 201
