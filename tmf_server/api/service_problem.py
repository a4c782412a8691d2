"""/serviceProblem operations (TMF656 v4 operationIds)."""
from __future__ import annotations

import flask

from tmf_server.api.context import api_base_url, correlation_id, services
from tmf_server.api.idempotency import once
from tmf_server.api.lists import list_response
from tmf_server.errors import NotFound
from tmf_server.problems.patching import JSON_PATCH, MERGE_PATCH
from tmf_server.query.listing import parse_fields

COLLECTION = "/serviceProblem"


def listServiceProblem(fields=None, offset=None, limit=None, sort=None):
    app = services()
    return list_response(app.problem_repository, app.problem_catalog, COLLECTION,
                         fields=fields, offset=offset, limit=limit, sort=sort)


def createServiceProblem(body):
    problems, base, correlation = services().problems, api_base_url() + COLLECTION, correlation_id()

    def created(stored) -> tuple:
        return stored.representation, 201, {"Location": stored.representation["href"], "ETag": stored.etag}

    def stored_under(problem_id: str):
        try:
            return created(problems.get(problem_id))
        except NotFound:
            return None

    return once(body, lambda problem_id: created(problems.create(body, base, correlation, problem_id)),
                recover=stored_under, what=lambda problem_id: f"{base}/{problem_id}")


def retrieveServiceProblem(id, fields=None):  # noqa: A002 (the spec's parameter name)
    app = services()
    stored = app.problems.get(id, parse_fields(app.problem_catalog, fields))
    return stored.representation, 200, {"ETag": stored.etag}


def patchServiceProblem(id, body):  # noqa: A002
    kind = JSON_PATCH if flask.request.mimetype == "application/json-patch+json" else MERGE_PATCH
    stored = services().problems.patch(id, kind, body, if_match=flask.request.headers.get("If-Match"),
                                       correlation_id=correlation_id())
    return stored.representation, 200, {"ETag": stored.etag}


def deleteServiceProblem(id):  # noqa: A002
    services().problems.delete(id, if_match=flask.request.headers.get("If-Match"), correlation_id=correlation_id())
    response = flask.Response(status=204)
    del response.headers["Content-Type"]  # no body; Flask's default text/html broke response validation (500)
    return response
