"""The conversion table, the priority rule and the merge of notifications, as pure functions (no server)."""
from __future__ import annotations

import copy
from types import SimpleNamespace

import jsonschema
import pytest

from tests.intake.support import (
    alarm_event,
    chars,
    degradation_event,
    sla_violation_event,
    ticket_event,
)
from tmf_server.app import load_spec
from tmf_server.errors import BadRequest
from tmf_server.intake import schemas
from tmf_server.intake.conversion import (
    CLEARED,
    DEGRADATION,
    REJECTED,
    Context,
    worse,
)
from tmf_server.intake.relevance import TicketRelevance, parse_words
from tmf_server.intake.sources import convert
from tmf_server.intake.merge import (
    EVENT_COUNT,
    GROUPED_BY,
    INTAKE_TRACKING,
    RECENT_KEPT,
    NoLongerOpen,
    adopt_children,
    append_notification,
    parent_body,
    record_event,
)
from tmf_server.intake.priority import (
    DEFAULT_MATRIX_TEXT,
    PriorityRule,
    impact_of,
    parse_matrix,
    raise_only,
)

RECORD = "http://intake.example/intake/record/x"
CTX = Context("2026-11-21T09:00:00.000Z", RECORD)
SPEC = load_spec()
CREATE = jsonschema.Draft4Validator({"components": SPEC["components"], "$ref": "#/components/schemas/ServiceProblem_Create"},
                                    format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


def run(source: str, payload: dict, ctx: Context = CTX):
    conversion = convert(source, schemas.load(source, payload), ctx)
    if conversion.body:
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in CREATE.iter_errors(conversion.body)]
        assert not errors, errors
    return conversion


def value(body: dict, name: str):
    found = [c["value"] for c in body.get("characteristic", []) if c["name"] == name]
    return found[0] if found else None


# -- the conversion table (docs/intake.md) ---------------------------------------------------------------------

def test_trouble_ticket_row():
    event = ticket_event(customer_id="C1", product_id="P1", severity="Critical",
                         characteristics=chars(metric="downlinkThroughput", observedValue="120", threshold=500,
                                               unit="Mbit/s", degradationStart="2026-11-20T19:00:00+01:00",
                                               slaTier="Gold", line="L7"))
    ticket = event["event"]["troubleTicket"]
    c = run("troubleTicket", event)
    body = c.body
    assert c.kind == DEGRADATION and c.customer == "C1" and c.metric == "downlinkThroughput"
    assert c.subjects == [("product", "P1")] and c.ticket_id == ticket["id"]
    assert body["category"] == "customer.declarer"
    assert body["originatorParty"] == {"id": "C1", "name": "Jane Customer", "role": "customer",
                                       "@referredType": "Individual"}
    assert body["relatedParty"] == [body["originatorParty"]]
    assert body["relatedEntity"] == [{"id": "P1", "name": "Fibre 500", "role": "impactedProduct",
                                      "@referredType": "Product"}]
    assert "affectedService" not in body
    assert body["firstAlert"] == {"id": ticket["id"], "href": ticket["href"], "name": ticket["name"],
                                  "role": "firstAlert", "@referredType": "TroubleTicket"}
    assert body["troubleTicket"] == [{"id": ticket["id"], "href": ticket["href"], "name": ticket["name"],
                                      "@referredType": "TroubleTicket"}]
    assert body["relatedEvent"] == [{"id": event["eventId"], "href": RECORD, "eventTime": "2026-11-21T08:00:00.000Z",
                                     "name": "TroubleTicketCreateEvent", "@referredType": "TroubleTicketCreateEvent"}]
    assert body["externalIdentifier"] == [{"id": ticket["id"], "owner": "troubleTicketManagement",
                                           "externalIdentifierType": "TroubleTicket"}]
    assert body["originatingSystem"] == "troubleTicketManagement"
    assert body["description"] == ticket["description"]
    assert body["reason"] == "downlinkThroughput degradation reported by the customer"
    assert [c_["name"] for c_ in body["characteristic"]] == ["metric", "observedValue", "threshold", "unit", "direction",
                                                             "degradationStart", "slaTier", "line"]
    assert value(body, "observedValue") == 120 and value(body, "threshold") == 500
    assert value(body, "direction") == "down"  # 120 observed below a 500 threshold
    assert value(body, "degradationStart") == "2026-11-20T18:00:00.000Z"
    assert value(body, "slaTier") == "gold" and value(body, "line") == "L7"
    assert body["priority"] == 2 and body["impactImportanceFactor"] == "90"  # gold, critical


