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
