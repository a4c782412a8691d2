"""PATCH /serviceProblem/{id}: JSON Merge Patch, JSON Patch, rejections, lifecycle, ETag/If-Match, concurrency."""
from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.assertions import assert_tmf_error
from tests.support.client import JSON_PATCH, MERGE, Api, report

REASONS = {400: "Bad Request", 404: "Not Found", 409: "Conflict", 412: "Precondition Failed",
           415: "Unsupported Media Type"}

# TMF656 R18.5 user guide: the ServiceProblem state machine (expected behaviour, written out independently).
LIFECYCLE = {
    "acknowledged": {"inProgress", "pending", "rejected", "cancelled"},
    "inProgress": {"held", "pending", "resolved", "cancelled"},
    "held": {"inProgress", "cancelled"},
    "pending": {"acknowledged", "inProgress", "cancelled"},
    "resolved": {"closed", "acknowledged"},
    "rejected": set(),
    "closed": set(),
    "cancelled": set(),
}
STATUSES = sorted(LIFECYCLE)
# Allowed transitions that drive a new report (acknowledged) into each status.
PATH_TO = {
    "acknowledged": [],
    "inProgress": ["inProgress"],
    "held": ["inProgress", "held"],
    "pending": ["inProgress", "pending"],
    "resolved": ["inProgress", "resolved"],
    "closed": ["inProgress", "resolved", "closed"],
    "cancelled": ["cancelled"],
    "rejected": ["rejected"],
}

FIRST_ALERT = {"id": "tca-17", "role": "thresholdCrossingAlert", "@referredType": "Alarm"}


def new_report(api: Api, **overrides) -> dict:
    """A report that also carries the create-only attributes (firstAlert, originatingSystem)."""
    overrides.setdefault("firstAlert", FIRST_ALERT)
    overrides.setdefault("originatingSystem", "qos-probe")
    return api.created(**overrides)


def snapshot(api: Api, problem_id: str) -> tuple[dict, str]:
    response = api.get(problem_id)
    assert response.status_code == 200, response.text
    assert response.headers.get("ETag"), "GET must return an ETag"
    return response.json(), response.headers["ETag"]


def assert_error(response, status: int, code: str | None = None, mentions=()) -> dict:
    """The TMF Error body of a rejection: code, reason, message naming `mentions`, status, @type."""
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body.get("code"), str) and body["code"], body
    if code is not None:
        assert body["code"] == code, body
    assert body["reason"] == REASONS[status], body
    assert body["status"] == str(status), body
    assert body["@type"] == "Error", body
    for word in ([mentions] if isinstance(mentions, str) else mentions):
        assert word in body["message"], f"message does not name {word!r}: {body['message']}"
    return body


def assert_rejected_unchanged(api: Api, problem_id: str, before: tuple[dict, str], response, status: int,
                              code: str | None = None, mentions=()) -> dict:
    body = assert_error(response, status, code, mentions)
    assert_tmf_error(response, status)  # also: application/json, no internals in the answer
    assert snapshot(api, problem_id) == before, "a rejected patch changed the stored resource"
    records = api.request("GET", f"/serviceProblemEventRecord?serviceProblem.id={problem_id}"
                                 f"&sort=eventTime&limit=1000").json()
    assert records, "the report has no event records at all"
    assert all(r["eventTime"] <= before[0]["lastUpdate"] for r in records), "a rejected patch recorded an event"
    assert records[-1]["notification"]["event"]["serviceProblem"] == before[0], \
        "the newest event describes a state other than the stored one"
    return body


def ok(response) -> dict:
    assert response.status_code == 200, response.text
    assert response.headers.get("ETag"), "PATCH 200 must return an ETag"
    return response.json()


def set_status(api: Api, problem_id: str, status: str, **extra) -> dict:
    return ok(api.patch(problem_id, {"status": status, **extra}))


def later() -> None:
    """Lets the millisecond clock advance, so that 'lastUpdate advances' is observable."""
    time.sleep(0.005)


# --------------------------------------------------------------------------------------------------------------
# JSON Merge Patch (RFC 7396): application/merge-patch+json and application/json
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("content_type", [MERGE, "application/json"])
def test_merge_patch_changes_attributes_and_returns_full_resource(api, content_type):
    created = new_report(api)
    _, etag = snapshot(api, created["id"])
    later()
    response = api.patch(created["id"], {"priority": 1, "name": "Evening throughput drop",
                                         "problemEscalation": "2"}, content_type=content_type)
    patched = ok(response)

    assert patched["priority"] == 1
    assert patched["name"] == "Evening throughput drop"
    assert patched["problemEscalation"] == "2"
    untouched = {k: v for k, v in created.items() if k not in ("priority", "lastUpdate")}
    assert {k: patched[k] for k in untouched} == untouched, "attributes outside the patch changed"
    assert patched["creationDate"] == created["creationDate"]
    assert patched["lastUpdate"] > created["lastUpdate"]
    assert response.headers["ETag"] != etag
    assert snapshot(api, created["id"]) == (patched, response.headers["ETag"])