def test_trouble_ticket_with_a_service_and_an_sla_entity():
    event = ticket_event(customer_id="C1", characteristics=chars(metric="latency"))
    event["event"]["troubleTicket"]["relatedEntity"] = [
        {"id": "S1", "role": "affected", "@referredType": "Service", "name": "VPN"},
        {"id": "SLA-3", "role": "contract", "@referredType": "ServiceLevelAgreement", "name": "Platinum care"},
    ]
    c = run("troubleTicket", event)
    assert c.body["affectedService"] == [{"id": "S1", "name": "VPN", "@referredType": "Service"}]
    assert c.body["relatedEntity"] == [{"id": "SLA-3", "name": "Platinum care", "role": "contract",
                                        "@referredType": "ServiceLevelAgreement"}]
    assert c.subjects == [("service", "S1")] and c.group_keys == ["service:S1"]
    assert c.assessment.tier == "platinum"  # a tier word in the name of the SLA the ticket names


def test_trouble_ticket_without_customer_has_the_first_party_as_originator_and_no_correlation():
    event = ticket_event(customer_id=None, product_id="P1")
    event["event"]["troubleTicket"]["relatedParty"] = [{"id": "agent-7", "role": "reporter",
                                                        "@referredType": "Individual"}]
    c = run("troubleTicket", event)
    assert c.customer is None and not c.correlatable
    assert c.body["originatorParty"]["id"] == "agent-7"
    assert [p["role"] for p in c.body["relatedParty"]] == ["reporter"]


def test_alarm_row():
    event = alarm_event(alarm_id="4711", customer_id="C2", service_id="S2", observed="120", severity="critical",
                        alarmed_object="olt-9")
    c = run("alarm", event)
    body = c.body
    alarm = event["event"]["alarm"]
    assert c.kind == DEGRADATION and c.customer == "C2" and c.subjects == [("service", "S2")]
    assert c.group_keys == ["alarm:4711", "resource:olt-9", "service:S2"] and c.alarm_id == "4711"
    assert body["category"] == "system.originated"
    assert body["originatorParty"] == {"id": "nms-east", "name": "nms-east", "role": "originator",
                                       "@referredType": "Organization"}
    assert body["originatingSystem"] == "nms-east"
    assert body["affectedService"] == [{"id": "S2", "@referredType": "Service"}]
    assert body["affectedResource"] == [{"id": "olt-9", "href": alarm["alarmedObject"]["href"],
                                         "@referredType": "AccessNode"}]
    assert body["underlyingAlarm"] == [{"id": "4711", "href": alarm["href"], "@referredType": "Alarm"}]
    assert body["firstAlert"]["@referredType"] == "Alarm" and body["firstAlert"]["id"] == "4711"
    assert {"id": "thr-dl-250", "name": "downlink below 250 Mbit/s", "role": "crossedThreshold",
            "@referredType": "Threshold"} in body["relatedEntity"]
    assert value(body, "metric") == "downlinkThroughput" and value(body, "observedValue") == 120
    assert value(body, "threshold") == "downlink below 250 Mbit/s"  # TMF642 v4 carries a ThresholdRef, no value
    assert value(body, "direction") == "down" and value(body, "unit") == "Mbit/s"
    assert value(body, "degradationStart") == "2026-11-20T18:05:00.000Z"
    assert body["reason"] == "thresholdCrossed"
    assert body["priority"] == 4  # bronze (no tier known), critical


@pytest.mark.parametrize("alarm_type", ["QualityOfServiceAlarm", "Quality of Service Alarm", "qualityOfServiceAlarm"])
def test_quality_of_service_alarm_spellings(alarm_type):
    c = run("alarm", alarm_event(alarm_id="1", customer_id="C", service_id="S", alarm_type=alarm_type))
    assert c.kind == DEGRADATION


def test_other_alarms_are_rejected_with_the_reason():
    c = run("alarm", alarm_event(alarm_id="1", customer_id="C", service_id="S", alarm_type="Communications Alarm"))
    assert c.kind == REJECTED and "Communications Alarm" in c.reason and c.body == {}


