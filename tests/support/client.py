"""An HTTP client for the API that checks every response against the contract."""
from __future__ import annotations

import json as jsonlib
from urllib.parse import urlsplit

import requests

from tests.support.contract import Contract

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def report(**overrides) -> dict:
    """A valid ServiceProblem_Create body: a customer's QoS degradation report."""
    body = {
        "category": "customer.qosDegradation",
        "priority": 3,
        "description": "Broadband throughput far below the contracted rate every evening",
        "reason": "throughput degradation",
        "originatorParty": {"id": "C42", "name": "Jane Customer", "@referredType": "Individual"},
        "relatedParty": [{"id": "C42", "role": "customer", "@referredType": "Individual"}],
        "affectedService": [{"id": "svc-broadband-42", "name": "Fibre 500"}],
        # The symptom and the time window: with the customer and the service, the report is actionable.
        "characteristic": [{"name": "metric", "value": "downlinkThroughput"},
                           {"name": "degradationStart", "value": "2026-11-20T18:00:00Z"}],
    }
    body.update(overrides)
    return body


class Api:
    def __init__(self, base_url: str, contract: Contract):
        self.base_url = base_url
        self.contract = contract
        self.session = requests.Session()

    def request(self, method: str, path: str, *, check: bool = True, **kwargs) -> requests.Response:
        url = path if path.startswith("http") else self.base_url + path
        kwargs.setdefault("timeout", 30)
        response = self.session.request(method, url, **kwargs)
        if check:
            self.contract.check(method, urlsplit(url).path, response)
        return response

    def create(self, body=None, **kwargs) -> requests.Response:
        return self.request("POST", "/serviceProblem", json=report() if body is None else body, **kwargs)

    def created(self, **overrides) -> dict:
        response = self.create(report(**overrides))
        assert response.status_code == 201, response.text
        return response.json()

    def get(self, problem_id: str, **kwargs) -> requests.Response:
        return self.request("GET", f"/serviceProblem/{problem_id}", **kwargs)

    def list(self, query: str = "", **kwargs) -> requests.Response:
        return self.request("GET", "/serviceProblem" + (f"?{query}" if query else ""), **kwargs)

    def patch(self, problem_id: str, body, content_type: str = MERGE, **kwargs) -> requests.Response:
        headers = {"Content-Type": content_type, **kwargs.pop("headers", {})}
        data = body if isinstance(body, (bytes, str)) else jsonlib.dumps(body)
        return self.request("PATCH", f"/serviceProblem/{problem_id}", data=data, headers=headers, **kwargs)

    def delete(self, problem_id: str, **kwargs) -> requests.Response:
        return self.request("DELETE", f"/serviceProblem/{problem_id}", **kwargs)

    def total(self, query: str = "") -> int:
        """X-Total-Count of a list: the number of stored reports matching `query`."""
        response = self.list(query + ("&" if query else "") + "limit=1")
        return int(response.headers["X-Total-Count"])