@pytest.mark.parametrize("content_type", [MERGE, "application/json"])
def test_merge_null_removes_an_optional_attribute(api, content_type):
    created = new_report(api, name="to be removed", statusChangeReason="customer called",
                         externalIdentifier=[{"id": "crm-1"}])
    patched = ok(api.patch(created["id"], {"name": None, "externalIdentifier": None}, content_type=content_type))
    assert "name" not in patched and "externalIdentifier" not in patched
    assert patched["statusChangeReason"] == "customer called"
    stored, _ = snapshot(api, created["id"])
    assert "name" not in stored and "externalIdentifier" not in stored


def test_merge_null_removes_an_optional_object_attribute(api):
    created = new_report(api, impactPattern={"description": "evening peak"})
    patched = ok(api.patch(created["id"], {"impactPattern": None}))
    assert "impactPattern" not in patched
    assert "impactPattern" not in snapshot(api, created["id"])[0]


def test_merge_into_nested_object_keeps_sibling_keys(api):
    party = {"id": "C42", "name": "Jane Customer", "role": "originator", "href": "https://crm.example/party/C42",
             "@referredType": "Individual"}
    created = new_report(api, originatorParty=party)
    # RelatedParty requires id and @referredType, so they are repeated; role and href are left out of the patch.
    patched = ok(api.patch(created["id"], {"originatorParty": {"id": "C42", "@referredType": "Individual",
                                                               "name": "Jane Q. Customer"}}))
    assert patched["originatorParty"] == {**party, "name": "Jane Q. Customer"}
    assert snapshot(api, created["id"])[0]["originatorParty"] == {**party, "name": "Jane Q. Customer"}


def test_merge_null_inside_nested_object_removes_only_that_key(api):
    party = {"id": "C42", "name": "Jane Customer", "role": "originator", "@referredType": "Individual"}
    created = new_report(api, originatorParty=party)
    patched = ok(api.patch(created["id"], {"originatorParty": {"id": "C42", "@referredType": "Individual",
                                                               "role": None}}))
    assert patched["originatorParty"] == {"id": "C42", "name": "Jane Customer", "@referredType": "Individual"}


def test_partial_nested_merge_object_keeps_sibling_keys(api):
    created = new_report(api)
    patched = ok(api.patch(created["id"], {"originatorParty": {"name": "Jane Q. Customer"}}))
    assert patched["originatorParty"] == {**created["originatorParty"], "name": "Jane Q. Customer"}


def test_merge_replaces_arrays_as_a_whole(api):
    created = new_report(api)
    patched = ok(api.patch(created["id"], {"affectedService": [{"id": "svc-tv-7"}]}))
    assert patched["affectedService"] == [{"id": "svc-tv-7"}]


# --------------------------------------------------------------------------------------------------------------
# JSON Patch (RFC 6902): application/json-patch+json
# --------------------------------------------------------------------------------------------------------------

def test_json_patch_creates_array_then_appends(api):
    created = new_report(api)
    assert "note" not in created
    first = ok(api.patch(created["id"], [{"op": "add", "path": "/note", "value": [{"text": "first"}]}],
                         content_type=JSON_PATCH))
    assert first["note"] == [{"text": "first"}]
    second = ok(api.patch(created["id"], [{"op": "add", "path": "/note/-", "value": {"text": "second"}}],
                          content_type=JSON_PATCH))
    assert second["note"] == [{"text": "first"}, {"text": "second"}]
    third = ok(api.patch(created["id"], [{"op": "add", "path": "/note/0", "value": {"text": "zeroth"}}],
                         content_type=JSON_PATCH))
    assert [n["text"] for n in third["note"]] == ["zeroth", "first", "second"]
    assert snapshot(api, created["id"])[0]["note"] == third["note"]


def test_json_patch_replace_and_remove(api):
    created = new_report(api, name="old name", problemEscalation="1")
    _, etag = snapshot(api, created["id"])
    later()
    response = api.patch(created["id"], [
        {"op": "replace", "path": "/priority", "value": 2},
        {"op": "replace", "path": "/originatorParty/name", "value": "Jane Q. Customer"},
        {"op": "remove", "path": "/name"},
        {"op": "remove", "path": "/relatedParty/0"},
    ], content_type=JSON_PATCH)
    patched = ok(response)
    assert patched["priority"] == 2
    assert patched["originatorParty"] == {**created["originatorParty"], "name": "Jane Q. Customer"}
    assert "name" not in patched
    assert patched["relatedParty"] == []
    assert patched["problemEscalation"] == "1"
    assert patched["creationDate"] == created["creationDate"]
    assert patched["lastUpdate"] > created["lastUpdate"]
    assert response.headers["ETag"] != etag
    assert snapshot(api, created["id"]) == (patched, response.headers["ETag"])


