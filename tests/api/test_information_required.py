"""A report that lacks what makes it actionable is created pending, asks for the rest, and goes on once supplied."""
import pytest

from tests.support.client import JSON_PATCH, report

CUSTOMER = {"id": "C42", "role": "customer", "@referredType": "Individual"}
METRIC = {"name": "metric", "value": "packetLoss"}
START = {"name": "degradationStart", "value": "2026-11-20T18:00:00Z"}


def records(api, problem_id, event_type):
    return api.request("GET", f"/serviceProblemEventRecord?serviceProblem.id={problem_id}&eventType={event_type}"
                       ).json()


@pytest.mark.parametrize("overrides, missing", [
    ({"relatedParty": [{"id": "A7", "role": "agent", "@referredType": "Individual"}]}, "relatedParty[role=customer]"),
    ({"affectedService": []}, "affectedService"),
    ({"characteristic": [START]}, "characteristic[name=metric]"),
    ({"characteristic": [METRIC]}, "characteristic[name=degradationStart]"),
])
def test_missing_information_makes_a_pending_report_that_asks_for_it(api, overrides, missing):
    created = api.created(**overrides)
    assert created["status"] == "pending"
    assert created["statusChangeReason"] == f"information required: {missing}"
    [asked] = records(api, created["id"], "ServiceProblemInformationRequiredEvent")
    assert asked["notification"]["fieldPath"] == missing
    assert asked["notification"]["event"]["serviceProblem"] == created


def test_everything_missing_is_named_at_once(api):
    body = report(relatedParty=[], affectedService=[], characteristic=[])
    created = api.create(body).json()
    assert created["statusChangeReason"] == ("information required: relatedParty[role=customer], affectedService, "
                                             "characteristic[name=metric], characteristic[name=degradationStart]")


def test_supplying_the_information_acknowledges_the_report(api):
    created = api.created(characteristic=[START])
    patched = api.patch(created["id"], [{"op": "add", "path": "/characteristic/-", "value": METRIC}], JSON_PATCH).json()
    assert patched["status"] == "acknowledged"
    assert patched["statusChangeReason"] == "information supplied"
    [state] = records(api, created["id"], "ServiceProblemStateChangeEvent")
    assert state["notification"]["event"]["serviceProblem"]["status"] == "acknowledged"
    assert patched["trackingRecord"][-1]["description"] == "status changed from pending to acknowledged"


def test_partial_information_keeps_it_pending(api):
    created = api.created(characteristic=[], affectedService=[])
    patched = api.patch(created["id"], {"affectedService": [{"id": "svc-1"}]}).json()
    assert patched["status"] == "pending"
    assert records(api, created["id"], "ServiceProblemStateChangeEvent") == []


def test_a_complete_report_is_acknowledged_and_asks_nothing(api):
    created = api.created()
    assert created["status"] == "acknowledged" and "statusChangeReason" not in created
    assert records(api, created["id"], "ServiceProblemInformationRequiredEvent") == []


def test_pending_for_another_reason_is_not_acknowledged_by_a_change(api):
    created = api.created()
    api.patch(created["id"], {"status": "inProgress"})
    waiting = api.patch(created["id"], {"status": "pending", "statusChangeReason": "awaiting the customer's call"})
    assert waiting.json()["status"] == "pending"
    assert api.patch(created["id"], {"name": "renamed"}).json()["status"] == "pending"
