"""Notification builders (after the source documents) and an intake client that checks every answer against
openapi/intake.yaml."""
from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import requests
import yaml

INTAKE_SPEC = Path(__file__).resolve().parents[2] / "openapi" / "intake.yaml"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def customer(party_id: str, name: str = "Jane Customer") -> dict:
    return {"id": party_id, "name": name, "role": "customer", "@referredType": "Individual"}


def chars(**values) -> list[dict]:
    return [{"name": name, "value": value} for name, value in values.items()]


def ticket_event(*, customer_id: str | None, product_id: str | None = None, severity: str = "Major",
                 characteristics: list[dict] | None = None, event_id: str | None = None, ticket_id: str | None = None,
                 event_type: str = "TroubleTicketCreateEvent") -> dict:
    """TMF621 TroubleTicketCreateEvent (envelope and TroubleTicket attribute names of TMF621 v4.0.0)."""
    ticket_id = ticket_id or unique("TT")
    ticket = {
        "id": ticket_id,
        "href": f"https://crm.example.com/tmf-api/troubleTicket/v4/troubleTicket/{ticket_id}",
        "name": "Slow broadband in the evening",
        "description": "Throughput far below the contracted 500 Mbit/s every evening since Monday",
        "severity": severity,
        "ticketType": "complaint",
        "status": "acknowledged",
        "relatedParty": [customer(customer_id)] if customer_id else [],
        "relatedEntity": ([{"id": product_id, "role": "impactedProduct", "@referredType": "Product",
                            "name": "Fibre 500"}] if product_id else []),
        "troubleTicketCharacteristic": characteristics if characteristics is not None else chars(
            metric="downlinkThroughput", observedValue="120", threshold="500", unit="Mbit/s",
            degradationStart="2026-11-20T18:00:00Z"),
    }
    return {"eventId": event_id or unique("tt-evt"), "eventTime": "2026-11-21T08:00:00Z", "eventType": event_type,
            "domain": "TroubleTicketManagement", "event": {"troubleTicket": ticket}}


def alarm_event(*, alarm_id: str, customer_id: str | None, service_id: str | None, observed: str = "120",
                severity: str = "major", state: str = "raised", event_type: str = "AlarmCreateEvent",
                alarm_type: str = "QualityOfServiceAlarm", metric: str = "downlinkThroughput",
                direction: str = "down", alarmed_object: str | None = None, event_id: str | None = None,
                cleared_time: str | None = None) -> dict:
    """TMF642 AlarmCreateEvent/AlarmStateChangeEvent; the customer in the envelope's relatedParty (TMF688 Event)."""
    alarm = {
        "id": alarm_id,
        "href": f"https://oss.example.com/tmf-api/alarm/v4/alarm/{alarm_id}",
        "alarmType": alarm_type,
        "perceivedSeverity": severity,
        "probableCause": "thresholdCrossed",
        "specificProblem": "downlink throughput below threshold",
        "state": state,
        "alarmRaisedTime": "2026-11-20T18:05:00Z",
        "sourceSystemId": "nms-east",
        "alarmedObjectType": "AccessNode",
        "alarmedObject": {"id": alarmed_object or unique("olt"), "href": "https://oss.example.com/resource/olt"},
        "affectedService": [{"id": service_id}] if service_id else [],
        "crossedThresholdInformation": {
            "indicatorName": metric, "indicatorUnit": "Mbit/s", "observedValue": observed, "direction": direction,
            "granularity": "15min", "threshold": {"id": "thr-dl-250", "name": "downlink below 250 Mbit/s"},
        },
    }
    if cleared_time:
        alarm["alarmClearedTime"] = cleared_time
    envelope = {"eventId": event_id or unique("alarm-evt"), "eventTime": "2026-11-20T18:06:00Z",
                "eventType": event_type, "event": {"alarm": alarm}}
    if customer_id:
        envelope["relatedParty"] = [customer(customer_id)]
    return envelope


