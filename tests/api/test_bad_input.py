"""Bad input (issue 5's catalogue) to POST, GET and PATCH /serviceProblem, POST and GET /hub and GET
/serviceProblemEventRecord: always a TMF630 Error naming what is wrong, never a 5xx; a refused POST writes
nothing, a refused PATCH leaves the report, its ETag and its events as they were, a refused subscription is not
stored. The test server runs with TMF_MAX_BODY_BYTES=65536 (tests/conftest.py). More PATCH refusals (read-only
attributes, JSON Patch operations and paths, operator keys) are in test_patch.py."""
from __future__ import annotations

import http.client
import json
import uuid
from urllib.parse import quote, urlsplit

import pytest
import requests
from connexion.json_schema import Draft4RequestValidator, format_error_with_path
from requests.structures import CaseInsensitiveDict

from tests.intake.support import IntakeContract
from tests.support.assertions import (
    assert_tmf_error,
    no_subscription_written,
    nothing_written,
    report_unchanged,
)
from tests.support.client import JSON_PATCH, MERGE, report
from tests.support.schemas import body_schema
from tmf_server.api.validators import without_server_reported
from tmf_server.validation import FORMAT_CHECKER

MAX_BODY = 65536
JSON = {"Content-Type": "application/json"}


def post_raw(api, data, headers=None, **kwargs) -> requests.Response:
    return api.request("POST", "/serviceProblem", data=data, headers=headers if headers is not None else JSON, **kwargs)


def raw_get(api, target: str) -> requests.Response:
    """GET with the query sent byte for byte as written (requests percent-encodes '<' and '>')."""
    base = urlsplit(api.base_url)
    connection = http.client.HTTPConnection(base.hostname, base.port, timeout=30)
    try:
        connection.request("GET", base.path + target)
        answer = connection.getresponse()
        response = requests.Response()
        response.status_code = answer.status
        response.headers = CaseInsensitiveDict(answer.getheaders())
        response._content = answer.read()
        response.encoding = "utf-8"
    finally:
        connection.close()
    api.contract.check("GET", base.path + target.split("?")[0], response)
    return response


def body_of(**overrides) -> dict:
    return report(**overrides)


def without(name: str) -> dict:
    body = report()
    del body[name]
    return body


def nested(depth: int, leaf="x", kind: str = "object"):
    value = leaf
    for _ in range(depth):
        value = {"a": value} if kind == "object" else [value]
    return value


def nested_text(depth: int, kind: str = "object") -> bytes:
    """A valid report whose characteristic value is nested `depth` levels (built as text: json.dumps recurses)."""
    opening, closing = ('{"a":', "}") if kind == "object" else ("[", "]")
    template = json.dumps(report(characteristic=[{"name": "deep", "value": "__VALUE__"}]))
    return template.replace('"__VALUE__"', opening * depth + "1" + closing * depth).encode()


def sized(total: int) -> bytes:
    """A valid report of exactly `total` bytes, its description padded."""
    template = json.dumps(report(description="")).encode()
    return json.dumps(report(description="x" * (total - len(template)))).encode()


# ---------------------------------------------------------------------------------------------------------
# POST: bodies that are not a JSON object


@pytest.mark.parametrize("data, fragments", [
    pytest.param(b'{"category": "x",', ["line 1 column"], id="truncated-object"),
    pytest.param(b"{'category': 'x'}", ["line 1 column"], id="single-quotes"),
    pytest.param(json.dumps(report()).encode() + b" trailing", ["Extra data"], id="trailing-garbage"),
    pytest.param(b"{,}", ["line 1 column"], id="stray-comma"),
    pytest.param(b"   ", ["line 1 column"], id="whitespace-only"),
    pytest.param(b"\xef\xbb\xbf" + json.dumps(report()).encode(), ["BOM"], id="utf8-bom"),
])
def test_malformed_json_is_400(api, data, fragments):
    with nothing_written(api):
        assert_tmf_error(post_raw(api, data), 400, *fragments)


def test_empty_body_is_400(api):
    with nothing_written(api):
        assert_tmf_error(post_raw(api, b""), 400, "required")


@pytest.mark.parametrize("value, fragments", [
    pytest.param([], ["not of type 'object'"], id="array"),
    pytest.param([report()], ["not of type 'object'"], id="array-of-report"),
    pytest.param("a report", ["not of type 'object'"], id="string"),
    pytest.param(42, ["not of type 'object'"], id="number"),
    pytest.param(True, ["not of type 'object'"], id="boolean"),
    pytest.param(None, ["must not be empty"], id="null"),
])
def test_json_that_is_not_an_object_is_400(api, value, fragments):
    with nothing_written(api):
        assert_tmf_error(post_raw(api, json.dumps(value).encode()), 400, *fragments)


@pytest.mark.parametrize("data", [
    pytest.param(b'{"category": "\xff\xfe", "priority": 1}', id="invalid-start-byte"),
    pytest.param(json.dumps(report(description="caf\u00e9"), ensure_ascii=False).encode("latin-1"), id="latin-1"),
    pytest.param(json.dumps(report()).encode("utf-16"), id="utf-16"),
])
def test_body_that_is_not_utf8_is_400(api, data):
    with nothing_written(api):
        assert_tmf_error(post_raw(api, data), 400, "UTF-8")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_numbers_are_400(api, constant):
    # Python's parser reads them; JSON (RFC 8259) has no such numbers, and the store refuses them.
    data = json.dumps(report(characteristic=[{"name": "ratio", "value": 0.5}])).replace("0.5", constant)
    with nothing_written(api):
        assert_tmf_error(post_raw(api, data.encode()), 400, constant, "characteristic")


# ---------------------------------------------------------------------------------------------------------
# POST: content types. A missing or wrong one is 415, whatever the body.


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/xml", "text/json", "application/merge-patch+json", "application/json-patch+json",
    "application/x-www-form-urlencoded",
])
def test_wrong_content_type_is_415(api, content_type):
    with nothing_written(api):
        response = post_raw(api, json.dumps(report()).encode(), headers={"Content-Type": content_type})
        assert_tmf_error(response, 415, content_type, "application/json")


def test_missing_content_type_is_415(api):
    session = api.session
    request = requests.Request("POST", api.base_url + "/serviceProblem", data=json.dumps(report()).encode())
    prepared = session.prepare_request(request)
    prepared.headers.pop("Content-Type", None)
    assert "Content-Type" not in prepared.headers
    with nothing_written(api):
        response = session.send(prepared, timeout=30)
        api.contract.check("POST", urlsplit(prepared.url).path, response)
        assert_tmf_error(response, 415, "Content-Type", "application/json")


def test_form_data_is_415(api):
    with nothing_written(api):
        response = api.request("POST", "/serviceProblem", data={"category": "x", "priority": "1"})
        assert_tmf_error(response, 415, "application/x-www-form-urlencoded")


def test_multipart_form_data_is_415(api):
    with nothing_written(api):
        response = api.request("POST", "/serviceProblem",
                               files={"report": ("report.json", json.dumps(report()), "application/json")})
        assert_tmf_error(response, 415, "multipart/form-data")


# ---------------------------------------------------------------------------------------------------------
# POST: the schema and the documented create rules


@pytest.mark.parametrize("name", ["category", "priority", "description", "reason", "originatorParty"])
def test_each_mandatory_attribute_missing_is_400(api, name):
    with nothing_written(api):
        assert_tmf_error(api.create(without(name)), 400, f"'{name}'", "required")


@pytest.mark.parametrize("overrides, fragments", [
    pytest.param({"priority": "high"}, ["priority", "integer"], id="priority-string"),
    pytest.param({"priority": 1.5}, ["priority", "integer"], id="priority-float"),
    pytest.param({"priority": True}, ["priority", "integer"], id="priority-boolean"),
    pytest.param({"priority": None}, ["priority", "integer"], id="priority-null"),
    pytest.param({"category": 7}, ["category", "string"], id="category-number"),
    pytest.param({"description": []}, ["description", "string"], id="description-array"),
    pytest.param({"reason": {}}, ["reason", "string"], id="reason-object"),
    pytest.param({"originatorParty": "C42"}, ["originatorParty", "object"], id="originatorParty-string"),
    pytest.param({"originatorParty": [{"id": "C42", "@referredType": "Individual"}]},
                 ["originatorParty", "object"], id="originatorParty-array"),
    pytest.param({"originatorParty": {"@referredType": "Individual"}}, ["originatorParty", "'id'"],
                 id="originatorParty-without-id"),
    pytest.param({"originatorParty": {"id": "C42"}}, ["originatorParty", "@referredType"],
                 id="originatorParty-without-referredType"),
    pytest.param({"originatorParty": {"id": 42, "@referredType": "Individual"}}, ["originatorParty", "string"],
                 id="originatorParty-id-number"),
])
def test_wrong_type_on_a_mandatory_attribute_is_400(api, overrides, fragments):
    with nothing_written(api):
        assert_tmf_error(api.create(report(**overrides)), 400, *fragments)