def test_json_patch_move_and_copy_within_patchable_attributes(api):
    created = new_report(api, name="Evening throughput", rootCauseService=[{"id": "svc-bng-3"}])
    patched = ok(api.patch(created["id"], [
        {"op": "copy", "from": "/affectedService/0", "path": "/affectedService/-"},
        {"op": "move", "from": "/name", "path": "/statusChangeReason"},
        {"op": "add", "path": "/rootCauseResource", "value": []},
        {"op": "move", "from": "/rootCauseService/0", "path": "/rootCauseResource/-"},
    ], content_type=JSON_PATCH))
    assert patched["affectedService"] == created["affectedService"] * 2
    assert "name" not in patched and patched["statusChangeReason"] == "Evening throughput"
    assert patched["rootCauseService"] == [] and patched["rootCauseResource"] == [{"id": "svc-bng-3"}]
    assert snapshot(api, created["id"])[0] == patched


def test_json_patch_copy_from_a_read_only_attribute_into_a_patchable_one(api):
    created = new_report(api)
    patched = ok(api.patch(created["id"], [{"op": "copy", "from": "/originatingSystem", "path": "/name"}],
                           content_type=JSON_PATCH))
    assert patched["name"] == "qos-probe" and patched["originatingSystem"] == "qos-probe"


def test_json_patch_test_that_passes_applies_the_rest(api):
    created = new_report(api)
    patched = ok(api.patch(created["id"], [
        {"op": "test", "path": "/priority", "value": 3},
        {"op": "test", "path": "/creationDate", "value": created["creationDate"]},  # test only reads
        {"op": "replace", "path": "/priority", "value": 1},
    ], content_type=JSON_PATCH))
    assert patched["priority"] == 1


@pytest.mark.parametrize("test_op", [
    {"op": "test", "path": "/priority", "value": 9},
    {"op": "test", "path": "/name", "value": "absent attribute"},
])
def test_json_patch_failing_test_is_409_and_nothing_changes(api, test_op):
    created = new_report(api)
    before = snapshot(api, created["id"])
    response = api.patch(created["id"], [
        {"op": "replace", "path": "/description", "value": "changed before the test"},
        test_op,
        {"op": "replace", "path": "/priority", "value": 1},
    ], content_type=JSON_PATCH)
    assert_rejected_unchanged(api, created["id"], before, response, 409, "patchTestFailed", test_op["path"])


# --------------------------------------------------------------------------------------------------------------
# Rejections: 400 / 404 / 415, nothing stored changes
# --------------------------------------------------------------------------------------------------------------

NOT_PATCHABLE = {
    "id": str(uuid.UUID(int=1)),
    "href": "http://example.com/serviceProblem/other",
    "firstAlert": {"id": "tca-99", "role": "other", "@referredType": "Alarm"},
    "originatingSystem": "elsewhere",
    "trackingRecord": [{"id": "t1", "description": "forged", "time": "2020-01-01T00:00:00Z"}],
    "creationDate": "2020-01-01T00:00:00Z",
    "lastUpdate": "2020-01-01T00:00:00Z",
    "statusChangeDate": "2020-01-01T00:00:00Z",
    "resolutionDate": "2020-01-01T00:00:00Z",
}


def _not_patchable_cases():
    for name, value in NOT_PATCHABLE.items():
        yield pytest.param(name, MERGE, {name: value}, id=f"{name}-merge")
        yield pytest.param(name, "application/json", {name: value}, id=f"{name}-json")
        yield pytest.param(name, MERGE, {name: None}, id=f"{name}-merge-null")
        yield pytest.param(name, JSON_PATCH, [{"op": "replace", "path": f"/{name}", "value": value}],
                           id=f"{name}-replace")
        yield pytest.param(name, JSON_PATCH, [{"op": "add", "path": f"/{name}", "value": value}], id=f"{name}-add")
        yield pytest.param(name, JSON_PATCH, [{"op": "remove", "path": f"/{name}"}], id=f"{name}-remove")
    yield pytest.param("trackingRecord", JSON_PATCH, [{"op": "add", "path": "/trackingRecord/-", "value":
                                                       NOT_PATCHABLE["trackingRecord"][0]}], id="trackingRecord-append")
    yield pytest.param("lastUpdate", JSON_PATCH, [{"op": "move", "from": "/lastUpdate", "path": "/name"}],
                       id="lastUpdate-move-from")
    yield pytest.param("id", JSON_PATCH, [{"op": "copy", "from": "/name", "path": "/id"}], id="id-copy-to")
    yield pytest.param("firstAlert", JSON_PATCH, [{"op": "replace", "path": "/firstAlert/role", "value": "x"}],
                       id="firstAlert-nested")
    yield pytest.param("originatingSystem", JSON_PATCH, [{"op": "replace", "path": "/name", "value": "ok"},
                                                         {"op": "replace", "path": "/originatingSystem",
                                                          "value": "x"}], id="originatingSystem-second-op")


@pytest.mark.parametrize("attribute, content_type, body", _not_patchable_cases())
def test_patching_a_read_only_attribute_is_400(api, attribute, content_type, body):
    created = new_report(api, name="n")
    set_status(api, created["id"], "inProgress")
    set_status(api, created["id"], "resolved")  # resolutionDate and a trackingRecord exist
    before = snapshot(api, created["id"])
    response = api.patch(created["id"], body, content_type=content_type)
    assert_rejected_unchanged(api, created["id"], before, response, 400, "notPatchable", attribute)


