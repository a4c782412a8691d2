"""Bad input to POST and GET /serviceProblem: always a TMF630 Error naming what is wrong, never a 5xx, and a
refused POST writes nothing. The test server runs with TMF_MAX_BODY_BYTES=65536 (tests/conftest.py)."""
from __future__ import annotations

import http.client
import json
import uuid
from urllib.parse import quote, urlsplit

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from tests.support.assertions import assert_tmf_error, nothing_written
from tests.support.client import report

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
    response = api.session.send(prepared, timeout=30)
    api.contract.check("PATCH", urlsplit(prepared.url).path, response)
    assert_tmf_error(response, 415, "Content-Type")
    assert api.get(created["id"]).json() == created


@pytest.mark.parametrize("number", [2**63, -(2**63) - 1, 10**30])
def test_integers_beyond_64_bits_are_400_and_nothing_is_written(api, number):
    data = json.dumps(report(characteristic=[{"name": "metric", "value": number}]))
    with nothing_written(api):
        assert_tmf_error(post_raw(api, data.encode()), 400, str(number))


def test_a_path_with_control_characters_is_404(api):
    for path in ("/serviceProblem/%15%0A3", "/serviceProblem/a%00b", "/hub/%0D"):
        assert_tmf_error(api.request("GET", path), 404, "control characters")
