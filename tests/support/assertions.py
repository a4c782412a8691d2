"""Assertions shared by the API tests: the TMF Error shape, and that a refused request wrote nothing."""
from __future__ import annotations

from contextlib import contextmanager

import requests

LEAKS = ("Traceback", 'File "', "site-packages", "Failed validating", "On instance")


def assert_tmf_error(response: requests.Response, status: int, *fragments: str, body: bool = True) -> dict | None:
    """The status, a TMF630 Error in application/json whose message contains every fragment, no internals."""
    assert response.status_code == status, response.text[:500]
    media = response.headers.get("Content-Type", "")
    assert media.split(";")[0].strip().lower() == "application/json", media
    for leak in LEAKS:
        assert leak not in response.text, f"{leak!r} in {response.text[:500]!r}"
    if not body:  # HEAD: the headers of the error, no content
        assert response.content == b""
        return None
    error = response.json()
    assert isinstance(error, dict), error
    assert error.get("@type") == "Error", error
    assert error.get("status") == str(status), error
    for field in ("code", "reason", "message"):
        assert isinstance(error.get(field), str) and error[field].strip(), (field, error)
    for fragment in fragments:
        assert fragment in error["message"], f"{fragment!r} not in message {error['message']!r}"
    return error


@contextmanager
def nothing_written(api):
    """The number of stored reports is the same after the block (tests run one at a time)."""
    before = api.total()
    yield
    assert api.total() == before, "a refused request changed the number of stored reports"


def report_state(api, problem_id: str) -> tuple[dict, str, list[str]]:
    """What a refused change must leave alone: the stored representation (lastUpdate included), its ETag (the
    stored version) and the ids of the report's event records (the events a write carries)."""
    response = api.get(problem_id)
    assert response.status_code == 200, response.text[:500]
    records = api.request("GET", f"/serviceProblemEventRecord?serviceProblem.id={problem_id}&limit=1000")
    assert records.status_code == 200, records.text[:500]
    return response.json(), response.headers["ETag"], sorted(record["id"] for record in records.json())


@contextmanager
def report_unchanged(api, problem_id: str):
    """The report, its version and its events are the same after the block, and no report was added."""
    before, total = report_state(api, problem_id), api.total()
    yield before
    after = report_state(api, problem_id)
    assert after[0] == before[0], "a refused request changed the stored report"
    assert after[1] == before[1], "a refused request wrote a new version of the report"
    assert after[2] == before[2], "a refused request recorded an event"
    assert api.total() == total, "a refused request changed the number of stored reports"


@contextmanager
def no_subscription_written(api):
    """The number of hub subscriptions is the same after the block."""
    def count() -> int:
        response = api.request("GET", "/hub?limit=1")
        assert response.status_code == 200, response.text[:500]
        return int(response.headers["X-Total-Count"])

    before = count()
    yield
    assert count() == before, "a refused subscription was stored"