@pytest.mark.parametrize("content_type, body, attribute", [
    pytest.param(MERGE, {"parentProblem": [{"id": "other"}]}, "parentProblem", id="parent-merge"),
    pytest.param(MERGE, {"underlyingProblem": [{"id": "other"}]}, "underlyingProblem", id="underlying-merge"),
    pytest.param(MERGE, {"underlyingProblem": None}, "underlyingProblem", id="underlying-merge-null"),
    pytest.param(JSON_PATCH, [{"op": "add", "path": "/parentProblem", "value": [{"id": "other"}]}], "parentProblem",
                 id="parent-add"),
    pytest.param(JSON_PATCH, [{"op": "remove", "path": "/underlyingProblem"}], "underlyingProblem",
                 id="underlying-remove"),
    pytest.param(JSON_PATCH, [{"op": "move", "from": "/rootCauseService", "path": "/underlyingProblem"}],
                 "underlyingProblem", id="underlying-move-into"),
])
def test_group_links_are_changed_only_by_the_group_tasks(api, content_type, body, attribute):
    # A PATCH would write one side of a two-sided link; /problemGroup and /problemUngroup write both.
    created = new_report(api, rootCauseService=[{"id": "svc-bng-3"}])
    before = snapshot(api, created["id"])
    response = api.patch(created["id"], body, content_type=content_type)
    assert_rejected_unchanged(api, created["id"], before, response, 400, "groupLink",
                              (attribute, "/problemGroup", "/problemUngroup"))


@pytest.mark.parametrize("content_type, body", [
    pytest.param(MERGE, {"severity": "major"}, id="merge"),
    pytest.param("application/json", {"severity": "major"}, id="json"),
    pytest.param(MERGE, {"priority": 2, "severity": "major"}, id="merge-with-valid"),
    pytest.param(MERGE, {"severity": None}, id="merge-null"),
    pytest.param(JSON_PATCH, [{"op": "add", "path": "/severity", "value": "major"}], id="json-patch-add"),
    pytest.param(JSON_PATCH, [{"op": "copy", "from": "/category", "path": "/severity"}], id="json-patch-copy"),
])
def test_attribute_not_in_schema_is_400(api, content_type, body):
    created = new_report(api)
    before = snapshot(api, created["id"])
    response = api.patch(created["id"], body, content_type=content_type)
    assert_rejected_unchanged(api, created["id"], before, response, 400, None, "severity")


@pytest.mark.parametrize("content_type, body, attribute", [
    pytest.param(MERGE, {"priority": "high"}, "priority", id="merge-priority"),
    pytest.param("application/json", {"priority": "high"}, "priority", id="json-priority"),
    pytest.param(MERGE, {"note": {"text": "not an array"}}, "note", id="merge-note-object"),
    pytest.param(MERGE, {"status": "escalated"}, "status", id="merge-status-enum"),
    pytest.param(JSON_PATCH, [{"op": "replace", "path": "/priority", "value": "high"}], "priority",
                 id="json-patch-priority"),
    pytest.param(JSON_PATCH, [{"op": "add", "path": "/note", "value": "text"}], "note", id="json-patch-note"),
    pytest.param(JSON_PATCH, [{"op": "replace", "path": "/originatorParty/id", "value": 42}], "originatorParty",
                 id="json-patch-nested"),
    pytest.param(JSON_PATCH, [{"op": "replace", "path": "/status", "value": "escalated"}], "status",
                 id="json-patch-status-enum"),
])
def test_wrong_type_is_400(api, content_type, body, attribute):
    created = new_report(api)
    before = snapshot(api, created["id"])
    response = api.patch(created["id"], body, content_type=content_type)
    assert_rejected_unchanged(api, created["id"], before, response, 400, None, attribute)


MANDATORY = ["category", "priority", "description", "reason", "originatorParty"]


@pytest.mark.parametrize("content_type, attribute", [(MERGE, a) for a in MANDATORY]
                         + [("application/json", a) for a in MANDATORY]
                         + [(JSON_PATCH, a) for a in MANDATORY + ["status"]])
def test_removing_a_mandatory_attribute_is_400(api, content_type, attribute):
    created = new_report(api)
    before = snapshot(api, created["id"])
    body = [{"op": "remove", "path": f"/{attribute}"}] if content_type == JSON_PATCH else {attribute: None}
    response = api.patch(created["id"], body, content_type=content_type)
    assert_rejected_unchanged(api, created["id"], before, response, 400, None, attribute)


def test_merge_null_status_is_400(api):
    created = new_report(api)
    before = snapshot(api, created["id"])
    response = api.patch(created["id"], {"status": None})
    assert_rejected_unchanged(api, created["id"], before, response, 400, None, "status")