@pytest.mark.parametrize("status", ["open", "Acknowledged", "ACKNOWLEDGED", "", "in_progress"])
def test_unknown_status_value_is_400(api, status):
    with nothing_written(api):
        assert_tmf_error(api.create(report(status=status)), 400, "status", f"'{status}'")


@pytest.mark.parametrize("status", ["inProgress", "pending", "held", "resolved", "rejected", "closed", "cancelled"])
def test_status_other_than_acknowledged_on_create_is_400(api, status):
    with nothing_written(api):
        assert_tmf_error(api.create(report(status=status)), 400, "acknowledged", f"'{status}'")


def test_status_acknowledged_on_create_is_accepted(api):
    # The control for the two tests above: the rule is about the value, not about sending a status.
    assert api.created(status="acknowledged")["status"] == "acknowledged"


@pytest.mark.parametrize("name", ["foo", "Priority", "priorityy", "_id", "_version", "@id", "serviceProblem"])
def test_attribute_not_in_the_schema_is_400_naming_it(api, name):
    with nothing_written(api):
        assert_tmf_error(api.create(report(**{name: 1})), 400, name, "not an attribute")


@pytest.mark.parametrize("name, value", [
    ("id", "my-own-id"),
    ("href", "http://example.com/serviceProblem/1"),
    ("creationDate", "2026-01-01T00:00:00Z"),
    ("lastUpdate", "2026-01-01T00:00:00Z"),
    ("statusChangeDate", "2026-01-01T00:00:00Z"),
    ("resolutionDate", "2026-01-01T00:00:00Z"),
])
def test_server_owned_attribute_is_400_naming_it(api, name, value):
    with nothing_written(api):
        assert_tmf_error(api.create(report(**{name: value})), 400, name, "set by the server")
    if name == "id":  # and certainly not stored under the client's id
        assert_tmf_error(api.get(value), 404, value)


@pytest.mark.parametrize("name", ["parentProblem", "underlyingProblem"])
def test_group_links_on_create_are_400_naming_the_tasks(api, name):
    # Created with a link, a report would point at a problem that does not point back; the group task links both.
    with nothing_written(api):
        assert_tmf_error(api.create(report(**{name: [{"id": "other"}]})), 400, name, "/problemGroup")


# ---------------------------------------------------------------------------------------------------------
# POST: names MongoDB would read as operators or paths


@pytest.mark.parametrize("overrides, fragments", [
    pytest.param({"$where": "sleep(10000) || true"}, ["$where"], id="top-level-$where"),
    pytest.param({"$set": {"status": "closed"}}, ["$set"], id="top-level-$set"),
    pytest.param({"originatorParty": {"id": "C42", "@referredType": "Individual", "$gt": ""}}, ["$gt"],
                 id="originatorParty-$gt"),
    pytest.param({"note": [{"$set": 1}]}, ["$set", "note"], id="note-$set"),
    pytest.param({"note": [{"text": "ok", "author": {"$ne": None}}]}, ["note"], id="note-author-operator"),
    pytest.param({"relatedParty": [{"id": {"$ne": None}, "@referredType": "Individual"}]}, ["relatedParty"],
                 id="relatedParty-id-operator"),
    pytest.param({"characteristic": [{"name": "n", "value": {"$inc": {"priority": 1}}}]}, ["$inc"],
                 id="characteristic-value-$inc"),
    pytest.param({"characteristic": [{"name": "n", "value": {"a": {"b": [{"$where": "1"}]}}}]}, ["$where"],
                 id="deeply-nested-$where"),
    pytest.param({"a.b": 1}, ["a.b"], id="top-level-dotted"),
    pytest.param({"originatorParty.id": "C1"}, ["originatorParty.id"], id="top-level-dotted-path"),
    pytest.param({"characteristic": [{"name": "n", "value": {"x.y": 1}}]}, ["x.y"], id="nested-dotted"),
    pytest.param({"characteristic": [{"name": "n", "value": [[{"$x": 1}]]}]}, ["$x"], id="in-nested-arrays"),
])
def test_operator_and_dotted_keys_are_400_and_never_reach_the_store(api, overrides, fragments):
    with nothing_written(api):
        assert_tmf_error(api.create(report(**overrides)), 400, *fragments)


def test_originator_party_that_is_only_an_operator_is_400(api):
    # The schema refuses it first (no id, no @referredType): still a 400 about originatorParty, nothing stored.
    with nothing_written(api):
        assert_tmf_error(api.create(report(originatorParty={"$gt": ""})), 400, "originatorParty")


# ---------------------------------------------------------------------------------------------------------
# POST: size and shape limits


def test_body_at_the_limit_is_accepted_and_one_byte_over_is_413(api):
    at_limit = sized(MAX_BODY)
    assert len(at_limit) == MAX_BODY
    assert post_raw(api, at_limit).status_code == 201
    over = sized(MAX_BODY + 1)
    assert len(over) == MAX_BODY + 1
    with nothing_written(api):
        assert_tmf_error(post_raw(api, over), 413, str(MAX_BODY))


def test_large_description_is_413(api):
    with nothing_written(api):
        assert_tmf_error(api.create(report(description="x" * (4 * MAX_BODY))), 413, str(MAX_BODY))


def _chunks(data: bytes, size: int = 4096):
    for start in range(0, len(data), size):
        yield data[start:start + size]


def test_chunked_body_over_the_limit_is_413(api):
    data = json.dumps(report(description="x" * (MAX_BODY + 5000))).encode()
    with nothing_written(api):
        response = post_raw(api, _chunks(data))
        assert response.request.headers.get("Transfer-Encoding") == "chunked"
        assert "Content-Length" not in response.request.headers
        assert_tmf_error(response, 413, str(MAX_BODY))


def test_chunked_body_under_the_limit_is_created(api):
    # The control for the test above: the 413 is about the size, not about chunked transfer.
    description = f"chunked {uuid.uuid4()}"
    response = post_raw(api, _chunks(json.dumps(report(description=description)).encode(), 64))
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 201, response.text
    assert api.get(response.json()["id"]).json()["description"] == description


@pytest.mark.parametrize("depth, kind", [
    pytest.param(2000, "object", id="2000-objects"),
    pytest.param(2000, "array", id="2000-arrays"),
    pytest.param(900, "object", id="900-objects"),
    pytest.param(150, "object", id="150-objects-over-mongodb-bson-depth"),
])
def test_deeply_nested_body_is_a_4xx_tmf_error(api, depth, kind):
    with nothing_written(api):
        response = post_raw(api, nested_text(depth, kind))
        assert_tmf_error(response, 400, "nested")


def test_moderately_nested_value_is_accepted(api):
    # The control: ordinary structure inside a characteristic value, and brackets inside strings, are fine.
    value = nested(20, leaf="{[" * 500)
    created = api.created(characteristic=[{"name": "shape", "value": value}])
    assert api.get(created["id"]).json()["characteristic"][0]["value"] == value


# ---------------------------------------------------------------------------------------------------------
# GET /serviceProblem: the TMF630 query language. A bad query is a 400, never an empty 200.


