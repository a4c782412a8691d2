"""Hub listeners (real HTTP servers on loopback) receive every event of the server, reliably."""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid

import pytest

from tests.support.client import Api, report
from tests.support.polling import wait_for
from tests.support.server import ServerProcess

# Delivery settings of every server these tests start: fast retries, loopback callbacks allowed.
FAST = {"TMF_CALLBACK_ALLOW": "loopback", "TMF_DELIVERY_SCHEDULE": "0.1,0.2,0.4,0.8,1.6,3.2",
        "TMF_DISPATCH_POLL": "0.05", "TMF_LEASE_SECONDS": "10", "TMF_DELIVERY_TIMEOUT": "5"}


def subscribe(api: Api, callback: str, query: str | None = None, secret: str | None = None) -> str:
    body = {"callback": callback, **({"query": query} if query else {}), **({"secret": secret} if secret else {})}
    response = api.request("POST", "/hub", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def deliveries(api: Api, subscription_id: str, state: str | None = None) -> list[dict]:
    query = f"subscriptionId={subscription_id}" + (f"&state={state}" if state else "") + "&limit=1000"
    response = api.request("GET", f"{api.base_url.split('/tmf-api')[0]}/admin/delivery?{query}", check=False)
    # 206 too: the count is a second query, and a fan-out may add a delivery between the two.
    assert response.status_code in (200, 206), response.text
    return response.json()


def record_ids(api: Api, problem_id: str) -> list[str]:
    records = api.request("GET", f"/serviceProblemEventRecord?serviceProblem.id={problem_id}&limit=100").json()
    return [r["id"] for r in records]


@pytest.fixture(scope="module")
def fast_server(tmp_path_factory, contract):
    process = ServerProcess(tmp_path_factory.mktemp("notify"), env=FAST).start()
    yield process, Api(process.base_url, contract)
    process.stop()


def test_each_change_reaches_matching_subscribers_only(fast_server, listener_factory):
    _server, api = fast_server
    tag = f"cat-{uuid.uuid4().hex[:8]}"
    creates_only, everything, other = listener_factory(), listener_factory(), listener_factory()
    subscribe(api, creates_only.url, f"eventType=ServiceProblemCreateEvent&event.serviceProblem.category={tag}")
    subscribe(api, everything.url, f"event.serviceProblem.category={tag}")
    unmatched = subscribe(api, other.url, f"event.serviceProblem.category={tag}-other")

    created = api.created(category=tag)
    patched = api.patch(created["id"], {"priority": 1}).json()
    progressed = api.patch(created["id"], {"status": "inProgress"}).json()
    assert api.delete(created["id"]).status_code == 204

    wait_for(lambda: len(everything.delivered_ids()) == 4)
    received = [r.json for r in everything.received(2)]
    assert [e["eventType"] for e in received] == [
        "ServiceProblemCreateEvent", "ServiceProblemAttributeValueChangeEvent",
        "ServiceProblemStateChangeEvent", "ServiceProblemDeleteEvent"]
    assert [e["event"]["serviceProblem"] for e in received] == [created, patched, progressed, progressed]
    assert received[1]["fieldPath"] == "priority"
    for request in everything.received(2):
        assert request.webhook_id == request.json["eventId"]
        assert request.headers["content-type"].startswith("application/json")
        assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 600
        assert "webhook-signature" not in request.headers
    assert sorted(record_ids(api, created["id"])) == sorted(e["eventId"] for e in received)

    wait_for(lambda: len(creates_only.delivered_ids()) == 1)
    assert creates_only.received(2)[0].json["eventId"] == received[0]["eventId"]
    # Fan-out of all four events is done (they were delivered), and none matched the third subscription.
    assert deliveries(api, unmatched) == [] and other.received() == []


def test_signature_verifies_with_the_secret(fast_server, listener_factory):
    _server, api = fast_server
    key = b"0123456789abcdef0123456789abcdef"
    listener = listener_factory()
    tag = f"sig-{uuid.uuid4().hex[:8]}"
    subscribe(api, listener.url, f"event.serviceProblem.category={tag}", secret="whsec_" + base64.b64encode(key).decode())
    api.created(category=tag)
    [request] = wait_for(lambda: listener.received(2))
    signed = f"{request.webhook_id}.{request.headers['webhook-timestamp']}.".encode() + request.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert f"v1,{expected}" in request.headers["webhook-signature"].split(" ")


def test_a_failing_listener_gets_the_event_again_with_the_same_id(fast_server, listener_factory):
    _server, api = fast_server
    listener = listener_factory(lambda _request, seen: (500, {}) if seen < 2 else (204, {}))
    tag = f"retry-{uuid.uuid4().hex[:8]}"
    subscribe(api, listener.url, f"event.serviceProblem.category={tag}")
    created = api.created(category=tag)
    wait_for(lambda: listener.delivered_ids())
    ids = {r.webhook_id for r in listener.received()}
    assert [r.status for r in listener.received()] == [500, 500, 204]
    assert ids == set(record_ids(api, created["id"]))


def test_a_listener_that_is_down_gets_the_event_once_it_is_back(fast_server, listener_factory):
    _server, api = fast_server
    listener = listener_factory(up=False)
    tag = f"down-{uuid.uuid4().hex[:8]}"
    subscription = subscribe(api, listener.url, f"event.serviceProblem.category={tag}")
    created = api.created(category=tag)
    wait_for(lambda: any(d["state"] == "retrying" and d["attemptCount"] >= 2 for d in deliveries(api, subscription)))
    listener.up()
    wait_for(lambda: listener.delivered_ids())
    assert listener.delivered_ids() == record_ids(api, created["id"])
    [delivery] = deliveries(api, subscription, "delivered")
    assert delivery["attemptCount"] >= 3


def test_after_the_last_attempt_a_delivery_is_parked_and_can_be_redriven(fast_server, listener_factory):
    _server, api = fast_server
    healthy = {"now": False}
    listener = listener_factory(lambda _request, _seen: (204, {}) if healthy["now"] else (503, {}))
    tag = f"park-{uuid.uuid4().hex[:8]}"
    subscription = subscribe(api, listener.url, f"event.serviceProblem.category={tag}")
    api.created(category=tag)
    [parked] = wait_for(lambda: deliveries(api, subscription, "parked"), timeout=60)
    assert parked["attemptCount"] == 7  # the first attempt and the six retries of the schedule
    healthy["now"] = True
    root = api.base_url.split("/tmf-api")[0]
    response = api.request("POST", f"{root}/admin/delivery/{parked['id']}/redrive", check=False)
    assert response.status_code == 200, response.text
    wait_for(lambda: listener.delivered_ids())
    assert listener.delivered_ids() == [parked["eventId"]]
    again = api.request("POST", f"{root}/admin/delivery/{parked['id']}/redrive", check=False)
    assert again.status_code == 409 and again.json()["@type"] == "Error"


def test_410_gone_ends_the_subscription(fast_server, listener_factory):
    _server, api = fast_server
    gone = listener_factory(lambda _request, _seen: (410, {}))
    witness = listener_factory()
    tag = f"gone-{uuid.uuid4().hex[:8]}"
    subscription = subscribe(api, gone.url, f"event.serviceProblem.category={tag}")
    subscribe(api, witness.url, f"event.serviceProblem.category={tag}")
    api.created(category=tag)
    wait_for(lambda: deliveries(api, subscription, "cancelled"))
    api.created(category=tag)
    # The witness has both events, so both were fanned out: the second one to nobody else.
    wait_for(lambda: len(witness.delivered_ids()) == 2)
    assert len(gone.received()) == 1
    assert len(deliveries(api, subscription)) == 1


def test_a_failed_delivery_never_changes_an_api_response(fast_server, listener_factory):
    _server, api = fast_server
    listener = listener_factory(lambda _request, _seen: (500, {}))
    tag = f"isolated-{uuid.uuid4().hex[:8]}"
    subscribe(api, listener.url, f"event.serviceProblem.category={tag}")
    created = api.create(report(category=tag))
    assert created.status_code == 201
    wait_for(lambda: listener.received(5))  # the create event's delivery has failed
    patched = api.patch(created.json()["id"], {"priority": 2})
    assert patched.status_code == 200 and patched.json()["priority"] == 2