@pytest.mark.parametrize("operations, mentions", [
    pytest.param([{"op": "replace", "path": "/name", "value": "x"}], "/name", id="replace-absent"),
    pytest.param([{"op": "remove", "path": "/note/0"}], "/note/0", id="remove-absent-array-item"),
    pytest.param([{"op": "add", "path": "/note/-", "value": {"text": "x"}}], "/note/-", id="append-absent-array"),
    pytest.param([{"op": "remove", "path": "/originatorParty/nickname"}], "/originatorParty/nickname",
                 id="remove-absent-nested"),
    pytest.param([{"op": "replace", "path": "/affectedService/5/name", "value": "x"}], "/affectedService/5",
                 id="index-out-of-range"),
    pytest.param([{"op": "move", "from": "/name", "path": "/statusChangeReason"}], "/name", id="move-absent-from"),
    pytest.param([{"op": "replace", "path": "/priority", "value": 1},
                  {"op": "remove", "path": "/name"}], "/name", id="second-operation"),
])
def test_json_patch_path_that_does_not_exist_is_400(api, operations, mentions):
    created = new_report(api)
    before = snapshot(api, created["id"])
    response = api.patch(created["id"], operations, content_type=JSON_PATCH)
    assert_rejected_unchanged(api, created["id"], before, response, 400, "invalidPatch", mentions)


@pytest.mark.parametrize("body, mentions", [
    pytest.param([{"op": "frobnicate", "path": "/name", "value": "x"}], "op", id="unknown-op"),
    pytest.param([{"path": "/name", "value": "x"}], "op", id="missing-op"),
    pytest.param([{"op": "add", "value": "x"}], "path", id="missing-path"),
    pytest.param([{"op": "add", "path": "", "value": {}}], "whole resource", id="whole-document"),
    pytest.param([{"op": "add", "path": "name", "value": "x"}], "name", id="pointer-without-slash"),
    pytest.param([{"op": "move", "path": "/name"}], "move", id="move-without-from"),
    pytest.param([{"op": "add", "path": "/name"}], "add", id="add-without-value"),
    pytest.param({"op": "replace", "path": "/priority", "value": 1}, "array", id="object-not-array"),
    pytest.param(["replace"], "object", id="array-of-strings"),
])
def test_invalid_json_patch_document_is_400(api, body, mentions):
    created = new_report(api, name="n")
    before = snapshot(api, created["id"])
    response = api.patch(created["id"], body, content_type=JSON_PATCH)
    assert_rejected_unchanged(api, created["id"], before, response, 400, None, mentions)


@pytest.mark.parametrize("content_type, body", [
    pytest.param(MERGE, [{"op": "replace", "path": "/priority", "value": 1}], id="merge-array"),
    pytest.param(MERGE, '"just a string"', id="merge-string"),
    pytest.param("application/json", "42", id="json-number"),
    pytest.param(MERGE, '{"priority": 1', id="merge-malformed"),
    pytest.param(JSON_PATCH, '[{"op": "add"', id="json-patch-malformed"),
])
def test_body_of_the_wrong_shape_is_400(api, content_type, body):
    created = new_report(api)
    before = snapshot(api, created["id"])
    response = api.patch(created["id"], body, content_type=content_type)
    assert_rejected_unchanged(api, created["id"], before, response, 400)


@pytest.mark.parametrize("content_type, body, key", [
    pytest.param(MERGE, {"$where": "sleep(1000)"}, "$where", id="merge-top"),
    pytest.param(MERGE, {"$unset": None}, "$unset", id="merge-top-null"),
    pytest.param(MERGE, {"note": [{"text": "x", "$set": {"a": 1}}]}, "$set", id="merge-nested"),
    pytest.param(MERGE, {"impactPattern": {"description": "x", "$gt": ""}}, "$gt", id="merge-nested-object"),
    pytest.param(MERGE, {"impactPattern": {"description": "x", "$gt": None}}, "$gt", id="merge-nested-null"),
    pytest.param(MERGE, {"note": [{"text.body": "x"}]}, "text.body", id="merge-dotted"),
    pytest.param("application/json", {"name.first": "x"}, "name.first", id="json-dotted-top"),
    pytest.param(JSON_PATCH, [{"op": "add", "path": "/note", "value": [{"$x": 1}]}], "$x", id="jp-value"),
    pytest.param(JSON_PATCH, [{"op": "add", "path": "/impactPattern", "value": {"a.b": 1}}], "a.b",
                 id="jp-value-dotted"),
    pytest.param(JSON_PATCH, [{"op": "replace", "path": "/originatorParty",
                               "value": {"id": "C1", "@referredType": "Individual", "$ne": 1}}], "$ne",
                 id="jp-value-nested"),
    pytest.param(JSON_PATCH, [{"op": "test", "path": "/category", "value": {"$ne": 1}}], "$ne", id="jp-test-value"),
    pytest.param(JSON_PATCH, [{"op": "add", "path": "/impactPattern", "value": {}},
                              {"op": "add", "path": "/impactPattern/$x", "value": 1}], "$x", id="jp-path-key"),
])
def test_operator_or_dotted_key_is_400(api, content_type, body, key):
    created = new_report(api)
    before = snapshot(api, created["id"])
    response = api.patch(created["id"], body, content_type=content_type)
    assert_rejected_unchanged(api, created["id"], before, response, 400, None, key)