@pytest.mark.parametrize("query, fragments", [
    pytest.param("foo=1", ["foo"], id="unknown-attribute"),
    pytest.param("originatorParty.nickname=x", ["nickname"], id="unknown-sub-attribute"),
    pytest.param("priority.foo=1", ["foo", "not an operator"], id="unknown-operator-suffix"),
    pytest.param("priority.between=1", ["between", "not an operator"], id="between-operator"),
    pytest.param("status.in=held", ["in", "not an operator"], id="in-operator"),
    pytest.param("priority!1", ["not an operator"], id="unknown-symbolic-!"),
    pytest.param("status!~closed", ["not an operator"], id="unknown-symbolic-!~"),
    pytest.param("priority.gte>=2", ["two operators"], id="two-operators"),
    pytest.param("priority.gte%3E=2", ["two operators"], id="two-operators-encoded"),
    pytest.param("originatorParty=x", ["originatorParty", "object"], id="filter-on-object"),
    pytest.param("relatedParty=x", ["relatedParty", "list"], id="filter-on-array"),
    pytest.param("relatedParty.ne=x", ["relatedParty", "list"], id="operator-on-array"),
    pytest.param("priority=high", ["priority", "'high'"], id="priority-not-integer"),
    pytest.param("priority.gt=1.5", ["priority", "'1.5'"], id="priority-gt-float"),
    pytest.param("priority=", ["priority", "''"], id="priority-empty"),
    pytest.param("creationDate.gt=yesterday", ["creationDate", "'yesterday'"], id="date-word"),
    pytest.param("creationDate%3C2026-13-45", ["creationDate", "2026-13-45"], id="impossible-date-encoded"),
    pytest.param("creationDate.lt=2026-02-30", ["creationDate", "2026-02-30"], id="february-30"),
    pytest.param("status=open", ["status", "'open'"], id="unknown-enum-value"),
    pytest.param("status=held,open", ["status", "'open'"], id="unknown-enum-value-in-list"),
    pytest.param("priority.gt=1,2", ["priority", "one value"], id="list-with-range-operator"),
    pytest.param("creationDate%3E=2026-01-01,2026-02-01", ["creationDate", "one value"], id="list-with-symbolic-range"),
    pytest.param("description.regex=(", ["description", "regular expression"], id="invalid-regex"),
    pytest.param("description.regex=a**", ["description", "regular expression"], id="invalid-regex-quantifier"),
    pytest.param("fields=foo", ["fields", "foo"], id="fields-unknown"),
    pytest.param("fields=priority,foo", ["fields", "foo"], id="fields-one-unknown"),
    pytest.param("fields=originatorParty.id", ["fields", "originatorParty.id"], id="fields-nested-path"),
    pytest.param("sort=foo", ["foo"], id="sort-unknown"),
    pytest.param("sort=-foo", ["foo"], id="sort-unknown-descending"),
    pytest.param("sort=relatedParty.id", ["sort", "relatedParty.id"], id="sort-array-path"),
    pytest.param("sort=relatedParty", ["sort", "relatedParty"], id="sort-array"),
    pytest.param("sort=originatorParty", ["sort", "originatorParty"], id="sort-object"),
    pytest.param("=1", ["no name"], id="no-name"),
    pytest.param("priority", ["priority", "no value"], id="no-value"),
])
def test_bad_query_is_400(api, query, fragments):
    assert_tmf_error(api.list(query), 400, *fragments)


@pytest.mark.parametrize("target, fragments", [
    pytest.param("/serviceProblem?creationDate<2026-13-45", ["creationDate", "2026-13-45"], id="impossible-date"),
    pytest.param("/serviceProblem?priority.gte>=2", ["two operators"], id="two-operators"),
    pytest.param("/serviceProblem?priority<>2", ["priority", "'>2'"], id="less-greater"),
])
def test_bad_query_with_unencoded_symbols_is_400(api, target, fragments):
    assert_tmf_error(raw_get(api, target), 400, *fragments)


@pytest.mark.parametrize("query, fragments", [
    pytest.param("offset=-1", ["-1", "minimum of 0"], id="offset-negative"),
    pytest.param("limit=0", ["0", "minimum of 1"], id="limit-zero"),
    pytest.param("limit=-5", ["-5", "minimum of 1"], id="limit-negative"),
    pytest.param("limit=1001", ["1001", "maximum of 1000"], id="limit-over-maximum"),
    pytest.param("limit=1&limit=2000", ["2000", "maximum of 1000"], id="limit-repeated-over-maximum"),
    pytest.param("limit=abc", ["'abc'", "integer"], id="limit-word"),
    pytest.param("offset=abc", ["'abc'", "integer"], id="offset-word"),
    pytest.param("limit=1.5", ["'1.5'", "integer"], id="limit-decimal"),
    pytest.param("offset=1.5", ["'1.5'", "integer"], id="offset-decimal"),
    pytest.param("limit=1e3", ["'1e3'", "integer"], id="limit-exponent"),
    pytest.param("limit=", ["''", "integer"], id="limit-empty"),
    pytest.param(f"limit={10**30}", [str(10**30), "maximum of 1000"], id="limit-huge"),
    pytest.param(f"offset={10**30}", ["offset"], id="offset-huge"),
    pytest.param(f"offset={2**63}", ["offset"], id="offset-just-over-int64"),
    pytest.param("offset.gt=5", ["offset"], id="offset-with-operator"),
])
def test_absurd_paging_is_400(api, query, fragments):
    assert_tmf_error(api.list(query), 400, *fragments)


@pytest.mark.parametrize("query, name", [("limit=0", "limit"), ("offset=-1", "offset"), ("limit=abc", "limit")])
def test_paging_error_names_the_parameter(api, query, name):
    assert_tmf_error(api.list(query), 400, name)


def test_largest_offset_is_an_empty_page_not_an_error(api):
    # The control for offset-huge: the bound is the store's 64-bit integer, not an arbitrary one.
    response = api.list(f"offset={2**63 - 1}&limit=1")
    assert response.status_code == 200, response.text
    assert response.json() == []


# ---------------------------------------------------------------------------------------------------------
# GET /serviceProblem: MongoDB operators in query values are literal values


@pytest.mark.parametrize("query, fragments", [
    pytest.param("status=$ne", ["status", "'$ne'"], id="status-$ne"),
    pytest.param("status.ne=$exists", ["status", "'$exists'"], id="status-ne-$exists"),
    pytest.param("priority=$gt:0", ["priority", "'$gt:0'"], id="priority-$gt"),
    pytest.param('priority={"$gt":0}', ["priority", '{"$gt":0}'], id="priority-json-operator"),
    pytest.param("creationDate.gt=$now", ["creationDate", "'$now'"], id="date-$now"),
    pytest.param("priority[$gt]=0", ["priority[$gt]"], id="bracket-operator-in-name"),
    pytest.param("$where=1", ["$where"], id="$where-parameter"),
])
def test_operators_in_typed_query_values_are_400(api, query, fragments):
    assert_tmf_error(api.list(query), 400, *fragments)


@pytest.mark.parametrize("query", [
    pytest.param('category={"$ne":null}', id="category-json-$ne"),
    pytest.param("category=$ne", id="category-$ne"),
    pytest.param('description={"$regex":".*"}', id="description-json-$regex"),
    pytest.param('originatorParty.id={"$gt":""}', id="originatorParty-id-json-$gt"),
    pytest.param("relatedParty.id=$exists", id="relatedParty-id-$exists"),
    pytest.param("category.ne=$ne", id="ne-literal-$ne"),
])
def test_operators_in_string_query_values_are_literal(api, query):
    created = api.created(category=f"qos.{uuid.uuid4().hex[:8]}")
    scope = f"id={created['id']}"
    control = api.list(f"{scope}&category={created['category']}")
    assert [p["id"] for p in control.json()] == [created["id"]]  # the scope does find the report
    response = api.list(f"{query}&{scope}")
    assert response.status_code == 200, response.text
    if query.startswith("category.ne="):  # "is not the literal '$ne'": a value comparison, so the report matches
        assert [p["id"] for p in response.json()] == [created["id"]]
        return
    assert response.json() == []  # as an operator it would match the report
    assert response.headers["X-Total-Count"] == "0"


def test_operator_looking_string_is_matched_literally(api):
    category = f"$ne{uuid.uuid4().hex[:8]}"  # unique: other tests look for the absence of plain "$ne"
    literal = api.created(category=category, description='{"$gt": ""}')
    other = api.created()
    for query in (f"category={category}", 'description={"$gt": ""}'):
        found = {p["id"] for p in api.list(f"{query}&id={literal['id']},{other['id']}").json()}
        assert found == {literal["id"]}, query


def test_a_bad_term_fails_the_whole_query(api):
    # A valid filter next to a bad one is still a 400, not the valid filter's results.
    created = api.created()
    assert_tmf_error(api.list(f"id={quote(created['id'])}&foo=1"), 400, "foo")


def test_patch_without_content_type_is_415_and_changes_nothing(api):
    created = api.created()
    request = requests.Request("PATCH", f"{api.base_url}/serviceProblem/{created['id']}",
                               data=json.dumps({"name": "renamed"}).encode())
    prepared = api.session.prepare_request(request)
    prepared.headers.pop("Content-Type", None)
    assert "Content-Type" not in prepared.headers
    with report_unchanged(api, created["id"]) as (before, _, _):
        response = api.session.send(prepared, timeout=30)
        api.contract.check("PATCH", urlsplit(prepared.url).path, response)
        assert_tmf_error(response, 415, "Content-Type")
    assert before == created


