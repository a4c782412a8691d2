"""The intake listeners over HTTP, against a real server process: reports created, appended to, cleared and
grouped; duplicates recognised; invalid notifications refused with nothing stored; events at real listeners."""
from __future__ import annotations

import copy
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.intake.support import (
    Intake,
    IntakeContract,
    alarm_event,
    chars,
    degradation_event,
    sla_violation_event,
    ticket_event,
    unique,
)
from tests.support.assertions import assert_tmf_error
from tests.support.client import Api
from tests.support.polling import wait_for
from tests.support.server import ServerProcess

# docs/intake.md, "Priority and impact" (default matrix), written out independently of the module under test.
PRIORITY = {("platinum", "major"): 2, ("gold", "major"): 3, ("bronze", "major"): 6, ("bronze", "critical"): 4,
            ("bronze", "minor"): 8}


def get_problem(tmf, ref_or_id) -> dict:
    problem_id = ref_or_id["id"] if isinstance(ref_or_id, dict) else ref_or_id
    response = tmf.get(problem_id)
    assert response.status_code == 200, response.text
    return response.json()


def characteristic(problem: dict, name: str):
    values = [c["value"] for c in problem.get("characteristic", []) if c["name"] == name]
    assert len(values) <= 1, (name, problem["characteristic"])
    return values[0] if values else None


def subscribe(tmf, callback: str, query: str) -> str:
    response = tmf.request("POST", "/hub", json={"callback": callback, "query": query})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def received_of_type(listener, event_type: str) -> list[dict]:
    return [r.json for r in listener.received(2) if r.json["eventType"] == event_type]


def test_a_customer_ticket_with_full_details_becomes_an_acknowledged_report(intake, tmf):
    customer_id, product_id = unique("C"), unique("P")
    event = ticket_event(customer_id=customer_id, product_id=product_id)
    response = intake.post("troubleTicketEvent", event)

    assert response.status_code == 201, response.text
    record = response.json()
    assert record["outcome"] == "created" and record["source"] == "troubleTicket"
    assert record["id"] == f"troubleTicket:{event['eventId']}" and record["sourceEventId"] == event["eventId"]
    assert response.headers["Location"] == record["href"]
    problem = get_problem(tmf, record["serviceProblem"])
    ticket = event["event"]["troubleTicket"]
    assert problem["status"] == "acknowledged"
    assert problem["category"] == "customer.declarer"
    assert problem["description"] == ticket["description"]
    assert problem["originatorParty"]["id"] == customer_id
    assert [p["id"] for p in problem["relatedParty"] if p["role"] == "customer"] == [customer_id]
    assert {(e["id"], e["@referredType"]) for e in problem["relatedEntity"]} == {(product_id, "Product")}
    assert characteristic(problem, "metric") == "downlinkThroughput"
    assert characteristic(problem, "observedValue") == 120
    assert characteristic(problem, "threshold") == 500
    assert characteristic(problem, "unit") == "Mbit/s"
    assert characteristic(problem, "degradationStart") == "2026-11-20T18:00:00.000Z"
    assert problem["troubleTicket"] == [{"id": ticket["id"], "href": ticket["href"], "name": ticket["name"],
                                         "@referredType": "TroubleTicket"}]
    assert problem["firstAlert"]["id"] == ticket["id"] and problem["firstAlert"]["@referredType"] == "TroubleTicket"
    assert [(e["id"], e["href"]) for e in problem["relatedEvent"]] == [(event["eventId"], record["href"])]
    assert {"id": ticket["id"], "owner": problem["originatingSystem"],
            "externalIdentifierType": "TroubleTicket"} in problem["externalIdentifier"]
    assert problem["priority"] == PRIORITY[("bronze", "major")]  # no tier given: the default tier

    stored = intake.request("GET", f"/record/troubleTicket:{event['eventId']}").json()
    assert stored["payload"] == event and stored["outcome"] == "created"
    assert stored["serviceProblem"]["id"] == problem["id"]