@pytest.mark.parametrize("content_type, body", [
    (MERGE, {"priority": 1}),
    (JSON_PATCH, [{"op": "replace", "path": "/priority", "value": 1}]),
    (MERGE, {"status": "inProgress"}),
])
def test_unknown_id_is_404(api, content_type, body):
    missing = str(uuid.uuid4())
    response = api.patch(missing, body, content_type=content_type)
    assert_error(response, 404, "notFound", missing)


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/x-www-form-urlencoded"])
def test_unsupported_content_type_is_415(api, content_type):
    created = new_report(api)
    before = snapshot(api, created["id"])
    response = api.patch(created["id"], '{"priority": 1}', content_type=content_type)
    assert_rejected_unchanged(api, created["id"], before, response, 415, None, content_type)


# --------------------------------------------------------------------------------------------------------------
# Lifecycle (TMF656 R18.5)
# --------------------------------------------------------------------------------------------------------------

def test_lifecycle_table_is_complete():
    assert set(STATUSES) == {t for targets in LIFECYCLE.values() for t in targets} | {"rejected", "acknowledged"}
    for source, path in PATH_TO.items():
        current = "acknowledged"
        for step in path:
            assert step in LIFECYCLE[current], (source, path)
            current = step
        assert current == source


def drive_to(api: Api, problem_id: str, status: str) -> None:
    for step in PATH_TO[status]:
        assert set_status(api, problem_id, step)["status"] == step


@pytest.mark.parametrize("source", STATUSES)
@pytest.mark.parametrize("target", STATUSES)
def test_every_status_pair_follows_the_lifecycle(api, source, target):
    created = new_report(api)
    drive_to(api, created["id"], source)
    before = snapshot(api, created["id"])
    later()
    response = api.patch(created["id"], {"status": target})

    if target == source:
        assert response.status_code == 200, response.text
        assert (response.json(), response.headers["ETag"]) == before, "a patch that changes nothing changed the resource"
    elif target in LIFECYCLE[source]:
        patched = ok(response)
        assert patched["status"] == target
        assert patched["statusChangeDate"] == patched["lastUpdate"] > before[0]["statusChangeDate"]
        records = patched["trackingRecord"]
        assert records[:-1] == before[0].get("trackingRecord", []), "existing tracking records changed"
        assert source in records[-1]["description"] and target in records[-1]["description"]
        assert records[-1]["time"] == patched["statusChangeDate"]
        if target == "resolved":
            assert patched["resolutionDate"] == patched["statusChangeDate"]
        assert response.headers["ETag"] != before[1]
        assert snapshot(api, created["id"]) == (patched, response.headers["ETag"])
    else:
        body = assert_rejected_unchanged(api, created["id"], before, response, 409, "invalidStatusTransition",
                                         [source, target])
        if LIFECYCLE[source]:
            for allowed in LIFECYCLE[source]:
                assert allowed in body["message"], f"409 message does not list allowed target {allowed!r}"
            for other in set(STATUSES) - LIFECYCLE[source] - {source, target}:
                assert f"{other}" not in body["message"].split(":", 1)[-1], f"{other!r} listed as allowed"
        else:
            assert "final" in body["message"]


@pytest.mark.parametrize("path", [
    ["inProgress", "held", "inProgress", "pending", "inProgress", "resolved", "closed"],
    ["inProgress", "resolved", "acknowledged", "inProgress", "resolved", "closed"],
    ["inProgress", "pending", "cancelled"],
    ["inProgress", "held", "cancelled"],
    ["inProgress", "cancelled"],
    ["cancelled"],
    ["rejected"],
], ids=lambda p: "-".join(p))
def test_lifecycle_walk_records_each_change(api, path):
    created = new_report(api)
    previous = created
    for step in path:
        later()
        patched = set_status(api, created["id"], step, statusChangeReason=f"reason for {step}")
        assert patched["status"] == step
        assert patched["statusChangeReason"] == f"reason for {step}"
        assert patched["statusChangeDate"] > previous["statusChangeDate"]
        previous = patched
    records = previous["trackingRecord"]
    assert len(records) == len(path), "one trackingRecord per status change"
    statuses = ["acknowledged"] + path
    for record, old, new in zip(records, statuses, statuses[1:]):
        assert old in record["description"] and new in record["description"], record
        assert record["time"]
    times = [r["time"] for r in records]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert len({r.get("id") for r in records}) == len(records)
    assert records[-1]["time"] == previous["statusChangeDate"]
    assert previous["creationDate"] == created["creationDate"]
    if "resolved" in path:
        assert previous["resolutionDate"]


def test_status_change_keeps_the_given_reason_in_the_record(api):
    created = new_report(api)
    patched = set_status(api, created["id"], "inProgress", statusChangeReason="field engineer dispatched")
    assert patched["statusChangeReason"] == "field engineer dispatched"
    record = patched["trackingRecord"][-1]
    assert "field engineer dispatched" in str(record), record