@pytest.mark.parametrize("number", [2**63, -(2**63) - 1, 10**30])
def test_integers_beyond_64_bits_are_400_and_nothing_is_written(api, number):
    data = json.dumps(report(characteristic=[{"name": "metric", "value": number}]))
    with nothing_written(api):
        assert_tmf_error(post_raw(api, data.encode()), 400, str(number))


def test_a_path_with_control_characters_is_404(api):
    for path in ("/serviceProblem/%15%0A3", "/serviceProblem/a%00b", "/hub/%0D"):
        assert_tmf_error(api.request("GET", path), 404, "control characters")


# ---------------------------------------------------------------------------------------------------------
# POST: strings JSON can write but Unicode does not have, and dates the store cannot hold


@pytest.mark.parametrize("text", [
    pytest.param(json.dumps(report(description="@@")).replace('"@@"', '"\\ud800"'), id="description-lone-high"),
    pytest.param(json.dumps(report(reason="@@")).replace('"@@"', '"broken \\udc00 text"'), id="reason-lone-low"),
    pytest.param(json.dumps(report(characteristic=[{"name": "n", "value": {"@@": 1}}])).replace('"@@"', '"\\ud83d"'),
                 id="key-lone-surrogate"),
])
def test_lone_surrogate_escape_is_400_and_nothing_is_written(api, text):
    # "\ud800" is valid JSON text that decodes to no Unicode character; the store (UTF-8 BSON) cannot hold it.
    with nothing_written(api):
        assert_tmf_error(post_raw(api, text.encode()), 400, "surrogate")


def test_paired_surrogate_escape_is_a_character_and_accepted(api):
    # The control: a correctly paired escape is an ordinary character (U+1F600).
    text = json.dumps(report(description="@@")).replace('"@@"', '"smile \\ud83d\\ude00"')
    response = post_raw(api, text.encode())
    assert response.status_code == 201, response.text
    assert api.get(response.json()["id"]).json()["description"] == "smile \U0001F600"


@pytest.mark.parametrize("date, fragments", [
    pytest.param("2026-02-30T00:00:00Z", ["note", "date-time"], id="february-30"),
    pytest.param("2026-01-01T25:00:00Z", ["note", "date-time"], id="hour-25"),
    pytest.param("yesterday", ["note", "date-time"], id="word"),
    pytest.param("9999-12-31T23:59:59-01:00", ["note", "9999"], id="beyond-year-9999-in-utc"),
    pytest.param("0001-01-01T00:00:00+01:00", ["note", "0001"], id="before-year-1-in-utc"),
])
def test_invalid_date_in_a_body_is_400_and_nothing_is_written(api, date, fragments):
    with nothing_written(api):
        assert_tmf_error(api.create(report(note=[{"text": "called", "date": date}])), 400, *fragments)


def _jsonschema_refusal(body) -> str:
    """What Connexion answered with jsonschema alone: the first error of the served create body schema."""
    schema = without_server_reported(body_schema("tmf656", "/serviceProblem", "POST"))
    error = next(Draft4RequestValidator(schema, format_checker=FORMAT_CHECKER).iter_errors(body))
    return f"{error.message}{format_error_with_path(error)}"


@pytest.mark.parametrize("overrides", [
    pytest.param({"priority": 1.0}, id="integer-as-1.0"),
    pytest.param({"priority": True}, id="integer-as-true"),
    pytest.param({"priority": float("nan")}, id="integer-as-NaN"),
    pytest.param({"description": float("inf")}, id="string-as-Infinity"),
    pytest.param({"note": [{"text": "t", "date": "2024-02-30T00:00:00Z"}]}, id="february-30"),
    pytest.param({"note": [{"text": "t", "date": "2024-01-01T00:00:00"}]}, id="date-without-offset"),
    pytest.param({"@schemaLocation": "http://example.com/a b"}, id="uri-with-a-space"),
    pytest.param({"relatedParty": [{"role": "customer", "@referredType": "Individual"}]}, id="entry-without-id"),
    pytest.param({"originatorParty": {"id": 42, "@referredType": "Individual"}}, id="nested-wrong-type"),
])
def test_schema_refusals_are_jsonschemas_first_error_word_for_word(api, overrides):
    """The compiled check answers "valid" only: a refused body gets jsonschema's first error, as before it."""
    body = report(**overrides)
    with nothing_written(api):
        response = post_raw(api, json.dumps(body))
        error = assert_tmf_error(response, 400)
    assert (error["code"], error["message"]) == ("invalidRequest", _jsonschema_refusal(body))


# ---------------------------------------------------------------------------------------------------------
# PATCH: the same bad bodies, for JSON Merge Patch (two media types) and JSON Patch. A refused PATCH leaves
# the stored report, its ETag and its events exactly as they were.

PATCH_TYPES = [MERGE, "application/json", JSON_PATCH]


def patch_raw(api, problem_id: str, data, content_type: str | None) -> requests.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    return api.request("PATCH", f"/serviceProblem/{problem_id}", data=data, headers=headers)


def valid_patch(content_type: str, name: str = "renamed") -> bytes:
    """A patch that would succeed: the malformed variants below are made from it."""
    if content_type == JSON_PATCH:
        return json.dumps([{"op": "add", "path": "/name", "value": name}]).encode()
    return json.dumps({"name": name}).encode()


MALFORMED = {
    "truncated": (lambda body: body[:-1], ["line 1 column"]),
    "single-quotes": (lambda body: body.replace(b'"', b"'"), ["line 1 column"]),
    "trailing-garbage": (lambda body: body + b" trailing", ["Extra data"]),
    "whitespace-only": (lambda body: b"   ", ["line 1 column"]),
    "utf8-bom": (lambda body: b"\xef\xbb\xbf" + body, ["BOM"]),
    "empty": (lambda body: b"", ["required"]),
}


def test_the_valid_patch_the_malformed_ones_are_made_from_succeeds(api):
    # The control for the malformed-body tests: unspoilt, each patch is applied.
    for content_type in PATCH_TYPES:
        created = api.created()
        response = patch_raw(api, created["id"], valid_patch(content_type, content_type), content_type)
        assert response.status_code == 200, response.text
        assert api.get(created["id"]).json()["name"] == content_type


@pytest.mark.parametrize("content_type", PATCH_TYPES)
@pytest.mark.parametrize("spoil", sorted(MALFORMED))
def test_patch_with_malformed_json_is_400_and_changes_nothing(api, content_type, spoil):
    created = api.created()
    change, fragments = MALFORMED[spoil]
    with report_unchanged(api, created["id"]):
        response = patch_raw(api, created["id"], change(valid_patch(content_type)), content_type)
        assert_tmf_error(response, 400, *fragments)


@pytest.mark.parametrize("content_type, value, fragments", [
    *[pytest.param(t, v, f, id=f"{t}-{i}") for t in (MERGE, "application/json") for i, v, f in [
        ("array", [{"name": "x"}], ["not of type 'object'"]),
        ("string", "name", ["not of type 'object'"]),
        ("number", 42, ["not of type 'object'"]),
        ("boolean", True, ["not of type 'object'"]),
        ("null", None, ["must not be empty"]),
    ]],
    pytest.param(JSON_PATCH, {"op": "add", "path": "/name", "value": "x"}, ["not of type 'array'"], id="jp-object"),
    pytest.param(JSON_PATCH, "add", ["not of type 'array'"], id="jp-string"),
    pytest.param(JSON_PATCH, 42, ["not of type 'array'"], id="jp-number"),
    pytest.param(JSON_PATCH, None, ["must not be empty"], id="jp-null"),
    pytest.param(JSON_PATCH, [1], ["not of type 'object'"], id="jp-array-of-number"),
    pytest.param(JSON_PATCH, [None], ["not of type 'object'"], id="jp-array-of-null"),
    pytest.param(JSON_PATCH, [[{"op": "add", "path": "/name", "value": "x"}]], ["not of type 'object'"],
                 id="jp-array-of-array"),
])
def test_patch_json_of_the_wrong_shape_is_400_and_changes_nothing(api, content_type, value, fragments):
    created = api.created()
    with report_unchanged(api, created["id"]):
        response = patch_raw(api, created["id"], json.dumps(value).encode(), content_type)
        assert_tmf_error(response, 400, *fragments)


@pytest.mark.parametrize("content_type", PATCH_TYPES)
@pytest.mark.parametrize("encode", [
    pytest.param(lambda body: body.replace(b"renamed", b"\xff\xfe"), id="invalid-start-byte"),
    pytest.param(lambda body: body.decode().replace("renamed", "caf\u00e9").encode("latin-1"), id="latin-1"),
    pytest.param(lambda body: body.decode().encode("utf-16"), id="utf-16"),
])
def test_patch_body_that_is_not_utf8_is_400_and_changes_nothing(api, content_type, encode):
    created = api.created()
    with report_unchanged(api, created["id"]):
        response = patch_raw(api, created["id"], encode(valid_patch(content_type)), content_type)
        assert_tmf_error(response, 400, "UTF-8")


