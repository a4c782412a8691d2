"""/hub: subscribing, reading, listing and unsubscribing; bad subscriptions are refused at once."""
import pytest

from tests.support.assertions import assert_tmf_error

CALLBACK = "http://127.0.0.1:9/listener"


def subscribe(api, body):
    return api.request("POST", "/hub", json=body)


def test_subscribe_read_list_unsubscribe(api, server):
    query = "eventType=ServiceProblemCreateEvent,ServiceProblemStateChangeEvent&event.serviceProblem.priority.lte=2"
    response = subscribe(api, {"callback": CALLBACK, "query": query, "secret": "whsec_c2VjcmV0"})
    assert response.status_code == 201
    subscription = response.json()
    assert subscription == {"id": subscription["id"], "callback": CALLBACK, "query": query}
    assert response.headers["Location"] == f"{server.base_url}/hub/{subscription['id']}"
    assert api.request("GET", f"/hub/{subscription['id']}").json() == subscription
    listed = api.request("GET", "/hub?limit=1000").json()
    assert subscription in listed
    assert all("secret" not in s and "_secret" not in s for s in listed)

    assert api.request("DELETE", f"/hub/{subscription['id']}").status_code == 204
    assert_tmf_error(api.request("GET", f"/hub/{subscription['id']}"), 404, subscription["id"])
    assert_tmf_error(api.request("DELETE", f"/hub/{subscription['id']}"), 404, subscription["id"])


def test_subscription_without_query_takes_everything(api):
    response = subscribe(api, {"callback": CALLBACK})
    assert response.status_code == 201 and "query" not in response.json()
    api.request("DELETE", f"/hub/{response.json()['id']}")


@pytest.mark.parametrize("body, fragment", [
    ({"callback": CALLBACK, "query": "event.serviceProblem.colour=red"}, "colour"),
    ({"callback": CALLBACK, "query": "eventType.between=x"}, "between"),
    ({"callback": CALLBACK, "query": "event.serviceProblem.priority=high"}, "integer"),
    ({"callback": CALLBACK, "query": "event.serviceProblem.status=open"}, "one of"),
    ({"callback": "http://10.1.2.3/listener"}, "private"),
    ({"callback": "http://192.168.0.10:8080/x"}, "private"),
    ({"callback": "ftp://127.0.0.1/listener"}, "http"),
    ({"callback": "listener"}, "http"),
    ({"callback": "http://user:pw@127.0.0.1:9/x"}, "credentials"),
    ({"callback": "http://no-such-host.invalid/x"}, "resolved"),
    ({"query": "eventType=ServiceProblemCreateEvent"}, "callback"),
    ({"callback": 7}, "callback"),
    ({"callback": CALLBACK, "secret": ""}, "secret"),
    ({"callback": CALLBACK, "secret": "whsec_not base64!"}, "base64"),
    ({"callback": CALLBACK, "query": "eventType=ServiceProblemCreatedEvent"}, "'ServiceProblemCreatedEvent' is not an event"),
    ({"callback": CALLBACK, "query": "eventType=ServiceProblemCreateEvent,Nope"}, "'Nope' is not an event"),
    ({"callback": CALLBACK, "query": "eventType!=$ne"}, "'$ne' is not an event"),
    ({"callback": CALLBACK, "id": "chosen-by-the-client"}, "'id' was unexpected"),
    ({"callback": CALLBACK, "colour": "red"}, "'colour' was unexpected"),
])
def test_invalid_subscription_is_400_and_nothing_is_stored(api, body, fragment):
    before = api.request("GET", "/hub?limit=1").headers["X-Total-Count"]
    assert_tmf_error(subscribe(api, body), 400, fragment)
    assert api.request("GET", "/hub?limit=1").headers["X-Total-Count"] == before