@pytest.mark.parametrize("state,severity", [("cleared", "cleared"), ("cleared", "minor"), ("updated", "cleared")])
def test_a_cleared_alarm_asks_for_a_clearing(state, severity):
    c = run("alarm", alarm_event(alarm_id="77", customer_id="C", service_id="S", state=state, severity=severity,
                                 event_type="AlarmStateChangeEvent", cleared_time="2026-11-20T20:00:00+00:00"))
    assert c.kind == CLEARED and c.alarm_id == "77"
    assert c.reason == "alarm 77 cleared at 2026-11-20T20:00:00.000Z"


def test_an_integer_alarm_id_as_tmf642_v4_declares_it():
    event = alarm_event(alarm_id="0", customer_id="C", service_id="S")
    event["event"]["alarm"]["id"] = 4711
    c = run("alarm", event)
    assert c.alarm_id == "4711" and c.body["underlyingAlarm"][0]["id"] == "4711"


def test_sla_violation_row():
    event = sla_violation_event(customer_id="C3", service_id="S3", metric="availability", actual="99.1",
                                reference="99.9", operator=">=")
    violation = event["event"]["slaViolation"]
    c = run("slaViolation", event)
    body = c.body
    assert c.customer == "C3" and c.subjects == [("service", "S3")] and c.direction == "down"
    assert body["category"] == "system.originated" and body["originatingSystem"] == "slaManagement"
    assert body["relatedParty"] == [{"id": "C3", "href": "https://party.example.com/individual/C3", "name": "Acme Ltd",
                                     "role": "customer", "@referredType": "Customer"}]
    assert body["slaViolation"] == [{"id": violation["id"], "href": violation["href"], "@referredType": "SlaViolation"}]
    assert {"id": "SLA-7", "href": violation["sla"]["href"], "name": "Gold business SLA", "role": "sla",
            "@referredType": "Sla"} in body["relatedEntity"]
    assert body["firstAlert"] == {"id": violation["id"], "href": violation["href"], "role": "firstAlert",
                                  "@referredType": "SlaViolation"}
    assert value(body, "metric") == "availability" and value(body, "observedValue") == 99.1
    assert value(body, "threshold") == 99.9 and value(body, "unit") == "%"
    assert value(body, "degradationStart") == "2026-11-20T23:59:00.000Z"
    assert body["description"] == "monthly availability below target"
    assert body["priority"] == 3  # gold (the word in the SLA's description), a breached target counts as major


@pytest.mark.parametrize("operator,direction", [(">=", "down"), (">", "down"), ("<=", "up"), ("lt", "up"),
                                                ("approximately", "down")])
def test_the_sla_operator_gives_the_direction(operator, direction):
    # "approximately" is unknown: the direction comes from the values (99.1 below 99.9: down)
    c = run("slaViolation", sla_violation_event(customer_id="C", service_id="S", operator=operator))
    assert c.direction == direction


def test_sla_tier_from_the_extension_attribute_wins_over_the_description():
    event = sla_violation_event(customer_id="C", service_id="S", sla_description="Gold business SLA")
    event["event"]["slaViolation"]["sla"]["slaTier"] = "platinum"
    assert run("slaViolation", event).assessment.tier == "platinum"


def test_generic_event_row():
    event = degradation_event(customer_id="C4", service_id="S4", metric="latency", observed=85, threshold=40)
    c = run("event", event)
    body = c.body
    assert c.customer == "C4" and c.subjects == [("service", "S4")] and c.direction == "up"
    assert body["category"] == "system.originated" and body["originatingSystem"] == "active probes"
    assert body["firstAlert"] == {"id": event["eventId"], "role": "firstAlert", "@referredType": "QoSDegradationEvent"}
    assert body["externalIdentifier"] == [{"id": event["eventId"], "owner": "active probes",
                                           "externalIdentifierType": "Event"}]
    assert body["priority"] == 8  # bronze, minor
    declared = run("event", degradation_event(customer_id="C4", service_id="S4", declaredBy="customer"))
    assert declared.body["category"] == "customer.declarer" and declared.body["originatorParty"]["id"] == "C4"
    cleared = run("event", degradation_event(customer_id="C4", service_id="S4", event_type="QoSDegradationClearedEvent"))
    assert cleared.kind == CLEARED