@pytest.mark.parametrize("content_type, text", [
    pytest.param(MERGE, '{"name": "\\ud800"}', id="merge-value"),
    pytest.param("application/json", '{"note": [{"text": "a \\udfff b"}]}', id="json-nested-value"),
    pytest.param(MERGE, '{"impactPattern": {"description": "x", "\\ud800": 1}}', id="merge-key"),
    pytest.param(JSON_PATCH, '[{"op": "add", "path": "/name", "value": "\\ud800"}]', id="jp-value"),
    pytest.param(JSON_PATCH, '[{"op": "add", "path": "/impactPattern", "value": {"\\udc00": "x"}}]', id="jp-key"),
])
def test_patch_with_a_lone_surrogate_is_400_and_changes_nothing(api, content_type, text):
    created = api.created()
    with report_unchanged(api, created["id"]):
        assert_tmf_error(patch_raw(api, created["id"], text.encode(), content_type), 400, "surrogate")


@pytest.mark.parametrize("content_type, text, fragments", [
    pytest.param(MERGE, '{"characteristic": [{"name": "n", "value": NaN}]}', ["NaN"], id="merge-NaN"),
    pytest.param(MERGE, '{"characteristic": [{"name": "n", "value": -Infinity}]}', ["-Infinity"],
                 id="merge-minus-Infinity"),
    pytest.param(JSON_PATCH, '[{"op": "add", "path": "/characteristic/-", "value": {"name": "n", "value": Infinity}}]',
                 ["Infinity"], id="jp-Infinity"),
    pytest.param(MERGE, f'{{"characteristic": [{{"name": "n", "value": {2**63}}}]}}', [str(2**63)],
                 id="merge-int-over-64-bits"),
    pytest.param(JSON_PATCH, f'[{{"op": "replace", "path": "/priority", "value": {10**30}}}]', [str(10**30)],
                 id="jp-int-over-64-bits"),
])
def test_patch_with_numbers_json_or_the_store_lacks_is_400_and_changes_nothing(api, content_type, text, fragments):
    created = api.created()
    with report_unchanged(api, created["id"]):
        assert_tmf_error(patch_raw(api, created["id"], text.encode(), content_type), 400, *fragments)


WRONG_TYPES = [
    ("category", 7, "string"),
    ("category", ["customer.qosDegradation"], "string"),
    ("description", [], "string"),
    ("description", 12.5, "string"),
    ("reason", {}, "string"),
    ("reason", False, "string"),
    ("priority", "high", "integer"),
    ("priority", 1.5, "integer"),
    ("priority", True, "integer"),
    ("originatorParty", "C42", "object"),
    ("originatorParty", [{"id": "C42", "@referredType": "Individual"}], "object"),
    ("originatorParty", {"id": 42, "@referredType": "Individual"}, "string"),
]


@pytest.mark.parametrize("content_type", PATCH_TYPES)
@pytest.mark.parametrize("name, value, kind", WRONG_TYPES, ids=[f"{n}-{type(v).__name__}" for n, v, _ in WRONG_TYPES])
def test_patch_wrong_type_on_a_mandatory_attribute_is_400_and_changes_nothing(api, content_type, name, value, kind):
    created = api.created()
    body = [{"op": "replace", "path": f"/{name}", "value": value}] if content_type == JSON_PATCH else {name: value}
    with report_unchanged(api, created["id"]):
        response = patch_raw(api, created["id"], json.dumps(body).encode(), content_type)
        assert_tmf_error(response, 400, name, kind)


@pytest.mark.parametrize("content_type", PATCH_TYPES)
@pytest.mark.parametrize("status", ["open", "Acknowledged", "IN_PROGRESS", "", "inprogress"])
def test_patch_unknown_status_value_is_400_and_changes_nothing(api, content_type, status):
    created = api.created()
    body = [{"op": "replace", "path": "/status", "value": status}] if content_type == JSON_PATCH else {"status": status}
    with report_unchanged(api, created["id"]):
        response = patch_raw(api, created["id"], json.dumps(body).encode(), content_type)
        assert_tmf_error(response, 400, "status", f"'{status}'")


@pytest.mark.parametrize("content_type", PATCH_TYPES)
@pytest.mark.parametrize("date, fragment", [
    pytest.param("2026-02-30T00:00:00Z", "date-time", id="february-30"),
    pytest.param("9999-12-31T23:59:59-01:00", "9999", id="beyond-year-9999-in-utc"),
    pytest.param("0001-01-01T00:00:00+01:00", "0001", id="before-year-1-in-utc"),
])
def test_patch_with_an_invalid_date_is_400_and_changes_nothing(api, content_type, date, fragment):
    created = api.created()
    note = [{"text": "called", "date": date}]
    body = [{"op": "add", "path": "/note", "value": note}] if content_type == JSON_PATCH else {"note": note}
    with report_unchanged(api, created["id"]):
        response = patch_raw(api, created["id"], json.dumps(body).encode(), content_type)
        assert_tmf_error(response, 400, "note", fragment)


def sized_patch(content_type: str, total: int) -> bytes:
    """A valid patch of exactly `total` bytes, its description padded."""
    def body(description: str) -> bytes:
        if content_type == JSON_PATCH:
            return json.dumps([{"op": "replace", "path": "/description", "value": description}]).encode()
        return json.dumps({"description": description}).encode()
    return body("x" * (total - len(body(""))))


@pytest.mark.parametrize("content_type", PATCH_TYPES)
def test_patch_body_at_the_limit_is_applied_and_one_byte_over_is_413(api, content_type):
    created = api.created()
    over = sized_patch(content_type, MAX_BODY + 1)
    assert len(over) == MAX_BODY + 1
    with report_unchanged(api, created["id"]):
        assert_tmf_error(patch_raw(api, created["id"], over, content_type), 413, str(MAX_BODY))
    with report_unchanged(api, created["id"]):  # also when sent chunked, without Content-Length
        response = patch_raw(api, created["id"], _chunks(over), content_type)
        assert response.request.headers.get("Transfer-Encoding") == "chunked"
        assert_tmf_error(response, 413, str(MAX_BODY))
    at_limit = sized_patch(content_type, MAX_BODY)
    assert len(at_limit) == MAX_BODY
    response = patch_raw(api, created["id"], at_limit, content_type)
    assert response.status_code == 200, response.text[:500]
    assert len(api.get(created["id"]).json()["description"]) > MAX_BODY - 100


def nested_patch(content_type: str, depth: int, kind: str) -> bytes:
    opening, closing = ('{"a":', "}") if kind == "object" else ("[", "]")
    value = [{"name": "deep", "value": "__VALUE__"}]
    body = [{"op": "add", "path": "/characteristic", "value": value}] if content_type == JSON_PATCH \
        else {"characteristic": value}
    return json.dumps(body).replace('"__VALUE__"', opening * depth + "1" + closing * depth).encode()


@pytest.mark.parametrize("content_type", PATCH_TYPES)
@pytest.mark.parametrize("depth, kind", [
    pytest.param(2000, "object", id="2000-objects"),
    pytest.param(2000, "array", id="2000-arrays"),
    pytest.param(150, "object", id="150-objects-over-mongodb-bson-depth"),
])
def test_patch_deeply_nested_body_is_400_and_changes_nothing(api, content_type, depth, kind):
    created = api.created()
    with report_unchanged(api, created["id"]):
        response = patch_raw(api, created["id"], nested_patch(content_type, depth, kind), content_type)
        assert_tmf_error(response, 400, "nested")


@pytest.mark.parametrize("content_type", PATCH_TYPES)
def test_patch_moderately_nested_value_is_applied(api, content_type):
    # The control for the test above.
    created = api.created()
    response = patch_raw(api, created["id"], nested_patch(content_type, 20, "array"), content_type)
    assert response.status_code == 200, response.text[:500]
    assert api.get(created["id"]).json()["characteristic"][0]["value"] == nested(20, leaf=1, kind="array")


@pytest.mark.parametrize("content_type", [
    "text/plain", "text/json", "application/xml", "multipart/form-data; boundary=x", "application/vnd.tmf+json",
    "application/merge-patch+xml", "garbage",
])
def test_patch_with_a_wrong_content_type_is_415_and_changes_nothing(api, content_type):
    created = api.created()
    with report_unchanged(api, created["id"]):
        response = patch_raw(api, created["id"], valid_patch(MERGE), content_type)
        assert_tmf_error(response, 415, content_type.split(";")[0])


