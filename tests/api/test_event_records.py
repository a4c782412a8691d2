"""Every change of a ServiceProblem produces its events, kept as ServiceProblemEventRecords."""
import uuid

import pytest

from tests.support.client import JSON_PATCH, report


def records_of(api, problem_id: str) -> list[dict]:
    response = api.request("GET", f"/serviceProblemEventRecord?serviceProblem.id={problem_id}&sort=eventTime")
    assert response.status_code == 200
    return response.json()


def event_types(api, problem_id: str) -> list[str]:
    return sorted(r["eventType"] for r in records_of(api, problem_id))


def test_create_records_one_create_event_with_the_resource(api):
    correlation = f"corr-{uuid.uuid4()}"
    created = api.create(report(), headers={"X-Correlation-ID": correlation}).json()
    [record] = records_of(api, created["id"])
    assert record["eventType"] == "ServiceProblemCreateEvent"
    assert record["serviceProblem"] == {"id": created["id"], "href": created["href"], "@referredType": "ServiceProblem"}
    event = record["notification"]
    assert event["eventId"] == record["id"]
    assert event["event"]["serviceProblem"] == created
    assert event["correlationId"] == correlation
    assert event["eventTime"] == event["timeOcurred"] == created["creationDate"]
    assert event["domain"] and event["title"] and created["id"] in event["description"]
    assert event["priority"] == str(created["priority"])
    assert record["href"].endswith(f"/serviceProblemEventRecord/{record['id']}")
    assert api.request("GET", f"/serviceProblemEventRecord/{record['id']}").json() == record


def test_attribute_change_names_what_changed(api):
    created = api.created()
    patched = api.patch(created["id"], {"priority": 1, "name": "evening slowness"}).json()
    [change] = [r for r in records_of(api, created["id"]) if r["eventType"] != "ServiceProblemCreateEvent"]
    assert change["eventType"] == "ServiceProblemAttributeValueChangeEvent"
    assert change["notification"]["fieldPath"] == "name,priority"
    assert change["notification"]["event"]["serviceProblem"] == patched


def test_status_change_is_a_state_change_event(api):
    created = api.created()
    api.patch(created["id"], {"status": "inProgress", "statusChangeReason": "line test booked"})
    assert event_types(api, created["id"]) == ["ServiceProblemCreateEvent", "ServiceProblemStateChangeEvent"]
    [state] = [r for r in records_of(api, created["id"]) if r["eventType"] == "ServiceProblemStateChangeEvent"]
    assert "acknowledged" in state["notification"]["description"]
    assert state["notification"]["event"]["serviceProblem"]["status"] == "inProgress"


def test_status_and_attributes_together_give_both_events(api):
    created = api.created()
    api.patch(created["id"], [{"op": "replace", "path": "/status", "value": "inProgress"},
                              {"op": "add", "path": "/note", "value": [{"text": "called"}]}], JSON_PATCH)
    assert event_types(api, created["id"]) == ["ServiceProblemAttributeValueChangeEvent",
                                               "ServiceProblemCreateEvent", "ServiceProblemStateChangeEvent"]
    [change] = [r for r in records_of(api, created["id"])
                if r["eventType"] == "ServiceProblemAttributeValueChangeEvent"]
    assert change["notification"]["fieldPath"] == "note"


def test_delete_records_the_last_state(api):
    created = api.created()
    patched = api.patch(created["id"], {"name": "last name"}).json()
    assert api.delete(created["id"]).status_code == 204
    [deleted] = [r for r in records_of(api, created["id"]) if r["eventType"] == "ServiceProblemDeleteEvent"]
    assert deleted["notification"]["event"]["serviceProblem"] == patched


@pytest.mark.parametrize("body, content_type, status", [
    ({"status": "closed"}, None, 409),
    ({"id": "other"}, None, 400),
    ({"priority": "high"}, None, 400),
    ([{"op": "test", "path": "/priority", "value": 9}, {"op": "replace", "path": "/priority", "value": 1}],
     JSON_PATCH, 409),
])
def test_a_refused_change_records_no_event(api, body, content_type, status):
    created = api.created()
    kwargs = {"content_type": content_type} if content_type else {}
    assert api.patch(created["id"], body, **kwargs).status_code == status
    assert event_types(api, created["id"]) == ["ServiceProblemCreateEvent"]


def test_a_patch_that_changes_nothing_records_no_event(api):
    created = api.created()
    assert api.patch(created["id"], {"priority": created["priority"]}).status_code == 200
    assert event_types(api, created["id"]) == ["ServiceProblemCreateEvent"]


def test_stale_if_match_records_no_event(api):
    created = api.created()
    response = api.patch(created["id"], {"name": "x"}, headers={"If-Match": '"99"'})
    assert response.status_code == 412
    assert api.delete(created["id"], headers={"If-Match": '"99"'}).status_code == 412
    assert event_types(api, created["id"]) == ["ServiceProblemCreateEvent"]


def test_a_refused_create_records_no_event(api):
    before = int(api.request("GET", "/serviceProblemEventRecord?limit=1").headers["X-Total-Count"])
    assert api.create({**report(), "status": "closed"}).status_code == 400
    assert api.create({"category": "only"}).status_code == 400
    after = int(api.request("GET", "/serviceProblemEventRecord?limit=1").headers["X-Total-Count"])
    assert after == before


def test_records_filter_by_event_type(api):
    created = api.created()
    api.patch(created["id"], {"status": "inProgress"})
    response = api.request("GET", f"/serviceProblemEventRecord?serviceProblem.id={created['id']}"
                                  f"&eventType=ServiceProblemStateChangeEvent")
    assert [r["eventType"] for r in response.json()] == ["ServiceProblemStateChangeEvent"]
    assert response.headers["X-Total-Count"] == "1"


def test_record_errors(api):
    response = api.request("GET", "/serviceProblemEventRecord/no-such-record")
    assert response.status_code == 404 and "no-such-record" in response.json()["message"]
    response = api.request("GET", "/serviceProblemEventRecord?colour=red")
    assert response.status_code == 400 and "colour" in response.json()["message"]
