"""With tokens: hub subscriptions belong to the client that made them; every change names who made it (tracking
records and event records); the server alone writes trackingRecord, and @type names ServiceProblem or a subclass."""
from __future__ import annotations

import pytest

from tests.support.assertions import assert_tmf_error, no_subscription_written, nothing_written, report_unchanged
from tests.support.client import Api, report
from tests.support.listener import Listener

EVERYTHING = "serviceProblem:read serviceProblem:write hub:read hub:write"


def client(secured, contract, idp, scope: str = EVERYTHING, **token_claims) -> Api:
    api = Api(secured.base_url, contract)
    api.session.headers["Authorization"] = f"Bearer {idp.token(scope, **token_claims)}"
    return api


@pytest.fixture(scope="module")
def callback():
    listener = Listener().up()
    yield listener.url
    listener.down()


def subscribe(api: Api, callback: str) -> dict:
    response = api.request("POST", "/hub", json={"callback": callback})
    assert response.status_code == 201, response.text
    return response.json()


def listed_ids(api: Api) -> list[str]:
    response = api.request("GET", "/hub?limit=1000")
    assert response.status_code == 200
    assert int(response.headers["X-Total-Count"]) == len(response.json())
    return [s["id"] for s in response.json()]


def test_a_subscription_is_its_clients_alone(secured, contract, idp, callback):
    crm = client(secured, contract, idp, client_id="crm", sub="service-account-crm")
    noc = client(secured, contract, idp, client_id="noc", sub="service-account-noc")
    mine = subscribe(crm, callback)
    theirs = subscribe(noc, callback)
    assert mine["id"] in listed_ids(crm) and theirs["id"] not in listed_ids(crm)
    assert theirs["id"] in listed_ids(noc) and mine["id"] not in listed_ids(noc)
    assert crm.request("GET", f"/hub/{mine['id']}").json() == mine
    assert_tmf_error(noc.request("GET", f"/hub/{mine['id']}"), 404, mine["id"])  # as if it did not exist
    assert_tmf_error(noc.request("DELETE", f"/hub/{mine['id']}"), 404, mine["id"])
    assert crm.request("GET", f"/hub/{mine['id']}").status_code == 200, "another client's DELETE removed it"
    assert crm.request("DELETE", f"/hub/{mine['id']}").status_code == 204
    assert noc.request("DELETE", f"/hub/{theirs['id']}").status_code == 204


def test_the_owner_is_client_id_else_azp_else_sub(secured, contract, idp, callback):
    by_azp = client(secured, contract, idp, client_id=None, azp="portal", sub="u-1")
    same_azp = client(secured, contract, idp, client_id=None, azp="portal", sub="u-2")
    by_sub = client(secured, contract, idp, client_id=None, sub="u-1")
    created = subscribe(by_azp, callback)
    assert same_azp.request("GET", f"/hub/{created['id']}").status_code == 200, "azp is the owner, not sub"
    assert by_sub.request("GET", f"/hub/{created['id']}").status_code == 404
    own = subscribe(by_sub, callback)
    assert by_sub.request("DELETE", f"/hub/{own['id']}").status_code == 204
    assert same_azp.request("DELETE", f"/hub/{created['id']}").status_code == 204


def test_an_admin_token_reads_and_deletes_every_clients_subscriptions(secured, contract, idp, callback):
    crm = client(secured, contract, idp, client_id="crm-2")
    operator = client(secured, contract, idp, EVERYTHING + " admin", client_id="ops")
    created = subscribe(crm, callback)
    assert created["id"] in listed_ids(operator)
    assert operator.request("GET", f"/hub/{created['id']}").json() == created
    assert operator.request("DELETE", f"/hub/{created['id']}").status_code == 204
    assert_tmf_error(crm.request("GET", f"/hub/{created['id']}"), 404)


def test_a_callback_into_the_shared_address_space_is_refused(secured, contract, idp):
    """The metadata service of one cloud (100.100.100.200, in 100.64.0.0/10): 400 and nothing stored."""
    api = client(secured, contract, idp, client_id="crm-3")
    with no_subscription_written(api):
        assert_tmf_error(api.request("POST", "/hub", json={"callback": "http://100.100.100.200/latest/meta-data/"}),
                         400, "100.100.100.200", "shared")