# ---------------------------------------------------------------------------------------------------------
# POST /hub: a refused subscription is not stored


def hub_raw(api, data, content_type: str | None = "application/json") -> requests.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    return api.request("POST", "/hub", data=data, headers=headers)


HUB_CALLBACK = "http://127.0.0.1:9/listener"
HUB_BODY = json.dumps({"callback": HUB_CALLBACK, "query": "eventType=ServiceProblemCreateEvent"}).encode()


def test_the_valid_subscription_the_bad_ones_are_made_from_is_created(api):
    # The control for the /hub tests below.
    response = hub_raw(api, HUB_BODY)
    assert response.status_code == 201, response.text
    assert api.request("DELETE", f"/hub/{response.json()['id']}").status_code == 204


@pytest.mark.parametrize("spoil", sorted(MALFORMED))
def test_hub_malformed_json_is_400(api, spoil):
    change, fragments = MALFORMED[spoil]
    with no_subscription_written(api):
        assert_tmf_error(hub_raw(api, change(HUB_BODY)), 400, *fragments)


@pytest.mark.parametrize("value, fragment", [
    pytest.param([{"callback": HUB_CALLBACK}], "not of type 'object'", id="array"),
    pytest.param(HUB_CALLBACK, "not of type 'object'", id="string"),
    pytest.param(42, "not of type 'object'", id="number"),
    pytest.param(None, "must not be empty", id="null"),
    pytest.param({"callback": 7}, "callback", id="callback-number"),
    pytest.param({"callback": None}, "callback", id="callback-null"),
    pytest.param({"callback": HUB_CALLBACK, "query": 7}, "query", id="query-number"),
    pytest.param({"callback": HUB_CALLBACK, "query": ["eventType=ServiceProblemCreateEvent"]}, "query",
                 id="query-array"),
    pytest.param({"callback": HUB_CALLBACK, "secret": 7}, "secret", id="secret-number"),
])
def test_hub_json_of_the_wrong_shape_or_type_is_400(api, value, fragment):
    with no_subscription_written(api):
        assert_tmf_error(hub_raw(api, json.dumps(value).encode()), 400, fragment)


@pytest.mark.parametrize("data, fragment", [
    pytest.param(HUB_BODY.replace(b"listener", b"\xff\xfe"), "UTF-8", id="invalid-start-byte"),
    pytest.param(HUB_BODY.decode().encode("utf-16"), "UTF-8", id="utf-16"),
    pytest.param(HUB_BODY.replace(b"listener", b"\\ud800"), "surrogate", id="callback-lone-surrogate"),
    pytest.param(HUB_BODY.replace(b"ServiceProblemCreateEvent", b"\\udc00"), "surrogate", id="query-lone-surrogate"),
])
def test_hub_body_that_is_not_utf8_is_400(api, data, fragment):
    with no_subscription_written(api):
        assert_tmf_error(hub_raw(api, data), 400, fragment)


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/xml", "application/merge-patch+json", "application/json-patch+json",
    "application/x-www-form-urlencoded",
])
def test_hub_wrong_content_type_is_415(api, content_type):
    with no_subscription_written(api):
        assert_tmf_error(hub_raw(api, HUB_BODY, content_type), 415, content_type, "application/json")


def test_hub_missing_content_type_is_415(api):
    with no_subscription_written(api):
        response = hub_raw(api, HUB_BODY, None)
        assert "Content-Type" not in response.request.headers
        assert_tmf_error(response, 415, "Content-Type")


@pytest.mark.parametrize("extra, fragment", [
    pytest.param({"$where": "sleep(1000)"}, "$where", id="top-level-$where"),
    pytest.param({"$set": {"_active": False}}, "$set", id="top-level-$set"),
    pytest.param({"query.x": "1"}, "query.x", id="top-level-dotted"),
    # A subscription has no open content: nested keys can only arrive under an attribute it does not define.
    pytest.param({"filter": {"$ne": None}}, "'filter' was unexpected", id="nested-operator"),
    pytest.param({"filter": [{"a.b": 1}]}, "'filter' was unexpected", id="nested-dotted"),
])
def test_hub_operator_and_dotted_keys_are_400(api, extra, fragment):
    body = {"callback": HUB_CALLBACK, **extra}
    with no_subscription_written(api):
        assert_tmf_error(api.request("POST", "/hub", json=body), 400, fragment)


def test_hub_body_over_the_limit_is_413(api):
    body = json.dumps({"callback": HUB_CALLBACK, "query": "eventType=" + "x" * MAX_BODY}).encode()
    with no_subscription_written(api):
        assert_tmf_error(hub_raw(api, body), 413, str(MAX_BODY))
        assert_tmf_error(hub_raw(api, _chunks(body)), 413, str(MAX_BODY))


@pytest.mark.parametrize("depth, kind", [(2000, "object"), (2000, "array"), (150, "object")])
def test_hub_deeply_nested_body_is_400(api, depth, kind):
    opening, closing = ('{"a":', "}") if kind == "object" else ("[", "]")
    body = json.dumps({"callback": HUB_CALLBACK, "x": "__V__"}).replace('"__V__"', opening * depth + "1" + closing * depth)
    with no_subscription_written(api):
        assert_tmf_error(hub_raw(api, body.encode()), 400, "nested")


@pytest.mark.parametrize("callback", [
    "http://127.0.0.1:9/\x00", "http://127.0.0.1:9/a\nb", "http://127.0.0.1:9/a\rX-Injected: 1",
    "http://127.0.0.1:9/a b", "http://127.0.0.1:9/\x7f", "http://127.0.0.1\t:9/x",
])
def test_hub_callback_with_spaces_or_control_characters_is_400(api, callback):
    # Such a URL could never be called: the delivery would fail on every attempt until parked.
    with no_subscription_written(api):
        assert_tmf_error(api.request("POST", "/hub", json={"callback": callback}), 400, "callback", "not a valid URL")


@pytest.mark.parametrize("callback, fragments", [
    ("http://[::1]:8080/hook", ["IPv6", "host name"]),
    ("http://127.0.0.1:65536/hook", ["not a valid URL"]),
])
def test_hub_callback_outside_the_documented_form_is_400(api, callback, fragments):
    # HubSubscriptionInput.callback's pattern states the form; the server enforces it (x-reported-by-server).
    with no_subscription_written(api):
        assert_tmf_error(api.request("POST", "/hub", json={"callback": callback}), 400, "callback", *fragments)


def test_hub_callback_on_the_highest_port_is_accepted(api):
    created = api.request("POST", "/hub", json={"callback": "http://127.0.0.1:65535/hook"})
    assert created.status_code == 201, created.text
    assert api.request("DELETE", f"/hub/{created.json()['id']}").status_code == 204


@pytest.mark.parametrize("query, fragments", [
    pytest.param("$where=1", ["$where"], id="$where-name"),
    pytest.param('event.serviceProblem.priority={"$gt":0}', ["priority", '{"$gt":0}'], id="json-operator-integer"),
    pytest.param("event.serviceProblem.status=$ne", ["status", "$ne"], id="operator-enum"),
    pytest.param("event.serviceProblem[$ne]=x", ["$ne"], id="bracket-operator-in-name"),
    pytest.param("eventTime.gt=$now", ["eventTime", "$now"], id="operator-date"),
    pytest.param("eventTime.gt=2026-13-45", ["eventTime", "2026-13-45"], id="impossible-date"),
    pytest.param("eventTime<2026-02-30", ["eventTime", "2026-02-30"], id="february-30"),
    pytest.param("event.serviceProblem.creationDate.gte=yesterday", ["creationDate", "yesterday"], id="date-word"),
    pytest.param("eventTime.gt=9999-12-31T23:59:59-01:00", ["eventTime", "9999-12-31T23:59:59-01:00"],
                 id="beyond-year-9999-in-utc"),
    pytest.param("event.serviceProblem.lastUpdate.lt=0001-01-01T00:00:00%2B01:00", ["lastUpdate", "0001-01-01"],
                 id="before-year-1-in-utc"),
    pytest.param("offset=5", ["offset"], id="offset"),
    pytest.param("limit=1000000", ["limit"], id="limit"),
])
def test_hub_query_with_operators_bad_dates_or_paging_is_400(api, query, fragments):
    with no_subscription_written(api):
        response = api.request("POST", "/hub", json={"callback": HUB_CALLBACK, "query": query})
        assert_tmf_error(response, 400, "query", *fragments)