def test_generic_event_customer_and_product_from_the_tmf688_envelope():
    event = degradation_event(customer_id="C5", service_id="S5")
    payload = event["event"]["qosDegradation"]
    del payload["customer"], payload["service"], payload["degradationStart"]
    event["relatedParty"] = [{"id": "C5", "role": "Customer", "@referredType": "Organization"}]
    event["source"] = {"id": "P5", "@referredType": "Product"}
    event["timeOcurred"] = "2026-11-20T19:30:00Z"
    c = run("event", event)
    assert c.customer == "C5" and c.subjects == [("product", "P5")]
    assert value(c.body, "degradationStart") == "2026-11-20T19:30:00.000Z"


# -- loading: what is wrong is named by its path --------------------------------------------------------------

def test_what_cannot_be_understood_is_a_400_naming_every_problem():
    event = alarm_event(alarm_id="1", customer_id="C", service_id="S")
    event["event"]["alarm"]["id"] = " "
    del event["eventType"]
    with pytest.raises(BadRequest) as raised:
        schemas.load("alarm", event)
    assert raised.value.message == ("Invalid notification: event.alarm.id: An identifier must not be empty.; "
                                    "eventType: Missing data for required field.")


def test_an_unreadable_attribute_is_left_out_and_named():
    """A reference without a usable id, a date-time without a stored form: not read, named; the rest is read."""
    event = ticket_event(customer_id="C", product_id="P1")
    ticket = event["event"]["troubleTicket"]
    ticket["relatedParty"].append({"role": "reporter", "name": "no id"})
    ticket["relatedEntity"].insert(0, {"id": "  ", "@referredType": "Product"})
    ticket["creationDate"] = "0001-01-01T00:30:00+01:00"
    notice = schemas.load("troubleTicket", event)
    assert notice.unread == [
        "event.troubleTicket.creationDate: 0001-01-01T00:30:00+01:00 is outside the years 0001 to 9999 in UTC.",
        "event.troubleTicket.relatedEntity[0].id: An identifier must not be empty.",
        "event.troubleTicket.relatedParty[1].id: Missing data for required field."]
    read = notice.values["event"]["troubleTicket"]
    assert [p["id"] for p in read["relatedParty"]] == ["C"] and [e["id"] for e in read["relatedEntity"]] == ["P1"]
    assert "creationDate" not in read
    assert event["event"]["troubleTicket"]["relatedParty"][1] == {"role": "reporter", "name": "no id"}  # untouched
    assert run("troubleTicket", event).subjects == [("product", "P1")]


def test_a_ticket_with_an_empty_description_makes_a_report():
    """TMF621 requires a description but lets it be empty; the report then takes the name, else a sentence."""
    event = ticket_event(customer_id="C1", product_id="P1", characteristics=chars(metric="jitter"))
    event["event"]["troubleTicket"]["description"] = ""
    assert run("troubleTicket", event).body["description"] == "Slow broadband in the evening"
    del event["event"]["troubleTicket"]["name"]
    ticket_id = event["event"]["troubleTicket"]["id"]
    assert run("troubleTicket", event).body["description"] == f"Customer trouble ticket {ticket_id}: jitter degradation"


@pytest.mark.parametrize("text", ["1e999", "nan", "Infinity", "1_000"])
def test_numeric_looking_text_that_is_no_finite_decimal_number_stays_text(text):
    """A value that would become inf or NaN (which the store refuses) or that only Python reads ("1_000")."""
    event = ticket_event(customer_id="C1", product_id="P1", characteristics=chars(metric="jitter", observedValue=text))
    assert value(run("troubleTicket", event).body, "observedValue") == text
    event = alarm_event(alarm_id="1", customer_id="C", service_id="S")
    event["event"]["alarm"]["crossedThresholdInformation"]["observedValue"] = text
    assert value(run("alarm", event).body, "observedValue") == text