def test_a_ticket_without_the_product_is_pending_and_asks_for_it(intake, tmf, listener_factory):
    customer_id = unique("C")
    listener = listener_factory()
    subscribe(tmf, listener.url, f"event.serviceProblem.relatedParty.id={customer_id}")

    record = intake.post("troubleTicketEvent", ticket_event(customer_id=customer_id)).json()
    problem = get_problem(tmf, record["serviceProblem"])
    assert record["outcome"] == "created" and problem["status"] == "pending"

    [asked] = wait_for(lambda: received_of_type(listener, "ServiceProblemInformationRequiredEvent"),
                       message="the InformationRequired event at the listener")
    assert asked["event"]["serviceProblem"]["id"] == problem["id"]
    assert "affectedService" in asked["fieldPath"]
    assert "metric" not in asked["fieldPath"] and "relatedParty" not in asked["fieldPath"]

    service_id = unique("svc")
    patched = tmf.patch(problem["id"], {"affectedService": [{"id": service_id, "name": "Fibre 500"}]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["status"] == "acknowledged"
    [changed] = wait_for(lambda: received_of_type(listener, "ServiceProblemStateChangeEvent"),
                         message="the StateChange event at the listener")
    assert changed["event"]["serviceProblem"]["id"] == problem["id"]
    assert changed["event"]["serviceProblem"]["status"] == "acknowledged"


def test_a_later_ticket_update_supplying_the_product_completes_the_report(intake, tmf):
    customer_id, product_id, ticket_id = unique("C"), unique("P"), unique("TT")
    first = intake.post("troubleTicketEvent", ticket_event(customer_id=customer_id, ticket_id=ticket_id)).json()
    assert get_problem(tmf, first["serviceProblem"])["status"] == "pending"

    update = ticket_event(customer_id=customer_id, product_id=product_id, ticket_id=ticket_id,
                          event_type="TroubleTicketAttributeValueChangeEvent")
    response = intake.post("troubleTicketEvent", update)
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "merged"
    assert response.json()["serviceProblem"]["id"] == first["serviceProblem"]["id"]
    problem = get_problem(tmf, first["serviceProblem"])
    assert problem["status"] == "acknowledged"
    assert product_id in [e["id"] for e in problem["relatedEntity"]]
    assert tmf.total(f"relatedParty.id={customer_id}") == 1


def test_the_same_alarm_event_twice_makes_one_report(intake, tmf):
    customer_id, service_id = unique("C"), unique("svc")
    event = alarm_event(alarm_id=unique("A"), customer_id=customer_id, service_id=service_id)
    first = intake.post("alarmEvent", event)
    second = intake.post("alarmEvent", copy.deepcopy(event))

    assert first.status_code == 201 and first.json()["outcome"] == "created"
    assert second.status_code == 200, second.text
    again = second.json()
    assert again["outcome"] == "duplicate" and again["firstOutcome"] == "created"
    assert again["id"] == first.json()["id"] and again["serviceProblem"] == first.json()["serviceProblem"]
    assert again["duplicateCount"] == 1  # the answer counts this redelivery, as the stored record does
    assert tmf.total(f"relatedParty.id={customer_id}") == 1
    assert intake.total(f"sourceEventId={event['eventId']}") == 1
    stored = intake.request("GET", f"/record/alarm:{event['eventId']}").json()
    assert stored["outcome"] == "created" and stored["duplicateCount"] == 1
    assert len(get_problem(tmf, again["serviceProblem"])["relatedEvent"]) == 1


def test_three_alarms_for_one_customer_product_make_one_report_with_the_worst_value(intake, tmf):
    customer_id, service_id, resource = unique("C"), unique("svc"), unique("olt")
    # downlink throughput: a lower value is worse (direction down); severities major, critical, minor
    events = [alarm_event(alarm_id=unique("A"), customer_id=customer_id, service_id=service_id, observed=value,
                          severity=severity, alarmed_object=resource)
              for value, severity in (("300", "major"), ("120", "critical"), ("200", "minor"))]
    answers = [intake.post("alarmEvent", e) for e in events]

    assert [a.status_code for a in answers] == [201, 200, 200]
    assert [a.json()["outcome"] for a in answers] == ["created", "merged", "merged"]
    assert len({a.json()["serviceProblem"]["id"] for a in answers}) == 1
    problem = get_problem(tmf, answers[0].json()["serviceProblem"])
    assert tmf.total(f"relatedParty.id={customer_id}") == 1
    assert [e["id"] for e in problem["relatedEvent"]] == [e["eventId"] for e in events]
    assert sorted(a["id"] for a in problem["underlyingAlarm"]) == sorted(e["event"]["alarm"]["id"] for e in events)
    assert characteristic(problem, "observedValue") == 120
    assert characteristic(problem, "metric") == "downlinkThroughput"
    # raised by the critical alarm, not lowered again by the minor one
    assert problem["priority"] == PRIORITY[("bronze", "critical")]
    appended = [t for t in problem["trackingRecord"] if t["description"].startswith("intake: appended")]
    assert len(appended) == 2
    changes = tmf.request("GET", f"/serviceProblemEventRecord?serviceProblem.id={problem['id']}"
                                 f"&eventType=ServiceProblemAttributeValueChangeEvent").json()
    assert len(changes) == 2
    assert all("relatedEvent" in c["notification"]["fieldPath"].split(",") for c in changes)


def test_an_alarm_without_customer_waits_for_it_and_a_later_event_of_the_alarm_supplies_it(intake, tmf):
    alarm_id, service_id, customer_id = unique("A"), unique("svc"), unique("C")
    first = intake.post("alarmEvent", alarm_event(alarm_id=alarm_id, customer_id=None, service_id=service_id))
    assert first.status_code == 201, first.text
    assert get_problem(tmf, first.json()["serviceProblem"])["status"] == "pending"
    again = intake.post("alarmEvent", alarm_event(alarm_id=alarm_id, customer_id=None, service_id=service_id,
                                                  event_type="AlarmAttributeValueChangeEvent", observed="90"))
    assert again.json()["outcome"] == "merged"
    named = intake.post("alarmEvent", alarm_event(alarm_id=alarm_id, customer_id=customer_id, service_id=service_id,
                                                  event_type="AlarmAttributeValueChangeEvent"))
    assert named.json()["outcome"] == "merged"
    assert named.json()["serviceProblem"]["id"] == first.json()["serviceProblem"]["id"]
    problem = get_problem(tmf, first.json()["serviceProblem"])
    assert problem["status"] == "acknowledged"
    assert [p["id"] for p in problem["relatedParty"] if p["role"] == "customer"] == [customer_id]
    assert characteristic(problem, "observedValue") == 90 and len(problem["relatedEvent"]) == 3


def test_concurrent_notifications_about_one_customer_product_make_one_report(intake_server, intake, tmf):
    customer_id, service_id = unique("C"), unique("svc")
    events = [alarm_event(alarm_id=unique("A"), customer_id=customer_id, service_id=service_id,
                          observed=str(200 - i)) for i in range(6)]
    deliveries = events + [copy.deepcopy(events[0]), copy.deepcopy(events[3])]  # two redelivered at once

    def deliver(event: dict) -> dict:
        client = Intake(intake_server.root_url, IntakeContract())  # a session per sender

        def answered():  # a sender retries a 409 (the same event, or the same customer, being processed)
            response = client.post("alarmEvent", event)
            return None if response.status_code == 409 else response
        response = wait_for(answered, timeout=60, interval=0.2, message=f"an answer to {event['eventId']}")
        assert response.status_code in (200, 201), response.text
        return response.json()

    with ThreadPoolExecutor(len(deliveries)) as pool:
        answers = list(pool.map(deliver, deliveries))

    outcomes = sorted(a["outcome"] for a in answers)
    assert outcomes.count("created") == 1, outcomes
    assert outcomes.count("merged") + outcomes.count("duplicate") == len(deliveries) - 1, outcomes
    assert len({a["serviceProblem"]["id"] for a in answers}) == 1
    assert tmf.total(f"relatedParty.id={customer_id}") == 1
    problem = get_problem(tmf, answers[0]["serviceProblem"])
    assert sorted(e["id"] for e in problem["relatedEvent"]) == sorted(e["eventId"] for e in events)
    assert characteristic(problem, "observedValue") == 195  # the lowest throughput of the six
    assert sum(intake.total(f"sourceEventId={e['eventId']}") for e in events) == len(events)


def test_a_cleared_alarm_adds_a_tracking_record_and_opens_no_report(intake, tmf):
    customer_id, service_id, alarm_id = unique("C"), unique("svc"), unique("A")
    raised = intake.post("alarmEvent", alarm_event(alarm_id=alarm_id, customer_id=customer_id,
                                                   service_id=service_id)).json()
    clear = alarm_event(alarm_id=alarm_id, customer_id=customer_id, service_id=service_id, state="cleared",
                        severity="cleared", event_type="AlarmStateChangeEvent", cleared_time="2026-11-20T21:00:00Z")
    response = intake.post("alarmEvent", clear)

    assert response.status_code == 200, response.text
    record = response.json()
    assert record["outcome"] == "cleared" and record["serviceProblem"] == raised["serviceProblem"]
    assert tmf.total(f"relatedParty.id={customer_id}") == 1
    problem = get_problem(tmf, raised["serviceProblem"])
    assert problem["status"] == "acknowledged"
    cleared = [t for t in problem["trackingRecord"] if "cleared" in t["description"]]
    assert len(cleared) == 1 and alarm_id in cleared[0]["description"]
    assert "2026-11-20T21:00:00.000Z" in cleared[0]["description"]
    assert clear["eventId"] in [e["id"] for e in problem["relatedEvent"]]


def test_a_cleared_alarm_without_an_open_report_opens_none(intake, tmf):
    customer_id = unique("C")
    clear = alarm_event(alarm_id=unique("A"), customer_id=customer_id, service_id=unique("svc"), state="cleared",
                        severity="cleared", event_type="AlarmStateChangeEvent")
    response = intake.post("alarmEvent", clear)
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "cleared" and response.json()["reason"] == "no open report"
    assert "serviceProblem" not in response.json()
    assert tmf.total(f"relatedParty.id={customer_id}") == 0


def test_one_root_alarm_for_several_customers_groups_their_reports_under_a_parent(intake, tmf):
    alarm_id, resource = unique("A"), unique("olt")
    customers = [unique("C") for _ in range(3)]
    services = [unique("svc") for _ in range(3)]

    def raise_for(index: int) -> dict:
        response = intake.post("alarmEvent", alarm_event(alarm_id=alarm_id, customer_id=customers[index],
                                                         service_id=services[index], alarmed_object=resource))
        assert response.status_code == 201, response.text
        return response.json()

    first, second = raise_for(0), raise_for(1)
    assert "parentProblem" not in first
    parent_id = second["parentProblem"]["id"]
    parent = get_problem(tmf, parent_id)
    children = [first["serviceProblem"]["id"], second["serviceProblem"]["id"]]
    assert parent["category"] == "system.originated"
    assert sorted(u["id"] for u in parent["underlyingProblem"]) == sorted(children)
    assert sorted(p["id"] for p in parent["relatedParty"] if p["role"] == "customer") == sorted(customers[:2])
    assert alarm_id in [a["id"] for a in parent["underlyingAlarm"]]
    for child_id, customer_id in zip(children, customers):
        child = get_problem(tmf, child_id)
        assert [p["id"] for p in child["parentProblem"]] == [parent_id]
        assert [p["id"] for p in child["relatedParty"] if p["role"] == "customer"] == [customer_id]

    third = raise_for(2)
    assert third["parentProblem"]["id"] == parent_id
    parent = get_problem(tmf, parent_id)
    assert sorted(u["id"] for u in parent["underlyingProblem"]) == sorted(children + [third["serviceProblem"]["id"]])
    # the same alarm again for the first customer is appended to that customer's report, nothing new
    again = intake.post("alarmEvent", alarm_event(alarm_id=alarm_id, customer_id=customers[0],
                                                  service_id=services[0], alarmed_object=resource)).json()
    assert again["outcome"] == "merged" and again["serviceProblem"]["id"] == children[0]
    assert tmf.total(f"underlyingProblem.id={children[0]}") == 1


@pytest.mark.parametrize("tier,expected", [("platinum", ("platinum", "major")), ("gold", ("gold", "major")),
                                           ("bronze", ("bronze", "major")), (None, ("bronze", "major"))])
def test_the_sla_tier_sets_the_priority(intake, tmf, tier, expected):
    symptom = chars(metric="packetLoss", observedValue="4.5", threshold="1", unit="%",
                    degradationStart="2026-11-20T18:00:00Z")
    if tier:
        symptom.append({"name": "slaTier", "value": tier.upper()})
    event = ticket_event(customer_id=unique("C"), product_id=unique("P"), severity="Major", characteristics=symptom)
    problem = get_problem(tmf, intake.post("troubleTicketEvent", event).json()["serviceProblem"])
    assert problem["priority"] == PRIORITY[expected]
    assert problem["impactImportanceFactor"] == str(110 - 10 * PRIORITY[expected])
    assert characteristic(problem, "slaTier") == tier  # as the ticket said it (lower case), absent if it did not
    assert {"name": "slaTier", "value": expected[0]} in problem["impactPattern"]["characteristic"]  # as applied


def test_an_sla_violation_becomes_a_system_originated_report_with_the_tier_of_its_sla(intake, tmf):
    customer_id, service_id = unique("C"), unique("svc")
    event = sla_violation_event(customer_id=customer_id, service_id=service_id)
    record = intake.post("slaViolationEvent", event).json()
    problem = get_problem(tmf, record["serviceProblem"])
    violation = event["event"]["slaViolation"]

    assert record["outcome"] == "created" and problem["status"] == "acknowledged"
    assert problem["category"] == "system.originated"
    assert [p["id"] for p in problem["relatedParty"] if p["role"] == "customer"] == [customer_id]
    assert [s["id"] for s in problem["affectedService"]] == [service_id]
    assert problem["slaViolation"] == [{"id": violation["id"], "href": violation["href"],
                                        "@referredType": "SlaViolation"}]
    assert {"id": "SLA-7", "href": violation["sla"]["href"], "name": "Gold business SLA", "role": "sla",
            "@referredType": "Sla"} in problem["relatedEntity"]
    assert characteristic(problem, "metric") == "availability"
    assert characteristic(problem, "observedValue") == 99.1 and characteristic(problem, "threshold") == 99.9
    assert characteristic(problem, "direction") == "down"  # the metric had to stay >= 99.9
    assert characteristic(problem, "degradationStart") == "2026-11-20T23:59:00.000Z"
    assert problem["priority"] == PRIORITY[("gold", "major")]  # tier from the SLA reference, a breached target


def test_a_generic_event_is_appended_and_cleared_like_the_others(intake, tmf):
    customer_id, service_id = unique("C"), unique("svc")
    first = intake.post("event", degradation_event(customer_id=customer_id, service_id=service_id, observed=85))
    worse = intake.post("event", degradation_event(customer_id=customer_id, service_id=service_id, observed=140))
    better = intake.post("event", degradation_event(customer_id=customer_id, service_id=service_id, observed=60))
    assert [r.json()["outcome"] for r in (first, worse, better)] == ["created", "merged", "merged"]
    problem = get_problem(tmf, first.json()["serviceProblem"])
    assert problem["category"] == "system.originated" and problem["originatingSystem"] == "active probes"
    assert characteristic(problem, "observedValue") == 140  # latency: a higher value is worse
    assert characteristic(problem, "direction") == "up"

    cleared = intake.post("event", degradation_event(customer_id=customer_id, service_id=service_id,
                                                     event_type="QoSDegradationClearedEvent"))
    assert cleared.status_code == 200 and cleared.json()["outcome"] == "cleared"
    assert cleared.json()["serviceProblem"]["id"] == problem["id"]
    assert tmf.total(f"relatedParty.id={customer_id}") == 1


def test_an_alarm_that_is_not_about_quality_of_service_is_recorded_as_rejected(intake, tmf):
    customer_id = unique("C")
    event = alarm_event(alarm_id=unique("A"), customer_id=customer_id, service_id=unique("svc"),
                        alarm_type="Equipment Alarm")
    response = intake.post("alarmEvent", event)
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "rejected" and "Equipment Alarm" in response.json()["reason"]
    assert tmf.total(f"relatedParty.id={customer_id}") == 0
    listed = intake.records(f"source=alarm&outcome=rejected&sourceEventId={event['eventId']}")
    assert [r["id"] for r in listed.json()] == [f"alarm:{event['eventId']}"]
    assert listed.headers["X-Total-Count"] == "1"


def _without(payload: dict, *path: str) -> dict:
    payload = copy.deepcopy(payload)
    node = payload
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return payload


def _with(payload: dict, value, *path: str) -> dict:
    payload = copy.deepcopy(payload)
    node = payload
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return payload


_TT = ticket_event(customer_id="C-invalid", product_id="P-invalid")
_ALARM = alarm_event(alarm_id="A-invalid", customer_id="C-invalid", service_id="svc-invalid")
_SLA = sla_violation_event(customer_id="C-invalid", service_id="svc-invalid")
_EVENT = degradation_event(customer_id="C-invalid", service_id="svc-invalid")

INVALID = [
    # docs/intake.md: only what cannot be understood is refused (every problem named), nothing stored
    ("troubleTicketEvent", _without(_TT, "eventId"), "eventId"),
    ("troubleTicketEvent", _with(_TT, "TroubleTicketDeleteEvent", "eventType"), "eventType"),
    ("troubleTicketEvent", _with(_TT, {}, "event"), "troubleTicket"),
    ("troubleTicketEvent", _without(_TT, "event", "troubleTicket", "id"), "event.troubleTicket: 'id' is a required"),
    ("troubleTicketEvent", _with(_TT, {"$where": "1"}, "event", "troubleTicket", "note"), "$where"),
    ("alarmEvent", _with(_ALARM, "yesterday", "event", "alarm", "alarmRaisedTime"), "alarmRaisedTime"),
    ("alarmEvent", _with(_ALARM, True, "event", "alarm", "id"), "event.alarm.id"),
    ("alarmEvent", _with(_ALARM, [], "event", "alarm"), "event.alarm"),
    ("slaViolationEvent", _with(_SLA, {"x": 1}, "event", "slaViolation", "violation", "actualValue"), "actualValue"),
    ("slaViolationEvent", _with(_SLA, " ", "event", "slaViolation", "id"),
     "event.slaViolation.id: An identifier must not be empty"),
    ("event", _with(_EVENT, "sideways", "event", "qosDegradation", "direction"), "direction"),
    ("event", _with(_EVENT, "2026-13-45", "event", "qosDegradation", "degradationStart"), "degradationStart"),
    ("event", _without(_EVENT, "event", "qosDegradation"), "qosDegradation"),
]


@pytest.mark.parametrize("listener,payload,field", INVALID, ids=[f"{i[0]}-{i[2]}" for i in INVALID])
def test_an_invalid_notification_is_a_400_naming_the_field_and_stores_nothing(intake, tmf, listener, payload, field):
    payload = _with(payload, unique("bad"), "eventId") if "eventId" in payload else payload
    records, reports = intake.total(), tmf.total()
    response = intake.post(listener, payload)
    assert_tmf_error(response, 400, field)
    assert intake.total() == records, "a refused notification was stored"
    assert tmf.total() == reports, "a refused notification created a report"


def test_every_problem_is_named_in_one_answer(intake, tmf):
    records, reports = intake.total(), tmf.total()
    payload = _with(_without(_TT, "eventId"), "TroubleTicketDeleteEvent", "eventType")
    del payload["event"]["troubleTicket"]["id"]
    payload["event"]["troubleTicket"]["severity"] = 3
    response = intake.post("troubleTicketEvent", payload)
    assert_tmf_error(response, 400)
    message = response.json()["message"]
    for problem in ("(body): 'eventId' is a required property", "eventType: 'TroubleTicketDeleteEvent' is not one of",
                    "event.troubleTicket: 'id' is a required property", "event.troubleTicket.severity: 3 is not of type"):
        assert problem in message, message
    assert intake.total() == records and tmf.total() == reports


def test_a_body_that_is_not_json_is_a_400_and_stores_nothing(intake, tmf):
    records, reports = intake.total(), tmf.total()
    assert_tmf_error(intake.post("alarmEvent", b"{not json"), 400)
    assert_tmf_error(intake.post("event", json.dumps([1, 2])), 400)
    assert intake.total() == records and tmf.total() == reports


def test_records_are_listed_newest_first_with_paging_and_unknown_methods_are_405(intake):
    customer_id = unique("C")
    ids = []
    for _ in range(3):
        event = degradation_event(customer_id=customer_id, service_id=unique("svc"))
        ids.append(intake.post("event", event).json()["id"])
    listed = intake.records("source=event&limit=2")
    assert listed.status_code == 206 and int(listed.headers["X-Total-Count"]) >= 3
    assert listed.headers["X-Result-Count"] == "2" and 'rel="next"' in listed.headers["Link"]
    newest = [r["id"] for r in listed.json()]
    assert newest == [ids[2], ids[1]]
    assert_tmf_error(intake.records("outcome=duplicate"), 400, "outcome")
    assert_tmf_error(intake.request("GET", "/record/event:no-such-event"), 404)
    refused = intake.request("DELETE", "/record")
    assert_tmf_error(refused, 405)
    assert refused.headers["Allow"] == "GET"
    assert intake.request("GET", "/alarmEvent").headers["Allow"] == "POST"


def test_the_priority_matrix_and_default_tier_are_configured_by_the_environment(tmp_path, contract):
    """TMF_INTAKE_PRIORITY_MATRIX and TMF_INTAKE_DEFAULT_TIER (read by tmf_server/settings.py) change the rule, and
    TMF_INTAKE_QOS_TICKET_WORDS the QoS rule of tickets."""
    env = {"TMF_INTAKE_PRIORITY_MATRIX": "gold=1,1,1,1;silver=9,9,9,9", "TMF_INTAKE_DEFAULT_TIER": "silver",
           "TMF_INTAKE_QOS_TICKET_WORDS": "outage, brownout"}
    process = ServerProcess(tmp_path / "configured", env=env).start()
    try:
        intake, tmf = Intake(process.root_url, IntakeContract()), Api(process.base_url, contract)
        symptom = chars(metric="jitter", degradationStart="2026-11-20T18:00:00Z")
        gold = ticket_event(customer_id=unique("C"), product_id=unique("P"), severity="Warning",
                            characteristics=symptom + [{"name": "slaTier", "value": "gold"}])
        unknown = ticket_event(customer_id=unique("C"), product_id=unique("P"), severity="Critical",
                               characteristics=symptom)
        assert get_problem(tmf, intake.post("troubleTicketEvent", gold).json()["serviceProblem"])["priority"] == 1
        assert get_problem(tmf, intake.post("troubleTicketEvent", unknown).json()["serviceProblem"])["priority"] == 9
        outage = ticket_event(customer_id=unique("C"), product_id=unique("P"), characteristics=[])
        outage["event"]["troubleTicket"].update(ticketType="Regional Outage", name="No service")
        assert intake.post("troubleTicketEvent", outage).json()["outcome"] == "created"
        slow = ticket_event(customer_id=unique("C"), product_id=unique("P"), characteristics=[])
        slow["event"]["troubleTicket"].update(ticketType="complaint", name="Slow internet")
        refused = intake.post("troubleTicketEvent", slow).json()
        assert refused["outcome"] == "rejected" and "not a QoS degradation" in refused["reason"]
    finally:
        process.stop()