# ---------------------------------------------------------------------------------------------------------
# GET /serviceProblem, /serviceProblemEventRecord and /hub: absurd paging, invalid dates, operators in values

DATE_ATTRIBUTES = ["creationDate", "lastUpdate", "statusChangeDate", "resolutionDate", "note.date",
                   "trackingRecord.time"]
INVALID_DATES = ["2026-02-29", "2026-02-30T00:00:00Z", "2026-01-01T25:00:00Z", "2026-01-01T10:00:60Z",
                 "2026-01-01T10:00:00+25:00", "0000-00-00", "99999-01-01", "-2026-01-01", "2026", "yesterday",
                 "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"]


@pytest.mark.parametrize("attribute", DATE_ATTRIBUTES)
@pytest.mark.parametrize("value", INVALID_DATES)
def test_invalid_date_in_a_filter_is_400(api, attribute, value):
    # Encoded, so that '+' arrives as '+'; the operator varies with the value.
    operator = (".gt", ".lte", "", ".ne")[INVALID_DATES.index(value) % 4]
    assert_tmf_error(api.list(f"{attribute}{operator}={quote(value, safe='')}"), 400, attribute, f"'{value}'")


def test_dates_at_the_edges_of_the_range_are_valid_filters(api):
    # The controls for the out-of-range cases above: the last and first representable instants filter fine.
    created = api.created()
    scope = f"id={created['id']}"
    assert [p["id"] for p in api.list(f"{scope}&creationDate.gt=0001-01-01T00:00:00Z").json()] == [created["id"]]
    assert [p["id"] for p in api.list(f"{scope}&creationDate.lt=9999-12-31T23:59:59Z").json()] == [created["id"]]
    assert api.list(f"{scope}&creationDate.gt={quote('9999-12-31T23:59:59+01:00')}").json() == []


@pytest.mark.parametrize("query, fragments", [
    pytest.param("eventTime.gt=2026-13-45", ["eventTime", "'2026-13-45'"], id="impossible-date"),
    pytest.param("eventTime.lt=2026-02-30", ["eventTime", "'2026-02-30'"], id="february-30"),
    pytest.param("eventTime=yesterday", ["eventTime", "'yesterday'"], id="date-word"),
    pytest.param(f"eventTime.gt={quote('9999-12-31T23:59:59-01:00')}", ["eventTime", "9999"], id="beyond-9999"),
    pytest.param(f"eventTime.lt={quote('0001-01-01T00:00:00+01:00')}", ["eventTime", "0001"], id="before-year-1"),
    pytest.param("$where=1", ["$where"], id="$where-parameter"),
    pytest.param("colour=red", ["colour"], id="unknown-attribute"),
])
def test_bad_event_record_query_is_400(api, query, fragments):
    assert_tmf_error(api.request("GET", f"/serviceProblemEventRecord?{query}"), 400, *fragments)


@pytest.mark.parametrize("collection", ["/hub", "/serviceProblemEventRecord"])
@pytest.mark.parametrize("query, fragments", [
    pytest.param("offset=-1", ["offset", "minimum of 0"], id="offset-negative"),
    pytest.param("limit=0", ["limit", "minimum of 1"], id="limit-zero"),
    pytest.param("limit=1001", ["limit", "maximum of 1000"], id="limit-over-maximum"),
    pytest.param(f"limit={10**30}", ["limit", "maximum of 1000"], id="limit-huge"),
    pytest.param(f"offset={10**30}", ["offset"], id="offset-huge"),
    pytest.param(f"offset={2**63}", ["offset"], id="offset-just-over-int64"),
    pytest.param("limit=abc", ["limit", "'abc'"], id="limit-word"),
    pytest.param("offset=1.5", ["offset", "'1.5'"], id="offset-decimal"),
    pytest.param("limit=1e3", ["limit", "'1e3'"], id="limit-exponent"),
])
def test_absurd_paging_on_the_other_lists_is_400(api, collection, query, fragments):
    assert_tmf_error(api.request("GET", f"{collection}?{query}"), 400, *fragments)


def test_operators_in_event_record_query_values_are_literal(api):
    created = api.created()
    scope = f"serviceProblem.id={created['id']}"
    assert api.request("GET", f"/serviceProblemEventRecord?{scope}").headers["X-Total-Count"] == "1"  # the scope works
    for query in ('serviceProblem.id={"$ne":null}', "serviceProblem.id=$exists", 'eventType={"$ne":null}',
                  "eventType=$ne", 'id={"$gt":""}'):
        response = api.request("GET", f"/serviceProblemEventRecord?{query}")
        assert response.status_code == 200, response.text
        assert response.json() == [], query  # as an operator it would match every record
    response = api.request("GET", f"/serviceProblemEventRecord?{scope}&eventType.ne=$ne")
    assert response.headers["X-Total-Count"] == "1"  # "is not the literal '$ne'" matches


def test_operators_in_hub_query_values_are_literal(api):
    created = hub_raw(api, HUB_BODY)
    assert created.status_code == 201, created.text
    try:
        assert int(api.request("GET", "/hub?limit=1").headers["X-Total-Count"]) >= 1
        for query in ('callback={"$ne":null}', "callback=$ne", 'id={"$gt":""}', "callback.regex=$ne"):
            response = api.request("GET", f"/hub?{query}")
            assert response.status_code == 200, response.text
            assert response.json() == [], query  # as an operator it would match the subscription
        assert_tmf_error(api.request("GET", "/hub?$where=1"), 400, "$where")
    finally:
        api.request("DELETE", f"/hub/{created.json()['id']}")


# ---------------------------------------------------------------------------------------------------------
# Issue 12: one request cannot hold the database or crash a handler (query budgets, media types, big numbers,
# long URLs and headers, NUL). Every answer a TMF Error, nothing written.

@pytest.mark.parametrize("pattern, fragments", [
    pytest.param("(a+)+$", ["quantifier on a group"], id="nested-quantifiers"),
    pytest.param("(a|ab)*c", ["quantifier on a group"], id="repeated-alternation"),
    pytest.param(r"\d*\d*x", ["overlapping quantifiers"], id="adjacent-overlap"),
    pytest.param(".*a.*b", ["overlapping quantifiers"], id="separated-overlap"),
    pytest.param(r"(\w)\1", ["back-references"], id="back-reference"),
    pytest.param("x(?=y)", ["look-arounds"], id="look-ahead"),
    pytest.param("(x+|y)z", ["alternation"], id="alternation-with-quantifier"),
    pytest.param("a{1,5000}", ["more than 1000 times"], id="huge-count"),
    pytest.param("a" * 257, ["longer than 256 characters"], id="too-long"),
])
def test_a_regex_outside_the_safe_form_is_400_naming_the_rule(api, pattern, fragments):
    response = api.list(f"description.regex={quote(pattern)}")
    assert_tmf_error(response, 400, "description", "safe form", *fragments)
    assert api.list("limit=1").status_code in (200, 206)


def test_a_regex_in_the_safe_form_finds_what_it_describes(api):
    tag = f"safe{uuid.uuid4().hex[:8]}"
    created = api.created(description=f"{tag} 120.5 Mbit/s every evening")
    for pattern in (f"^{tag} \\d+\\.\\d+ Mbit", f"{tag}.*evening$", f"{tag} [0-9]+\\.5"):
        found = api.list(f"description.regex={quote(pattern)}")
        assert found.status_code == 200, found.text
        assert [p["id"] for p in found.json()] == [created["id"]], pattern


def test_the_catastrophic_regex_of_issue_12_is_refused_before_any_text_could_trigger_it(api):
    api.created(description="a" * 28 + "!")
    response = api.list("description.regex=" + quote("(a+)+$"))
    assert_tmf_error(response, 400, "quantifier on a group")
    assert api.list("description.regex=" + quote("^a+!$")).status_code == 200


def test_an_or_list_beyond_the_cap_is_400_and_one_at_the_cap_is_answered(api):
    many = ",".join(f"C{i % 10}" for i in range(2000))  # 2,000 values in a URL under the 8 KB limit
    with nothing_written(api):
        assert_tmf_error(api.list(f"relatedParty.id={many}"), 400, "relatedParty.id", "2000 values", "at most 10")
        assert_tmf_error(api.list(f"relatedParty.id={','.join(['C1'] * 11)}"), 400, "inside a list", "at most 10")
        assert_tmf_error(api.list(f"status={','.join(['pending'] * 51)}"), 400, "status", "at most 50")
    for query in ("relatedParty.id=" + ",".join(f"C{i}" for i in range(10)),
                  "status=" + ",".join(["pending"] * 50)):
        at_cap = api.list(query + "&limit=1")
        assert at_cap.status_code in (200, 206), at_cap.text
        assert len(at_cap.headers["Link"]) < 64 * 1024