# -- priority rule ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tier,severity,priority", [
    ("platinum", "critical", 1), ("platinum", "major", 2), ("platinum", "minor", 4), ("platinum", "warning", 6),
    ("gold", "critical", 2), ("gold", "major", 3), ("gold", "minor", 5), ("gold", "warning", 7),
    ("silver", "critical", 3), ("silver", "major", 5), ("silver", "minor", 6), ("silver", "warning", 8),
    ("bronze", "critical", 4), ("bronze", "major", 6), ("bronze", "minor", 8), ("bronze", "warning", 10),
    (None, "major", 6), ("unknown-tier", "major", 6), ("GOLD", "Major", 3), ("gold", "indeterminate", 5),
    ("gold", "high", 3), ("gold", "low", 7),
])
def test_default_priority_matrix(tier, severity, priority):
    assessment = PriorityRule().assess(tier, impact_of(severity))
    assert assessment.priority == priority
    assert assessment.impact_importance_factor == str(110 - 10 * priority)


def test_the_matrix_and_default_tier_come_from_settings():
    settings = SimpleNamespace(intake_priority_matrix="gold=1,1,2,2;diamond=1,1,1,1", intake_default_tier="silver")
    rule = PriorityRule.from_settings(settings)
    assert rule.assess("gold", "minor").priority == 2
    assert rule.assess("diamond", "warning").priority == 1
    assert rule.assess(None, "major").priority == 5  # the default tier silver
    assert rule.assess("diamond", "warning").urgency == 1
    assert PriorityRule.from_settings(SimpleNamespace()).assess("bronze", "warning").priority == 10
    assert parse_matrix(DEFAULT_MATRIX_TEXT) == PriorityRule().matrix


@pytest.mark.parametrize("text", ["gold=1,2,3", "gold=0,1,2,3", "gold=1,2,3,11", "gold=a,b,c,d", "=1,2,3,4"])
def test_an_invalid_matrix_is_refused(text):
    with pytest.raises(ValueError):
        parse_matrix(text)


def test_an_unknown_default_tier_is_refused():
    with pytest.raises(ValueError):
        PriorityRule(default_tier="diamond")


def test_priority_is_only_ever_raised():
    assert raise_only(None, 6) == 6
    assert raise_only(6, 4) == 4
    assert raise_only(4, 8) == 4


# -- merging notifications into an open report ----------------------------------------------------------------

def report_of(conversion, **extra) -> dict:
    representation = copy.deepcopy(conversion.body)
    representation.update({"id": "SP1", "href": "http://x/serviceProblem/SP1", "status": "acknowledged", **extra})
    return representation


def test_a_report_keeps_the_first_and_the_most_recent_notifications_and_counts_them_all():
    # docs/intake.md, "What a report keeps": TMF688 events name themselves in externalIdentifier, one per notification
    conversions = [run("event", degradation_event(customer_id="C", service_id="S", event_id=f"E{i}"))
                   for i in range(RECENT_KEPT + 20)]
    report = report_of(conversions[0])
    report["trackingRecord"] = [{"id": "client", "description": "called the customer back"}]
    for conversion in conversions[1:]:
        append_notification(conversion)(report)
        report["trackingRecord"].append({"id": conversion.event_id, "description": f"{INTAKE_TRACKING}appended"})
    kept = ["E0"] + [f"E{i}" for i in range(20, RECENT_KEPT + 20)]
    assert [e["id"] for e in report["relatedEvent"]] == kept
    assert [e["id"] for e in report["externalIdentifier"] if e["externalIdentifierType"] == "Event"] == kept
    assert [t["id"] for t in report["trackingRecord"]] == ["client", "E1"] + kept[1:]  # the intake's: first, recent
    assert value(report, EVENT_COUNT) == RECENT_KEPT + 20

    unchanged = copy.deepcopy(report)
    append_notification(conversions[-1])(report)  # the same event again: nothing changes, the count neither
    record_event(conversions[-1])(report)
    assert report == unchanged
    record_event(run("event", degradation_event(customer_id="C", service_id="S", event_id="E-clear",
                                                event_type="QoSDegradationClearedEvent")))(report)
    assert value(report, EVENT_COUNT) == RECENT_KEPT + 21 and report["relatedEvent"][-1]["id"] == "E-clear"
    assert len(report["relatedEvent"]) == 1 + RECENT_KEPT and report["relatedEvent"][0]["id"] == "E0"


