"""Every operation of every served document, as the server serves it with TMF_AUTH=jwt: each declares one scope and
the 401/403 answers; without a token it is a 401, with a token lacking that scope a 403, with it neither."""
from __future__ import annotations

import re

import pytest
import requests

from tests.security.conftest import bearer
from tests.support.assertions import assert_tmf_error
from tests.support.client import report

DOCUMENTS = {"tmf656": "/tmf-api/serviceProblemManagement/v4", "admin": "/admin", "intake": "/intake"}
SCOPES = {"serviceProblem:read", "serviceProblem:write", "hub:read", "hub:write", "admin", "intake:read",
          "intake:write"}
# What each operation needs (docs/security.md has the same table): the served documents must say exactly this.
EXPECTED = {
    "GET /serviceProblem": "serviceProblem:read", "GET /serviceProblem/{id}": "serviceProblem:read",
    "POST /serviceProblem": "serviceProblem:write", "PATCH /serviceProblem/{id}": "serviceProblem:write",
    "DELETE /serviceProblem/{id}": "serviceProblem:write",
    "GET /serviceProblemEventRecord": "serviceProblem:read", "GET /serviceProblemEventRecord/{id}": "serviceProblem:read",
    "POST /problemAcknowledgement": "serviceProblem:write", "POST /problemUnacknowledgement": "serviceProblem:write",
    "POST /problemGroup": "serviceProblem:write", "POST /problemUngroup": "serviceProblem:write",
    "POST /hub": "hub:write", "DELETE /hub/{id}": "hub:write", "GET /hub": "hub:read", "GET /hub/{id}": "hub:read",
    "GET /delivery": "admin", "GET /delivery/{id}": "admin", "POST /delivery/redrive": "admin",
    "POST /delivery/{id}/redrive": "admin", "POST /delivery/send-now": "admin", "POST /delivery/{id}/send-now": "admin",
    "POST /troubleTicketEvent": "intake:write", "POST /alarmEvent": "intake:write",
    "POST /slaViolationEvent": "intake:write", "POST /event": "intake:write",
    "GET /record": "intake:read", "GET /record/{id}": "intake:read",
}


def operations(server) -> list[tuple[str, str, str, str, dict]]:
    """(document, METHOD, template, URL, operation) of every operation the server serves."""
    found = []
    for name, base in DOCUMENTS.items():
        document = requests.get(f"{server.root_url}{base}/openapi.json", timeout=10).json()
        for template, item in document["paths"].items():
            for method, operation in item.items():
                if method in ("get", "post", "patch", "delete", "put"):
                    url = server.root_url + base + re.sub(r"\{[^}]+\}", "no-such-id", template)
                    found.append((name, method.upper(), template, url, operation))
    return found


@pytest.fixture(scope="module")
def served(secured):
    return operations(secured)


def send(method: str, url: str, headers: dict | None = None) -> requests.Response:
    kwargs = {"headers": dict(headers or {}), "timeout": 30}
    if method in ("POST", "PATCH"):
        kwargs["json"] = {}
        if method == "PATCH":
            kwargs["headers"]["Content-Type"] = "application/merge-patch+json"
    return requests.request(method, url, **kwargs)


def test_every_served_operation_declares_exactly_its_scope_and_the_401_and_403_answers(served):
    declared = {}
    for _document, method, template, _url, operation in served:
        requirements = operation.get("security")
        assert requirements, f"{method} {template} declares no security"
        scopes = [scope for requirement in requirements for scope in requirement.get("oauth2", ())]
        assert len(scopes) == 1 and scopes[0] in SCOPES, (method, template, requirements)
        declared[f"{method} {template}"] = scopes[0]
        assert {"401", "403"} <= set(operation["responses"]), f"{method} {template} does not declare 401 and 403"
    assert declared == EXPECTED


def test_without_a_token_every_operation_is_401_with_a_bearer_challenge(served):
    for _document, method, template, url, _operation in served:
        response = send(method, url)
        assert_tmf_error(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), (method, template)


def test_a_token_without_the_scope_is_403_and_names_the_scope(served, idp):
    for _document, method, template, url, _operation in served:
        needed = EXPECTED[f"{method} {template}"]
        token = idp.token(sorted(SCOPES - {needed}))
        response = send(method, url, bearer(token))
        assert_tmf_error(response, 403, needed)
        challenge = response.headers["WWW-Authenticate"]
        assert 'error="insufficient_scope"' in challenge and f'scope="{needed}"' in challenge, challenge


def test_a_token_with_the_scope_passes_the_check(served, idp):
    """The answer then comes from the operation itself: an unknown id is a 404, an empty body a 400."""
    for _document, method, template, url, _operation in served:
        needed = EXPECTED[f"{method} {template}"]
        response = send(method, url, bearer(idp.token(needed)))
        assert response.status_code not in (401, 403), (method, template, response.status_code, response.text)
        assert response.status_code < 500, (method, template, response.text)


def test_a_refused_create_writes_nothing(secured, idp):
    url = secured.base_url + "/serviceProblem"
    reader = bearer(idp.token("serviceProblem:read"))

    def total() -> int:
        return int(requests.get(url + "?limit=1", headers=reader, timeout=10).headers["X-Total-Count"])

    before = total()
    assert_tmf_error(requests.post(url, json=report(), timeout=10), 401)
    assert_tmf_error(requests.post(url, json=report(), headers=reader, timeout=10), 403)
    assert total() == before
    created = requests.post(url, json=report(), headers=bearer(idp.token("serviceProblem:write")), timeout=10)
    assert created.status_code == 201 and total() == before + 1


def test_the_served_documents_and_swagger_ui_stay_readable_without_a_token(secured):
    for base in DOCUMENTS.values():
        assert requests.get(f"{secured.root_url}{base}/openapi.json", timeout=10).status_code == 200
        assert requests.get(f"{secured.root_url}{base}/ui/", timeout=10).status_code == 200


def test_without_authentication_the_served_documents_declare_none(server):
    """TMF_AUTH=off (the default on loopback): the documents say what the server does, no security at all."""
    for _document, method, template, _url, operation in operations(server):
        assert "security" not in operation and not {"401", "403"} & set(operation["responses"]), (method, template)
    for base in DOCUMENTS.values():
        document = requests.get(f"{server.root_url}{base}/openapi.json", timeout=10).json()
        assert "securitySchemes" not in document.get("components", {}) and "security" not in document