def test_more_filter_terms_than_the_cap_is_400(api):
    query = "&".join(f"priority.ne={i}" for i in range(21))
    assert_tmf_error(api.list(query), 400, "21 filter terms", "at most 20")
    assert api.list("&".join(f"priority.ne={i}" for i in range(20))).status_code in (200, 206)


def test_the_link_header_stays_bounded_at_the_longest_url(api):
    api.created()
    filler = "x" * (8192 - 200)
    response = api.list(f"description.ne={filler}&limit=1")
    assert response.status_code in (200, 206), response.text[:300]
    assert len(response.headers["Link"]) < 64 * 1024


@pytest.mark.parametrize("query", [
    "priority=" + "9" * 20, "priority.gt=-" + "9" * 30, "priority<=9223372036854775808",
    "affectedNumberOfServices=" + "9" * 5000,
])
def test_an_integer_filter_beyond_64_bits_is_400(api, query):
    assert_tmf_error(api.list(query), 400, "64-bit")


def test_an_integer_filter_at_the_64_bit_edges_is_answered(api):
    for value in ("9223372036854775807", "-9223372036854775808"):
        assert api.list(f"priority={value}").status_code == 200


def test_an_integer_beyond_64_bits_in_a_hub_query_is_400(api):
    with no_subscription_written(api):
        response = api.request("POST", "/hub", json={"callback": HUB_CALLBACK,
                                                     "query": "event.serviceProblem.priority=" + "9" * 25})
        assert_tmf_error(response, 400, "query", "64-bit")


@pytest.mark.parametrize("path", ["/serviceProblem", "/problemAcknowledgement", "/hub"])
def test_a_number_of_5000_digits_in_a_body_is_400(api, path):
    text = json.dumps(report()).replace('"priority": 3', '"priority": ' + "9" * 5000)
    with nothing_written(api), no_subscription_written(api):
        response = api.request("POST", path, data=text, headers=JSON)
        assert_tmf_error(response, 400, "digits", "64-bit")


@pytest.mark.parametrize("digits, fragment", [(5000, "digits"), (25, "64-bit")])
def test_a_number_beyond_64_bits_in_an_intake_event_is_400(api, server, digits, fragment):
    event = {"eventId": f"big-{uuid.uuid4()}", "eventTime": "2026-11-21T08:00:00Z",
             "eventType": "TroubleTicketCreateEvent", "event": {"troubleTicket": {
                 "id": f"TT-{uuid.uuid4()}", "description": "Throughput far below the contracted rate",
                 "severity": "Major", "ticketType": "complaint",
                 "relatedParty": [{"id": "C42", "role": "customer", "@referredType": "Individual"}],
                 "troubleTicketCharacteristic": [{"name": "observedValue", "value": 1}]}}}
    text = json.dumps(event).replace('"value": 1', '"value": ' + "9" * digits)
    records = lambda: int(requests.get(server.root_url + "/intake/record?limit=1", timeout=30)
                          .headers["X-Total-Count"])  # noqa: E731
    before = records()
    with nothing_written(api):
        response = requests.post(server.root_url + "/intake/troubleTicketEvent", data=text, headers=JSON, timeout=30)
        assert_tmf_error(response, 400, fragment)
        IntakeContract().check("POST", "/intake/troubleTicketEvent", response)
    assert records() == before


@pytest.mark.parametrize("media", ["APPLICATION/JSON", "Application/Json; charset=UTF-8"])
def test_media_types_are_case_insensitive_on_post(api, media):
    created = api.request("POST", "/serviceProblem", data=json.dumps(report()), headers={"Content-Type": media})
    assert created.status_code == 201, created.text
    with nothing_written(api):  # and validation still runs on them
        refused = api.request("POST", "/serviceProblem", data=json.dumps(without("reason")),
                              headers={"Content-Type": media})
        assert_tmf_error(refused, 400, "reason")


@pytest.mark.parametrize("media", ["Application/Merge-Patch+Json", "APPLICATION/JSON-PATCH+JSON"])
def test_media_types_are_case_insensitive_on_patch(api, media):
    created = api.created()
    body = {"name": "renamed"} if "merge" in media.lower() else [{"op": "add", "path": "/name", "value": "renamed"}]
    patched = api.patch(created["id"], body, content_type=media)
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "renamed"
    with report_unchanged(api, created["id"]):
        bad = {"status": "closed"} if "merge" in media.lower() else [{"op": "add", "path": "/id", "value": "x"}]
        assert api.patch(created["id"], bad, content_type=media).status_code in (400, 409)


def test_media_types_are_case_insensitive_on_hub_and_tasks(api):
    hub = api.request("POST", "/hub", data=json.dumps({"callback": HUB_CALLBACK}),
                      headers={"Content-Type": "Application/JSON"})
    assert hub.status_code == 201, hub.text
    api.request("DELETE", f"/hub/{hub.json()['id']}")
    problem = api.created()
    task = api.request("POST", "/problemAcknowledgement", data=json.dumps({"problem": [{"id": problem["id"]}]}),
                       headers={"Content-Type": "APPLICATION/JSON"})
    assert task.status_code == 201, task.text


@pytest.mark.parametrize("path", ["//admin/delivery", "/tmf-api//serviceProblemManagement/v4/serviceProblem",
                                  "/tmf-api/serviceProblemManagement/v4//hub"])
def test_an_empty_path_segment_is_a_tmf_404(server, path):
    response = requests.get(server.root_url + path, timeout=30)
    assert_tmf_error(response, 404, "empty path segment")


@pytest.mark.parametrize("method, target", [
    ("GET", "/serviceProblem?description=" + "a" * 9000),
    ("POST", "/serviceProblem?pad=" + "a" * 9000),
    ("POST", "/problemAcknowledgement?pad=" + "a" * 9000),
    ("DELETE", "/hub/" + "a" * 9000),
])
def test_a_url_over_8_kb_is_a_tmf_414_on_any_operation(api, method, target):
    with nothing_written(api), no_subscription_written(api):
        body = {"json": report()} if method == "POST" else {}
        response = api.request(method, target, **body)  # the contract declares 414 on every operation
        assert_tmf_error(response, 414, "at most 8192")


def test_5000_parameters_are_a_tmf_414(api):
    response = api.list("&".join(f"status=s{i}" for i in range(5000)))
    assert_tmf_error(response, 414, "at most 8192")


def test_a_url_over_8_kb_is_a_tmf_414_on_the_intake_too(server):
    response = requests.get(server.root_url + "/intake/record?sourceEventId=" + "a" * 9000, timeout=30)
    assert_tmf_error(response, 414, "at most 8192")
    IntakeContract().check("GET", "/intake/record", response)


def test_a_100_kb_url_is_refused_by_the_http_layer_as_the_readme_says(api):
    """Beyond about 64 KB the HTTP parser refuses the request line before the application sees it: a plain-text
    400 (README, "Limits"). The server goes on serving."""
    response = api.list("description=" + "a" * 100_000, check=False)
    assert response.status_code == 400
    assert api.list("limit=1").status_code in (200, 206)


def test_a_60_kb_correlation_id_is_400_and_writes_nothing(api):
    with nothing_written(api):
        response = api.create(report(), headers={"X-Correlation-ID": "c" * 60_000})
        assert_tmf_error(response, 400, "X-Correlation-ID", "at most 200")


def test_a_correlation_id_of_200_characters_is_copied_into_the_events(api):
    correlation = "c" * 200
    created = api.create(report(), headers={"X-Correlation-ID": correlation}).json()
    records = api.request("GET", f"/serviceProblemEventRecord?serviceProblem.id={created['id']}").json()
    assert records and all(r["notification"]["correlationId"] == correlation for r in records)


@pytest.mark.parametrize("where", ["description", "characteristic"])
def test_nul_in_a_string_is_400_and_writes_nothing(api, where):
    body = report(description="evening\u0000drops") if where == "description" else \
        report(characteristic=[{"name": "metric", "value": "down\u0000link"}])
    with nothing_written(api):
        assert_tmf_error(api.create(body), 400, "NUL")


def test_nul_in_a_patch_leaves_the_report_unchanged(api):
    created = api.created()
    with report_unchanged(api, created["id"]):
        assert_tmf_error(api.patch(created["id"], {"description": "a\u0000b"}), 400, "NUL")


def test_nul_in_a_filter_is_400(api):
    assert_tmf_error(api.list("description=a%00b"), 400, "NUL")
