"""Routing errors: unknown routes and ids (404), unsupported methods (405), HEAD and OPTIONS; always a TMF630
Error in application/json, never a 5xx."""
from __future__ import annotations

import re
import uuid
from urllib.parse import quote

import pytest
import requests

from tests.support.assertions import assert_tmf_error, nothing_written
from tests.support.client import MERGE, report

NOT_FOUND = re.compile(r"not found|no resource", re.IGNORECASE)
COLLECTION_METHODS = {"GET", "POST"}
ITEM_METHODS = {"GET", "PATCH", "DELETE"}


def allowed(response: requests.Response) -> set[str]:
    assert "Allow" in response.headers, dict(response.headers)
    return {m.strip().upper() for m in response.headers["Allow"].split(",") if m.strip()} - {"HEAD", "OPTIONS"}


# ---------------------------------------------------------------------------------------------------------
# 404: unknown routes


@pytest.mark.parametrize("method, where", [
    ("GET", "api:/nothing"),
    ("POST", "api:/nothing"),
    ("DELETE", "api:/nothing"),
    ("GET", "api:/serviceProblems"),
    ("GET", "api:/ServiceProblem"),
    ("GET", "api:/serviceProblem/some-id/extra"),
    ("GET", "root:/nothing"),
    ("POST", "root:/nothing"),
    ("GET", "root:/"),
    ("GET", "root:/tmf-api/serviceProblemManagement/v5/serviceProblem"),
    ("GET", "root:/tmf-api/troubleTicket/v4/troubleTicket"),
])
def test_unknown_route_is_404(api, server, method, where):
    scope, path = where.split(":", 1)
    url = (server.base_url if scope == "api" else server.root_url) + path
    kwargs = {"json": report()} if method == "POST" else {}
    with nothing_written(api):
        response = api.request(method, url, **kwargs)
        error = assert_tmf_error(response, 404)
    assert NOT_FOUND.search(error["message"]), error["message"]


# ---------------------------------------------------------------------------------------------------------
# 404: unknown ids, named in the message


UNKNOWN_IDS = [
    pytest.param(str(uuid.uuid4()), id="uuid"),
    pytest.param("does-not-exist", id="word"),
    pytest.param('{"$ne": null}', id="operator-json"),
    pytest.param("$where", id="dollar-where"),
    pytest.param("caf\u00e9-\u00fc", id="non-ascii"),
]


@pytest.mark.parametrize("problem_id", UNKNOWN_IDS)
def test_get_unknown_id_is_404_naming_it(api, problem_id):
    assert_tmf_error(api.get(quote(problem_id, safe="")), 404, problem_id)


def test_get_unknown_id_with_fields_is_404(api):
    problem_id = str(uuid.uuid4())
    assert_tmf_error(api.request("GET", f"/serviceProblem/{problem_id}?fields=status"), 404, problem_id)


@pytest.mark.parametrize("problem_id", UNKNOWN_IDS)
def test_patch_unknown_id_is_404_naming_it(api, problem_id):
    response = api.patch(quote(problem_id, safe=""), {"priority": 2}, content_type=MERGE)
    assert_tmf_error(response, 404, problem_id)


@pytest.mark.parametrize("problem_id", UNKNOWN_IDS)
def test_delete_unknown_id_is_404_naming_it(api, problem_id):
    api.created()  # something that an operator-shaped id would match
    with nothing_written(api):
        assert_tmf_error(api.delete(quote(problem_id, safe="")), 404, problem_id)


def test_unknown_id_is_not_read_as_an_operator(api):
    # If '{"$ne": null}' reached the store as an operator it would match some report and answer 200.
    api.created()
    assert api.total() > 0
    assert_tmf_error(api.get(quote('{"$ne": null}', safe="")), 404)


# ---------------------------------------------------------------------------------------------------------
# 405: methods the served document does not declare, with the Allow header


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_unsupported_method_on_the_collection_is_405(api, method):
    kwargs = {"json": report()} if method != "DELETE" else {}
    with nothing_written(api):
        response = api.request(method, "/serviceProblem", **kwargs)
        assert_tmf_error(response, 405, method)
    assert allowed(response) == COLLECTION_METHODS


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_unsupported_method_on_an_existing_item_is_405_and_changes_nothing(api, method):
    created = api.created()
    with nothing_written(api):
        response = api.request(method, f"/serviceProblem/{created['id']}", json=report(priority=9))
        assert_tmf_error(response, 405, method)
    assert allowed(response) == ITEM_METHODS
    assert api.get(created["id"]).json() == created


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_unsupported_method_on_an_unknown_item_is_405(api, method):
    with nothing_written(api):
        response = api.request(method, f"/serviceProblem/{uuid.uuid4()}", json=report())
        assert_tmf_error(response, 405, method)
    assert allowed(response) == ITEM_METHODS


def test_trace_is_405(api):
    response = api.request("TRACE", "/serviceProblem")
    assert_tmf_error(response, 405, "TRACE")
    assert allowed(response) == COLLECTION_METHODS


# ---------------------------------------------------------------------------------------------------------
# HEAD and OPTIONS: whatever is sensible, never a 5xx. The document declares neither, so the contract check
# (which demands 405 for undeclared methods) is off and these tests check the answers themselves.

def test_head_on_the_collection_answers_as_get_without_body(api):
    api.created()
    get = api.list("limit=1")
    response = api.request("HEAD", "/serviceProblem?limit=1", check=False)
    assert response.status_code == get.status_code
    assert response.headers["X-Total-Count"] == get.headers["X-Total-Count"]
    assert int(response.headers["X-Total-Count"]) >= 1
    assert response.content == b""


def test_head_on_an_existing_item_is_a_bodiless_200(api):
    created = api.created()
    response = api.request("HEAD", f"/serviceProblem/{created['id']}", check=False)
    assert response.status_code == 200
    assert response.headers.get("ETag")
    assert response.content == b""


def test_head_on_an_unknown_item_is_a_bodiless_404(api):
    response = api.request("HEAD", f"/serviceProblem/{uuid.uuid4()}", check=False)
    assert_tmf_error(response, 404, body=False)


def test_head_on_an_unknown_route_is_a_bodiless_404(api):
    response = api.request("HEAD", "/nothing", check=False)
    assert_tmf_error(response, 404, body=False)


@pytest.mark.parametrize("path, methods", [
    ("/serviceProblem", COLLECTION_METHODS),
    ("/serviceProblem/{id}", ITEM_METHODS),
])
def test_options_answers_the_allowed_methods_and_is_never_a_5xx(api, path, methods):
    created = api.created()
    response = api.request("OPTIONS", path.format(id=created["id"]), check=False)
    assert response.status_code in (200, 204, 405), response.text[:500]
    assert allowed(response) == methods
    if response.status_code == 405:
        assert_tmf_error(response, 405, "OPTIONS")