@pytest.mark.parametrize("direction,values,worst", [("down", [300, 120, 200], 120), ("up", [40, 90, 60], 90)])
def test_the_worst_observed_value_is_kept(direction, values, worst):
    conversions = [run("alarm", alarm_event(alarm_id=f"A{i}", customer_id="C", service_id="S", observed=str(v),
                                            direction=direction)) for i, v in enumerate(values)]
    report = report_of(conversions[0])
    for conversion in conversions[1:]:
        append_notification(conversion)(report)
    assert value(report, "observedValue") == worst
    assert [e["id"] for e in report["relatedEvent"]] == [c.event_id for c in conversions]
    assert [a["id"] for a in report["underlyingAlarm"]] == ["A0", "A1", "A2"]
    assert len([c for c in report["characteristic"] if c["name"] == "observedValue"]) == 1


def test_merging_raises_priority_never_lowers_it_and_repeats_change_nothing():
    major = run("alarm", alarm_event(alarm_id="A", customer_id="C", service_id="S", severity="major"))
    critical = run("alarm", alarm_event(alarm_id="B", customer_id="C", service_id="S", severity="critical"))
    minor = run("alarm", alarm_event(alarm_id="C", customer_id="C", service_id="S", severity="warning"))
    report = report_of(major)
    append_notification(critical)(report)
    assert report["priority"] == 4 and report["impactImportanceFactor"] == "70"
    assert report["impactPattern"]["description"].startswith("critical impact")
    append_notification(minor)(report)
    assert report["priority"] == 4 and report["impactPattern"]["description"].startswith("critical impact")
    again = copy.deepcopy(report)
    append_notification(minor)(again)
    assert again == report


def test_the_earliest_degradation_start_is_kept_and_missing_symptoms_filled_in():
    first = run("event", degradation_event(customer_id="C", service_id="S", degradationStart="2026-11-20T19:00:00Z"))
    earlier = run("event", degradation_event(customer_id="C", service_id="S", degradationStart="2026-11-20T17:00:00Z",
                                             slaTier="gold"))
    report = report_of(first)
    append_notification(earlier)(report)
    assert value(report, "degradationStart") == "2026-11-20T17:00:00.000Z"
    assert value(report, "slaTier") == "gold"


def test_a_report_no_longer_open_is_not_changed():
    conversion = run("event", degradation_event(customer_id="C", service_id="S"))
    for change in (append_notification(conversion), record_event(conversion)):
        with pytest.raises(NoLongerOpen):
            change(report_of(conversion, status="closed"))


def test_parent_of_reports_with_one_cause():
    a = run("alarm", alarm_event(alarm_id="R", customer_id="CA", service_id="SA", severity="minor"))
    b = run("alarm", alarm_event(alarm_id="R", customer_id="CB", service_id="SB", severity="critical"))
    children = [report_of(a, id="SPA", href="http://x/SPA"), report_of(b, id="SPB", href="http://x/SPB")]
    parent = parent_body("alarm:R", children, b, "tmf656-qos-server")
    assert not list(CREATE.iter_errors(parent))
    assert parent["category"] == "system.originated" and parent["priority"] == 4
    assert value(parent, GROUPED_BY) == "alarm:R"
    assert [p["id"] for p in parent["relatedParty"]] == ["CA", "CB"]
    assert [s["id"] for s in parent["affectedService"]] == ["SA", "SB"] and parent["affectedNumberOfServices"] == 2
    assert [a_["id"] for a_ in parent["underlyingAlarm"]] == ["R"]
    assert value(parent, "metric") == "downlinkThroughput" and value(parent, "degradationStart")
    c = run("alarm", alarm_event(alarm_id="R", customer_id="CC", service_id="SC", severity="critical"))
    grown = {**copy.deepcopy(parent), "id": "P", "href": "http://x/P", "status": "acknowledged"}
    adopt_children([report_of(c, id="SPC", href="http://x/SPC", priority=1)], c)(grown)
    assert [p["id"] for p in grown["relatedParty"]] == ["CA", "CB", "CC"] and grown["priority"] == 1
    assert grown["impactPattern"]["description"] == "3 customers affected by alarm:R"


def test_worse_compares_in_the_threshold_direction_only_numbers():
    assert worse("down", 10, 20) and not worse("down", 30, 20)
    assert worse("up", 30, 20) and not worse("up", 10, 20)
    assert not worse(None, 30, 20) and not worse("up", "high", 20)
    assert worse("up", 5, None)


# -- what real systems send (docs/intake.md): relevance, shapes, systems -----------------------------------------

