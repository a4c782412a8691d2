"""Intake listeners for systems that cannot fetch tokens: a Standard Webhooks signature with the secret configured
for the source (TMF_INTAKE_WEBHOOK_SECRETS) stands for a token. Signatures are made with the `standardwebhooks`
package, independently of the server's own code; unsigned, wrongly signed, stale or misdirected ones are 401s
that write nothing."""
from __future__ import annotations

import base64
import json
import os
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests
from standardwebhooks import Webhook

from tests.security.conftest import bearer
from tests.intake.support import ticket_event, unique
from tests.support.assertions import assert_tmf_error


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


TICKETS_SECRET, ALARMS_SECRET = new_secret(), new_secret()
SERVER_ENV = {"TMF_INTAKE_WEBHOOK_SECRETS": f"troubleTicket={TICKETS_SECRET},alarm={ALARMS_SECRET}"}


def signed(secret: str, body: bytes, *, when: datetime | None = None, webhook_id: str | None = None) -> dict:
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    when = when or datetime.now(timezone.utc)
    return {"webhook-id": webhook_id, "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": Webhook(secret).sign(webhook_id, when, body.decode()),
            "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def auditor(idp):
    return bearer(idp.token("intake:read serviceProblem:read"))


def totals(secured, auditor) -> tuple[str, str]:
    records = requests.get(secured.root_url + "/intake/record?limit=1", headers=auditor, timeout=10)
    problems = requests.get(secured.base_url + "/serviceProblem?limit=1", headers=auditor, timeout=10)
    return records.headers["X-Total-Count"], problems.headers["X-Total-Count"]


def ticket() -> bytes:
    return json.dumps(ticket_event(customer_id=unique("C"), product_id=unique("prod"))).encode()


def post(secured, path: str, body: bytes, headers: dict) -> requests.Response:
    return requests.post(secured.root_url + "/intake" + path, data=body,
                         headers={"Content-Type": "application/json", **headers}, timeout=30)


def test_a_signed_notification_is_received_and_its_changes_name_the_source(secured, auditor):
    body = ticket()
    response = post(secured, "/troubleTicketEvent", body, signed(TICKETS_SECRET, body))
    assert response.status_code == 201, response.text
    problem_id = response.json()["serviceProblem"]["id"]
    records = requests.get(f"{secured.base_url}/serviceProblemEventRecord?serviceProblem.id={problem_id}",
                           headers=auditor, timeout=10).json()
    assert records and {r["user"] for r in records} == {"webhook:troubleTicket"}


def test_past_the_reports_bound_the_intakes_newest_tracking_record_still_names_the_source(secured, auditor):
    """docs/intake.md, "What a report keeps": the intake drops its older tracking records of a report that took more
    than 50 notifications; the one each change adds still names who made it."""
    customer_id, product_id, ticket_id = unique("C"), unique("prod"), unique("TT")
    for i in range(53):
        body = json.dumps(ticket_event(customer_id=customer_id, product_id=product_id, ticket_id=ticket_id,
                                       event_type="TroubleTicketCreateEvent" if i == 0 else
                                       "TroubleTicketAttributeValueChangeEvent")).encode()
        response = post(secured, "/troubleTicketEvent", body, signed(TICKETS_SECRET, body))
        assert response.status_code == (201 if i == 0 else 200), response.text
    problem = requests.get(f"{secured.base_url}/serviceProblem/{response.json()['serviceProblem']['id']}",
                           headers=auditor, timeout=10).json()
    appended = [t for t in problem["trackingRecord"] if t["description"].startswith("intake: appended")]
    assert len(appended) == 51  # the first and the 50 most recent of 52
    assert [t.get("user") for t in appended] == ["webhook:troubleTicket"] * 51


def test_the_server_signs_as_standard_webhooks_verifies():
    """The server's signing (used for deliveries and to check the intake) against the package's verification."""
    from tmf_server.events.signing import sign

    body, when = '{"a": 1}', int(datetime.now(timezone.utc).timestamp())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(when),
               "webhook-signature": sign(TICKETS_SECRET, "msg_1", when, body)}
    assert Webhook(TICKETS_SECRET).verify(body, headers) == {"a": 1}


def stale(body: bytes) -> dict:
    """Rightly signed, ten minutes ago: a replay."""
    return signed(TICKETS_SECRET, body, when=datetime.now(timezone.utc) - timedelta(minutes=10))


@pytest.mark.parametrize("path, make_headers, fragment", [
    ("/troubleTicketEvent", lambda body: {}, "No authorization"),
    ("/troubleTicketEvent", lambda body: signed(new_secret(), body), "does not match"),
    ("/troubleTicketEvent", lambda body: signed(ALARMS_SECRET, body), "does not match"),  # another source's secret
    ("/troubleTicketEvent", lambda body: signed(TICKETS_SECRET, body + b" "), "does not match"),  # body changed
    ("/troubleTicketEvent", stale, "timestamp"),
    ("/troubleTicketEvent", lambda body: {**signed(TICKETS_SECRET, body), "webhook-id": "msg_other"}, "does not match"),
    ("/troubleTicketEvent", lambda body: {k: v for k, v in signed(TICKETS_SECRET, body).items()
                                           if k != "webhook-id"}, "webhook-id"),
    ("/event", lambda body: signed(TICKETS_SECRET, body), "No signing secret"),  # no secret for this source
])
def test_an_unsigned_or_wrongly_signed_notification_is_401_and_writes_nothing(secured, auditor, path, make_headers,
                                                                              fragment):
    before = totals(secured, auditor)
    body = ticket()
    response = post(secured, path, body, make_headers(body))
    assert_tmf_error(response, 401, fragment)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert totals(secured, auditor) == before


def test_a_bearer_token_still_works_on_the_signed_listeners(secured, idp):
    body = ticket()
    response = post(secured, "/troubleTicketEvent", body, bearer(idp.token("intake:write", sub="crm-hub")))
    assert response.status_code == 201, response.text


def test_the_served_intake_document_offers_signatures_only_on_the_listeners(secured):
    document = requests.get(secured.root_url + "/intake/openapi.json", timeout=10).json()
    assert document["components"]["securitySchemes"]["webhookSignature"]["name"] == "webhook-signature"
    for template, item in document["paths"].items():
        for method, operation in item.items():
            schemes = {name for requirement in operation["security"] for name in requirement}
            assert schemes == ({"oauth2", "webhookSignature"} if method == "post" else {"oauth2"}), template