def sla_violation_event(*, customer_id: str, service_id: str, metric: str = "availability",
                        actual: str = "99.1", reference: str = "99.9", operator: str = ">=",
                        sla_description: str = "Gold business SLA", event_id: str | None = None) -> dict:
    """TMF623 v2 SlaViolation (id, href, date, sla, violation, relatedParty) in a TMF event envelope."""
    violation_id = unique("slav")
    return {
        "eventId": event_id or unique("sla-evt"), "eventTime": "2026-11-21T00:00:00Z",
        "eventType": "SlaViolationCreateEvent",
        "source": {"id": service_id, "@referredType": "Service", "name": "Business internet"},
        "event": {"slaViolation": {
            "id": violation_id,
            "href": f"https://sla.example.com/slaManagement/v2/slaViolation/{violation_id}",
            "date": "2026-11-20T23:59:00Z",
            "sla": {"href": "https://sla.example.com/slaManagement/v2/sla/SLA-7", "description": sla_description},
            "violation": {"unit": "%", "referenceValue": reference, "operator": operator, "actualValue": actual,
                          "tolerance": 0.05, "comment": "monthly availability below target",
                          "rule": {"href": "https://sla.example.com/slaManagement/v2/sla/SLA-7#rule-1",
                                   "metric": metric}},
            "relatedParty": [{"href": f"https://party.example.com/individual/{customer_id}", "role": "customer",
                              "name": "Acme Ltd"}],
        }},
    }


def degradation_event(*, customer_id: str, service_id: str, metric: str = "latency", observed=85, threshold=40,
                      event_type: str = "QoSDegradationEvent", event_id: str | None = None, **extra) -> dict:
    """TMF688 Event whose `event` is the documented QosDegradation."""
    payload = {"customer": customer(customer_id), "service": {"id": service_id, "name": "Gaming VPN"},
               "metric": metric, "observedValue": observed, "threshold": threshold, "unit": "ms",
               "degradationStart": "2026-11-20T19:00:00Z", "severity": "minor", **extra}
    return {"eventId": event_id or unique("evt"), "eventTime": "2026-11-20T19:01:00Z", "eventType": event_type,
            "reportingSystem": {"id": "probe-7", "name": "active probes"}, "event": {"qosDegradation": payload}}


class IntakeContract:
    def __init__(self):
        self.spec = yaml.safe_load(INTAKE_SPEC.read_text())

    def _validator(self, schema: dict) -> jsonschema.Draft4Validator:
        return jsonschema.Draft4Validator({"components": self.spec["components"], **schema},
                                          format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)

    def check(self, method: str, path: str, response: requests.Response) -> None:
        template = next((t for t in self.spec["paths"]
                         if path == "/intake" + t or (t.endswith("{id}") and path.startswith("/intake" + t[:-4]))),
                        None)
        assert template is not None, f"{path} is not in openapi/intake.yaml"
        operation = self.spec["paths"][template].get(method.lower())
        if operation is None:
            assert response.status_code == 405, f"{method} {path}: undeclared method answered {response.status_code}"
            self._validator({"$ref": "#/components/schemas/Error"}).validate(response.json())
            return
        declared = operation["responses"]
        assert str(response.status_code) in declared, f"{method} {path}: {response.status_code} not declared"
        schema = declared[str(response.status_code)].get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            schema = {"$ref": "#/components/schemas/Error"}
        self._validator(schema).validate(response.json())
        if response.status_code >= 400:
            body = response.json()
            assert body["@type"] == "Error" and body["status"] == str(response.status_code), body


class Intake:
    """POSTs notifications to /intake and reads the received-event records; checks every answer."""

    def __init__(self, root_url: str, contract: IntakeContract):
        self.root_url = root_url
        self.contract = contract
        self.session = requests.Session()

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        url = path if path.startswith("http") else self.root_url + "/intake" + path
        kwargs.setdefault("timeout", 30)
        response = self.session.request(method, url, **kwargs)
        self.contract.check(method, urlsplit(url).path, response)
        return response

    def post(self, listener: str, body, **kwargs) -> requests.Response:
        if isinstance(body, (bytes, str)):
            return self.request("POST", f"/{listener}", data=body,
                                headers={"Content-Type": "application/json"}, **kwargs)
        return self.request("POST", f"/{listener}", json=body, **kwargs)

    def records(self, query: str = "") -> requests.Response:
        return self.request("GET", "/record" + (f"?{query}" if query else ""))

    def total(self, query: str = "") -> int:
        return int(self.records(query + ("&" if query else "") + "limit=1").headers["X-Total-Count"])