def test_the_qos_rule_of_tickets_reads_symptoms_and_words_not_free_text():
    rule = TicketRelevance()
    assert rule.not_qos({"ticketType": "Bill Dispute", "description": "the film kept buffering"}, {}) is not None
    assert rule.not_qos({"ticketType": "Bill Dispute"}, {"metric": "latency"}) is None
    assert rule.not_qos({"type": "Service Degradation"}, {}) is None
    assert rule.not_qos({"ticketType": "complaint", "name": "Slow internet"}, {}) is None
    assert rule.not_qos({"troubleTicketCharacteristic": [{"name": "packetLoss", "value": 3}]}, {}) is None
    assert rule.not_qos({"ticketType": "Slowly resolved fault"}, {}) is not None  # whole words only
    configured = TicketRelevance(parse_words("fault, outage"))
    assert configured.not_qos({"ticketType": "Fault"}, {}) is None
    assert configured.not_qos({"ticketType": "Slow"}, {}) is not None
    with pytest.raises(ValueError):
        parse_words(" , ")


def test_a_ticket_rejected_by_the_rule_names_its_type():
    event = ticket_event(customer_id="C1", product_id="P1", characteristics=[])
    event["event"]["troubleTicket"].update(ticketType="Address Change", name="Moving house")
    c = run("troubleTicket", event)
    assert c.kind == REJECTED and "ticketType 'Address Change'" in c.reason


@pytest.mark.parametrize("change,shape", [
    ({}, "v4"), ({"timeOccurred": "2026-11-21T08:00:00Z"}, "v5"), ({"@type": "TroubleTicketCreateEvent"}, "v5"),
])
def test_the_shape_is_told_from_the_envelope(change, shape):
    event = {**ticket_event(customer_id="C1", product_id="P1"), **change}
    assert run("troubleTicket", event).shape == shape


def test_v5_references_are_read_as_the_v4_ones_with_their_role():
    event = ticket_event(customer_id=None, product_id=None)
    ticket = event["event"]["troubleTicket"]
    ticket["relatedParty"] = [{"role": "customer", "partyOrPartyRole": {"id": "C9", "@referredType": "Customer"}}]
    ticket["relatedEntity"] = [{"role": "impactedProduct", "entity": {"id": "P9", "@referredType": "Product"}}]
    ticket["externalIdentifier"] = [{"id": "INC-1", "owner": "Desk", "externalIdentifierType": "Incident"}]
    c = run("troubleTicket", event)
    assert c.shape == "v5" and c.customer == "C9" and c.subjects == [("product", "P9")]
    assert c.body["relatedParty"] == [{"id": "C9", "role": "customer", "@referredType": "Customer"}]
    assert {"id": "INC-1", "owner": "Desk", "externalIdentifierType": "Incident"} in c.body["externalIdentifier"]


def test_an_envelope_source_naming_an_application_is_the_originating_system_not_an_entity():
    event = ticket_event(customer_id="C1", product_id="P1")
    event["source"] = {"id": "705", "name": "APP-317", "@referredType": "LogicalResource"}
    c = run("troubleTicket", event)
    assert c.body["originatingSystem"] == "APP-317"
    assert [e["@referredType"] for e in c.body["relatedEntity"]] == ["Product"]
    event["reportingSystem"] = {"id": "759", "name": "APP-745"}
    assert run("troubleTicket", event).body["originatingSystem"] == "APP-745"


def test_a_finished_ticket_asks_for_no_report():
    for status, target in (("Resolved", "resolved"), ("closed", "resolved"), ("CANCELLED", "cancelled")):
        event = ticket_event(customer_id="C1", product_id="P1")
        event["event"]["troubleTicket"]["status"] = status
        c = run("troubleTicket", event)
        assert c.kind == CLEARED and c.finish_status == target and c.not_qos is None


def test_hrefs_that_are_no_uri_stay_out_of_the_report():
    event = alarm_event(alarm_id="7", customer_id="C", service_id="S")
    event["event"]["alarm"]["href"] = "alarm/7"
    event["event"]["alarm"]["alarmedObject"]["href"] = " https://oss.example.com/olt/1"
    c = run("alarm", event)
    assert c.body["underlyingAlarm"] == [{"id": "7", "@referredType": "Alarm"}]
    assert c.body["affectedResource"][0]["href"] == "https://oss.example.com/olt/1"