def records_of(api: Api, problem_id: str) -> list[dict]:
    response = api.request("GET", f"/serviceProblemEventRecord?serviceProblem.id={problem_id}&sort=eventTime")
    assert response.status_code == 200
    return response.json()


def test_every_change_records_the_tokens_subject(secured, contract, idp):
    agent = client(secured, contract, idp, sub="agent-7")
    created = agent.created(characteristic=[])  # no metric: created pending, with a tracking record
    assert created["status"] == "pending"
    assert [r["user"] for r in created["trackingRecord"]] == ["agent-7"]
    assert {r["user"] for r in records_of(agent, created["id"])} == {"agent-7"}

    supervisor = client(secured, contract, idp, sub="supervisor-2")
    response = supervisor.patch(created["id"], {"status": "cancelled", "statusChangeReason": "duplicate"})
    assert response.status_code == 200, response.text
    tracking = response.json()["trackingRecord"]
    assert [r["user"] for r in tracking] == ["agent-7", "supervisor-2"], "earlier records keep their author"
    records = records_of(agent, created["id"])
    assert [r["user"] for r in records][-1] == "supervisor-2"
    assert all("user" not in r["notification"] for r in records), "subscribers' notifications do not carry it"


def test_a_task_records_its_subject_too(secured, contract, idp):
    agent = client(secured, contract, idp, sub="agent-9")
    pending = agent.created(characteristic=[])
    operator = client(secured, contract, idp, sub="operator-4")
    answer = operator.request("POST", "/problemAcknowledgement", json={"problem": [{"id": pending["id"]}]})
    assert answer.status_code == 201, answer.text
    after = agent.get(pending["id"]).json()
    assert after["status"] == "acknowledged" and after["trackingRecord"][-1]["user"] == "operator-4"


def test_a_create_carrying_a_tracking_record_is_400_and_writes_nothing(secured, contract, idp):
    api = client(secured, contract, idp)
    forged = [{"id": "t1", "description": "approved by the NOC", "time": "2020-01-01T00:00:00Z",
               "systemId": "tmf656-qos-server", "user": "noc-admin"}]
    with nothing_written(api):
        assert_tmf_error(api.create(report(trackingRecord=forged)), 400, "trackingRecord", "set by the server")


@pytest.mark.parametrize("value", ["Anything", "serviceProblem", "ServiceProblemX", "Problem", "Qos Problem"])
def test_a_type_other_than_service_problem_or_a_subclass_is_400(secured, contract, idp, value):
    api = client(secured, contract, idp)
    with nothing_written(api):
        assert_tmf_error(api.create(report(**{"@type": value})), 400, "@type")
    created = api.created()
    with report_unchanged(api, created["id"]):
        assert_tmf_error(api.patch(created["id"], {"@type": value}), 400, "@type")
        assert_tmf_error(api.patch(created["id"], [{"op": "replace", "path": "/@type", "value": value}],
                                   "application/json-patch+json"), 400, "@type")


def test_a_subclass_type_is_accepted(secured, contract, idp):
    api = client(secured, contract, idp)
    created = api.created(**{"@type": "QosDegradationProblem", "@baseType": "ServiceProblem"})
    assert created["@type"] == "QosDegradationProblem"
    response = api.patch(created["id"], {"@type": "ServiceProblem"})
    assert response.status_code == 200 and response.json()["@type"] == "ServiceProblem"


def test_an_idempotency_key_is_its_clients_alone(secured, contract, idp):
    """Two clients that happen to send the same Idempotency-Key get their own reports: one client's key never
    answers (or refuses) another client's request."""
    crm = client(secured, contract, idp, client_id="crm-keys", sub="service-account-crm")
    noc = client(secured, contract, idp, client_id="noc-keys", sub="service-account-noc")
    key = {"Idempotency-Key": "ticket-1001"}
    first = crm.create(report(), headers=key)
    other = noc.create(report(priority=1), headers=key)  # another body: a 422 if the key were shared
    assert (first.status_code, other.status_code) == (201, 201), other.text
    assert first.json()["id"] != other.json()["id"]
    again = crm.create(report(), headers=key)
    assert (again.status_code, again.json()["id"]) == (201, first.json()["id"])