def test_status_change_by_json_patch(api):
    created = new_report(api)
    patched = ok(api.patch(created["id"], [{"op": "replace", "path": "/status", "value": "inProgress"}],
                           content_type=JSON_PATCH))
    assert patched["status"] == "inProgress" and len(patched["trackingRecord"]) == 1
    before = snapshot(api, created["id"])
    response = api.patch(created["id"], [{"op": "replace", "path": "/status", "value": "closed"}],
                         content_type=JSON_PATCH)
    assert_rejected_unchanged(api, created["id"], before, response, 409, "invalidStatusTransition", "closed")


def test_forbidden_transition_rejects_the_whole_patch(api):
    created = new_report(api)
    before = snapshot(api, created["id"])
    response = api.patch(created["id"], {"status": "resolved", "priority": 1, "name": "with other changes"})
    assert_rejected_unchanged(api, created["id"], before, response, 409, "invalidStatusTransition")


def test_created_with_a_status_other_than_acknowledged_is_refused(api):
    response = api.create(report(status="inProgress"))
    assert_error(response, 400, None, "acknowledged")


@pytest.mark.parametrize("content_type, body", [
    pytest.param(MERGE, {}, id="empty-merge"),
    pytest.param(JSON_PATCH, [], id="empty-json-patch"),
    pytest.param(MERGE, {"priority": 3, "category": "customer.qosDegradation"}, id="same-values"),
    pytest.param(MERGE, {"status": "acknowledged"}, id="same-status"),
    pytest.param(MERGE, {"name": None}, id="remove-absent"),
    pytest.param(JSON_PATCH, [{"op": "replace", "path": "/priority", "value": 1},
                              {"op": "replace", "path": "/priority", "value": 3}], id="change-and-back"),
    pytest.param(JSON_PATCH, [{"op": "test", "path": "/priority", "value": 3}], id="only-test"),
])
def test_patch_that_changes_nothing_keeps_etag_and_last_update(api, content_type, body):
    created = new_report(api)
    before = snapshot(api, created["id"])
    later()
    response = api.patch(created["id"], body, content_type=content_type)
    assert response.status_code == 200, response.text
    assert response.json() == before[0]
    assert response.headers["ETag"] == before[1]
    assert snapshot(api, created["id"]) == before


def test_patch_restating_a_date_in_another_form_changes_nothing(api):
    created = new_report(api, note=[{"text": "seen", "date": "2020-11-20T08:00:00Z"}])
    before = snapshot(api, created["id"])
    later()
    response = api.patch(created["id"], {"note": [{"text": "seen", "date": "2020-11-20T09:00:00+01:00"}]})
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == before[1]
    assert snapshot(api, created["id"]) == before


# --------------------------------------------------------------------------------------------------------------
# ETag / If-Match (amendment)
# --------------------------------------------------------------------------------------------------------------

def test_get_and_create_return_the_same_etag(api):
    response = api.create()
    created = response.json()
    assert response.headers["ETag"]
    assert snapshot(api, created["id"])[1] == response.headers["ETag"]


@pytest.mark.parametrize("content_type, body", [
    (MERGE, {"priority": 1}),
    (JSON_PATCH, [{"op": "replace", "path": "/priority", "value": 1}]),
])
def test_patch_with_current_etag_succeeds(api, content_type, body):
    created = new_report(api)
    _, etag = snapshot(api, created["id"])
    response = api.patch(created["id"], body, content_type=content_type, headers={"If-Match": etag})
    assert ok(response)["priority"] == 1
    assert response.headers["ETag"] != etag
    assert snapshot(api, created["id"])[1] == response.headers["ETag"]


@pytest.mark.parametrize("content_type, body", [
    (MERGE, {"priority": 1}),
    (JSON_PATCH, [{"op": "replace", "path": "/priority", "value": 1}]),
    (MERGE, {"status": "inProgress"}),
])
def test_patch_with_stale_etag_is_412_and_nothing_changes(api, content_type, body):
    created = new_report(api)
    _, stale = snapshot(api, created["id"])
    ok(api.patch(created["id"], {"name": "someone else's change"}))
    before = snapshot(api, created["id"])
    assert before[1] != stale
    response = api.patch(created["id"], body, content_type=content_type, headers={"If-Match": stale})
    assert_rejected_unchanged(api, created["id"], before, response, 412, "preconditionFailed")


def test_patch_with_unknown_etag_is_412(api):
    created = new_report(api)
    before = snapshot(api, created["id"])
    response = api.patch(created["id"], {"priority": 1}, headers={"If-Match": '"no-such-version"'})
    assert_rejected_unchanged(api, created["id"], before, response, 412, "preconditionFailed")


def test_patch_with_if_match_star_succeeds(api):
    created = new_report(api)
    response = api.patch(created["id"], {"priority": 1}, headers={"If-Match": "*"})
    assert ok(response)["priority"] == 1


