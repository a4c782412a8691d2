"""DELETE /serviceProblem/{id}."""
from __future__ import annotations

import uuid

import pytest

from tests.support.client import Api


def unique_category() -> str:
    return f"test.delete.{uuid.uuid4().hex}"


def assert_error(response, status: int, code: str, mentions: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert body["reason"] == {404: "Not Found", 412: "Precondition Failed"}[status], body
    assert body["status"] == str(status), body
    assert body["@type"] == "Error", body
    if mentions:
        assert mentions in body["message"], body
    return body


def test_delete_is_204_without_body(api: Api):
    created = api.created()
    response = api.delete(created["id"])
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert "ETag" not in response.headers


def test_get_after_delete_is_404(api: Api):
    created = api.created()
    assert api.get(created["id"]).status_code == 200
    assert api.delete(created["id"]).status_code == 204
    assert_error(api.get(created["id"]), 404, "notFound", created["id"])


def test_patch_after_delete_is_404(api: Api):
    created = api.created()
    assert api.delete(created["id"]).status_code == 204
    assert_error(api.patch(created["id"], {"priority": 1}), 404, "notFound", created["id"])


def test_second_delete_is_404(api: Api):
    created = api.created()
    assert api.delete(created["id"]).status_code == 204
    assert_error(api.delete(created["id"]), 404, "notFound", created["id"])


def test_unknown_id_is_404(api: Api):
    missing = str(uuid.uuid4())
    assert_error(api.delete(missing), 404, "notFound", missing)


def test_delete_only_removes_the_named_report(api: Api):
    category = unique_category()
    keep = api.created(category=category)
    gone = api.created(category=category)
    assert api.delete(gone["id"]).status_code == 204
    assert api.get(keep["id"]).json() == keep
    assert [p["id"] for p in api.list(f"category={category}").json()] == [keep["id"]]


@pytest.mark.parametrize("stale_kind", ["previous-version", "never-issued"])
def test_delete_with_stale_if_match_is_412_and_report_stays(api: Api, stale_kind):
    created = api.created()
    stale = api.get(created["id"]).headers["ETag"]
    if stale_kind == "previous-version":
        assert api.patch(created["id"], {"priority": 1}).status_code == 200
    else:
        stale = '"not-a-version"'
    before = api.get(created["id"])
    assert before.headers["ETag"] != stale
    assert_error(api.delete(created["id"], headers={"If-Match": stale}), 412, "preconditionFailed")
    after = api.get(created["id"])
    assert after.status_code == 200
    assert (after.json(), after.headers["ETag"]) == (before.json(), before.headers["ETag"])


@pytest.mark.parametrize("if_match", ["current", "weak", "star", "list"])
def test_delete_with_matching_if_match_is_204(api: Api, if_match):
    created = api.created()
    assert api.patch(created["id"], {"priority": 1}).status_code == 200  # not the creation version any more
    etag = api.get(created["id"]).headers["ETag"]
    header = {"current": etag, "weak": f"W/{etag}", "star": "*", "list": f'"1", {etag}'}[if_match]
    response = api.delete(created["id"], headers={"If-Match": header})
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert api.get(created["id"]).status_code == 404


def test_delete_with_if_match_on_unknown_id_is_404(api: Api):
    missing = str(uuid.uuid4())
    assert_error(api.delete(missing, headers={"If-Match": "*"}), 404, "notFound", missing)


def test_list_total_drops_by_exactly_one(api: Api):
    category = unique_category()
    reports = [api.created(category=category) for _ in range(3)]
    query = f"category={category}"
    assert api.total(query) == 3
    assert api.delete(reports[1]["id"]).status_code == 204
    assert api.total(query) == 2
    assert sorted(p["id"] for p in api.list(query).json()) == sorted([reports[0]["id"], reports[2]["id"]])
    assert api.delete(reports[1]["id"]).status_code == 404
    assert api.total(query) == 2, "a repeated DELETE removed something else"


def test_total_unchanged_after_refused_delete(api: Api):
    category = unique_category()
    created = api.created(category=category)
    assert api.total(f"category={category}") == 1
    assert api.delete(created["id"], headers={"If-Match": '"stale"'}).status_code == 412
    assert api.total(f"category={category}") == 1
