"""/serviceProblem operations (TMF656 v4 operationIds)."""
from __future__ import annotations

import flask

from tmf_server.api.context import api_base_url, raw_query_string, services
from tmf_server.api.paging import page_headers
from tmf_server.problems.patching import JSON_PATCH, MERGE_PATCH
from tmf_server.query.listing import parse_fields, parse_list_query

COLLECTION = "/serviceProblem"


def listServiceProblem(fields=None, offset=None, limit=None, sort=None):
    app = services()
    raw = raw_query_string()
    query = parse_list_query(app.problem_catalog, raw, fields=fields, sort=sort, offset=offset, limit=limit,
                             default_limit=app.settings.default_limit, max_limit=app.settings.max_limit)
    page = app.problems.list(query)
    status, headers = page_headers(api_base_url() + COLLECTION, raw, query.offset, query.limit,
                                   len(page.items), page.total)
    return page.items, status, headers


def createServiceProblem(body):
    stored = services().problems.create(body, href_base=api_base_url() + COLLECTION)
    return stored.representation, 201, {"Location": stored.representation["href"], "ETag": stored.etag}


def retrieveServiceProblem(id, fields=None):  # noqa: A002 (the spec's parameter name)
    app = services()
    stored = app.problems.get(id, parse_fields(app.problem_catalog, fields))
    return stored.representation, 200, {"ETag": stored.etag}


def patchServiceProblem(id, body):  # noqa: A002
    kind = JSON_PATCH if flask.request.mimetype == "application/json-patch+json" else MERGE_PATCH
    stored = services().problems.patch(id, kind, body, if_match=flask.request.headers.get("If-Match"))
    return stored.representation, 200, {"ETag": stored.etag}


def deleteServiceProblem(id):  # noqa: A002
    services().problems.delete(id, if_match=flask.request.headers.get("If-Match"))
    response = flask.Response(status=204)
    del response.headers["Content-Type"]  # no body; Flask's default text/html broke response validation (500)
    return response