def test_patch_with_if_match_list_containing_current_etag_succeeds(api):
    created = new_report(api)
    _, etag = snapshot(api, created["id"])
    response = api.patch(created["id"], {"priority": 1}, headers={"If-Match": f'"stale", {etag}'})
    assert ok(response)["priority"] == 1


def test_etag_changes_with_every_change_and_each_old_one_goes_stale(api):
    created = new_report(api)
    etags = [snapshot(api, created["id"])[1]]
    for priority in (1, 2, 4):
        response = api.patch(created["id"], {"priority": priority}, headers={"If-Match": etags[-1]})
        ok(response)
        etags.append(response.headers["ETag"])
    assert len(set(etags)) == len(etags)
    before = snapshot(api, created["id"])
    for stale in etags[:-1]:
        response = api.patch(created["id"], {"priority": 9}, headers={"If-Match": stale})
        assert_rejected_unchanged(api, created["id"], before, response, 412, "preconditionFailed")


# --------------------------------------------------------------------------------------------------------------
# Concurrency: no lost update
# --------------------------------------------------------------------------------------------------------------

N_WRITERS = 16


def run_concurrently(api: Api, count: int, send) -> list:
    barrier = threading.Barrier(count)

    def worker(index: int):
        client = Api(api.base_url, api.contract)  # one HTTP session per thread
        barrier.wait()
        return send(client, index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(worker, range(count)))


def test_concurrent_json_patch_appends_lose_no_note(api):
    created = new_report(api)
    ok(api.patch(created["id"], [{"op": "add", "path": "/note", "value": []}], content_type=JSON_PATCH))
    texts = [f"note {i} {uuid.uuid4()}" for i in range(N_WRITERS)]

    responses = run_concurrently(api, N_WRITERS, lambda client, i: client.patch(
        created["id"], [{"op": "add", "path": "/note/-", "value": {"text": texts[i]}}], content_type=JSON_PATCH))

    assert [r.status_code for r in responses] == [200] * N_WRITERS, [r.text for r in responses if r.status_code != 200]
    assert len({r.headers["ETag"] for r in responses}) == N_WRITERS, "two writes reported the same version"
    stored, etag = snapshot(api, created["id"])
    assert sorted(n["text"] for n in stored["note"]) == sorted(texts), "lost or duplicated update"
    assert etag in {r.headers["ETag"] for r in responses}


CONCURRENT_ATTRIBUTES = {
    "name": lambda v: v,
    "impactImportanceFactor": lambda v: v,
    "problemEscalation": lambda v: v,
    "statusChangeReason": lambda v: v,
    "@baseType": lambda v: v,
    "impactPattern": lambda v: {"description": v},
    "externalIdentifier": lambda v: [{"id": v}],
    "relatedEvent": lambda v: [{"id": v}],
    "rootCauseResource": lambda v: [{"id": v}],
    "rootCauseService": lambda v: [{"id": v}],
    "slaViolation": lambda v: [{"id": v}],
    "troubleTicket": lambda v: [{"id": v}],
    "underlyingAlarm": lambda v: [{"id": v}],
    "note": lambda v: [{"text": v}],
    "affectedLocation": lambda v: [{"id": v}],
    "affectedResource": lambda v: [{"id": v}],
}


def test_concurrent_merge_patches_of_distinct_attributes_lose_nothing(api):
    created = new_report(api)
    names = list(CONCURRENT_ATTRIBUTES)
    assert len(names) == N_WRITERS
    values = {name: CONCURRENT_ATTRIBUTES[name](f"{name}-{uuid.uuid4()}") for name in names}

    responses = run_concurrently(api, N_WRITERS, lambda client, i: client.patch(
        created["id"], {names[i]: values[names[i]]}))

    assert [r.status_code for r in responses] == [200] * N_WRITERS, [r.text for r in responses if r.status_code != 200]
    assert len({r.headers["ETag"] for r in responses}) == N_WRITERS
    stored, _ = snapshot(api, created["id"])
    assert {name: stored.get(name) for name in names} == values, "lost update"
    assert stored["priority"] == created["priority"] and stored["creationDate"] == created["creationDate"]


def test_concurrent_conditional_patches_let_exactly_one_win(api):
    created = new_report(api)
    _, etag = snapshot(api, created["id"])
    responses = run_concurrently(api, 8, lambda client, i: client.patch(
        created["id"], {"name": f"writer {i}"}, headers={"If-Match": etag}))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [412] * 7, codes
    winner = next(r for r in responses if r.status_code == 200)
    assert snapshot(api, created["id"]) == (winner.json(), winner.headers["ETag"])


def test_concurrent_status_changes_record_each_transition_once(api):
    created = new_report(api)
    responses = run_concurrently(api, 8, lambda client, i: client.patch(created["id"], {"status": "inProgress"}))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    stored, _ = snapshot(api, created["id"])
    assert stored["status"] == "inProgress"
    assert len(stored["trackingRecord"]) == 1, "a concurrent repeat of the same transition was recorded twice"
