"""The admin API over HTTP (openapi/admin.yaml through Connexion, responses validated): list, read, redrive."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import connexion
import pytest
from connexion.exceptions import ProblemException
from starlette.exceptions import HTTPException

from tests.events.factory import add_events, event
from tmf_server import errors
from tmf_server.events.deliveries import (
    DELIVERED,
    PARKED,
    PENDING,
    DeliveryStore,
    new_delivery,
)
from tmf_server.app import load_spec
from tmf_server.security.contract import served_document
from tmf_server.settings import Settings

OPENAPI = Path(__file__).resolve().parents[2] / "openapi"


@pytest.fixture()
def client(db):
    app = connexion.FlaskApp(__name__, specification_dir=str(OPENAPI))
    # the document as served without authentication (TMF_AUTH=off); tests/security/ cover it with tokens
    app.add_api(served_document(load_spec(OPENAPI / "admin.yaml"), Settings()), validate_responses=True)
    app.app.extensions["tmf_server"] = SimpleNamespace(deliveries=DeliveryStore(db), settings=Settings())
    app.add_error_handler(errors.ApiError, errors.handle_api_error)
    http_errors = errors.make_http_exception_handler(lambda _path: None)
    app.add_error_handler(ProblemException, http_errors)
    app.add_error_handler(HTTPException, http_errors)
    with app.test_client() as test_client:
        yield test_client


@pytest.fixture()
def stored(db):
    """Four deliveries: S1 has one delivered and two parked, S2 one pending."""
    e1, e2, e3 = add_events(db, event("P1", 1), event("P1", 2), event("P2", 1))
    documents = [new_delivery(e1, "S1", 1_000), new_delivery(e2, "S1", 2_000, PARKED, "gave up"),
                 new_delivery(e3, "S1", 3_000, PARKED, "gave up"), new_delivery(e1, "S2", 4_000)]
    documents[0].update(state=DELIVERED, deliveredAt="2026-11-25T17:00:01.000Z",
                        attempts=[{"at": "2026-11-25T17:00:00.500Z", "durationMs": 12, "statusCode": 200,
                                   "error": None, "retryAfter": None, "response": None, "callback": "http://x/",
                                   "dispatcher": "h/1/a"}], attemptCount=1)
    DeliveryStore(db).create_many(documents)
    return {d["_id"]: d for d in documents}, [d["_id"] for d in documents]


def assert_tmf_error(response, status: int, code: str | None = None):
    assert response.status_code == status
    body = response.json()
    assert body["@type"] == "Error" and body["status"] == str(status) and body["reason"] and body["message"]
    if code:
        assert body["code"] == code


def test_list_filters_pages_and_counts(client, stored):
    _documents, ids = stored
    everything = client.get("/admin/delivery")
    assert everything.status_code == 200 and everything.headers["X-Total-Count"] == "4"
    assert {d["id"] for d in everything.json()} == set(ids)

    parked = client.get("/admin/delivery", params={"state": "parked", "subscriptionId": "S1"})
    assert {d["id"] for d in parked.json()} == {ids[1], ids[2]} and parked.headers["X-Total-Count"] == "2"
    assert all(d["state"] == "parked" and d["reason"] == "gave up" for d in parked.json())

    by_event = client.get("/admin/delivery", params={"eventId": ids[0].split(":")[0]})
    assert {d["id"] for d in by_event.json()} == {ids[0], ids[3]}

    page = client.get("/admin/delivery", params={"limit": 1, "offset": 1})
    assert page.status_code == 206 and page.headers["X-Result-Count"] == "1" and 'rel="next"' in page.headers["Link"]
    assert_tmf_error(client.get("/admin/delivery", params={"state": "lost"}), 400)
    assert_tmf_error(client.get("/admin/delivery", params={"limit": 5000}), 400)


def test_one_delivery_with_its_attempts(client, stored):
    _documents, ids = stored
    shown = client.get(f"/admin/delivery/{ids[0]}").json()
    assert shown["state"] == "delivered" and shown["attempts"][0]["statusCode"] == 200
    assert "error" not in shown["attempts"][0] and "nextAttemptAt" not in shown
    pending = client.get(f"/admin/delivery/{ids[3]}").json()
    assert pending["state"] == "pending" and pending["nextAttemptAt"] == "1970-01-01T00:00:04.000Z"
    assert_tmf_error(client.get("/admin/delivery/nothing:here"), 404, "notFound")


def test_redrive_one_and_all_parked_of_a_subscription(client, stored):
    _documents, ids = stored
    redriven = client.post(f"/admin/delivery/{ids[1]}/redrive")
    assert redriven.status_code == 200
    assert redriven.json()["state"] == "pending" and redriven.json()["redriveCount"] == 1
    assert "reason" not in redriven.json() and "parkedAt" not in redriven.json()
    assert_tmf_error(client.post(f"/admin/delivery/{ids[1]}/redrive"), 409, "deliveryNotParked")
    assert_tmf_error(client.post(f"/admin/delivery/{ids[0]}/redrive"), 409, "deliveryNotParked")
    assert_tmf_error(client.post("/admin/delivery/nothing:here/redrive"), 404)

    everything = client.post("/admin/delivery/redrive", params={"subscriptionId": "S1"})
    assert everything.status_code == 200 and everything.json() == {"subscriptionId": "S1", "redriven": 1}
    assert client.get("/admin/delivery", params={"state": PENDING, "subscriptionId": "S1"}).headers["X-Total-Count"] == "2"
    assert_tmf_error(client.post("/admin/delivery/redrive"), 400)
