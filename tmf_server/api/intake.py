"""/intake operations (openapi/intake.yaml): notification listeners and the received-event records."""
from __future__ import annotations

import flask

from tmf_server import metrics
from tmf_server.api.context import absolute_url, api_base_url, correlation_id, raw_query_string, services
from tmf_server.api.paging import page_headers
from tmf_server.errors import NotFound
from tmf_server.intake.service import IntakeService, record_representation
from tmf_server.query.listing import page_limit

INTAKE_PATH = "/intake"


def _intake() -> IntakeService:
    return services().intake


def _record_base() -> str:
    return absolute_url(INTAKE_PATH + "/record")


def _receive(source: str, body: dict):
    record, status = _intake().receive(source, body, api_base=api_base_url(), record_base=_record_base(),
                                       correlation_id=correlation_id())
    metrics.intake_received(source, record["outcome"])
    return record, status, ({"Location": record["href"]} if status == 201 else {})


def receive_trouble_ticket_event(body):
    return _receive("troubleTicket", body)


def receive_alarm_event(body):
    return _receive("alarm", body)


def receive_sla_violation_event(body):
    return _receive("slaViolation", body)


def receive_event(body):
    return _receive("event", body)


def list_records(outcome=None, source=None, sourceEventId=None, serviceProblemId=None, offset=0, limit=None):
    settings = services().settings
    limit = page_limit(limit, settings.default_limit, settings.max_limit)
    repository = _intake().repository
    query = repository.record_query(outcome, source, sourceEventId, serviceProblemId)
    base = _record_base()
    items = [record_representation(d, base) for d in repository.find(query, offset, limit)]
    status, headers = page_headers(flask.request.base_url, raw_query_string(), offset, limit, len(items),
                                   repository.count(query))
    return items, status, headers


def get_record(id):  # noqa: A002 (the spec's parameter name)
    found = _intake().get(id)
    if found is None:
        raise NotFound(f"No received event with id '{id}'.")
    return record_representation(found, _record_base(), with_payload=True)
