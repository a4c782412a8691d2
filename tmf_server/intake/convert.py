"""The one conversion of received notifications into ServiceProblem_Create bodies (docs/intake.md has the table).

Pure functions, one per source: a typed notice (tmf_server/intake/schemas.py) and a Context in, a Conversion
out. No database, no clock, no request: everything that varies comes in through the Context.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from tmf_server.intake.priority import (BREACHED_TARGET_IMPACT, TIERS, Assessment, PriorityRule, impact_of,
                                       normalise_tier)
from tmf_server.intake.schemas import measure
from tmf_server.query.filters import canonical_datetime

# Outcomes a conversion asks for.
DEGRADATION = "degradation"  # create a report, or append to the open one of the same customer/subject/metric
CLEARED = "cleared"  # never opens a report: a tracking record on the open one(s)
REJECTED = "rejected"  # not a QoS degradation: stored with the reason, nothing else

CUSTOMER_DECLARER = "customer.declarer"
SYSTEM_ORIGINATED = "system.originated"

# The QoS symptom, as ServiceProblem characteristics (names fixed: the information rule reads metric and
# degradationStart).
SYMPTOM = ("metric", "observedValue", "threshold", "unit", "direction", "degradationStart", "slaTier")

DEFAULT_SYSTEMS = {
    "troubleTicket": "troubleTicketManagement",
    "alarm": "alarmManagement",
    "slaViolation": "slaManagement",
    "event": "eventManagement",
}

QOS_ALARM_TYPES = frozenset({"qualityofservicealarm"})  # X.733 "Quality of Service Alarm", any spacing/case
PRODUCT_TYPES = {"product": "Product", "productoffering": "ProductOffering"}
SERVICE_TYPES = frozenset({"service", "customerfacingservice", "resourcefacingservice"})
SLA_TYPES = frozenset({"sla", "servicelevelagreement", "agreement", "servicelevelspecification"})
# The SLA operator says how the metric must compare with the reference value; a violation is the opposite.
_MUST_BE_ABOVE = frozenset({">", ">=", "gt", "ge", "gte", ".gt", ".ge", ".gte", "greaterthan", "greaterthanorequal"})
_MUST_BE_BELOW = frozenset({"<", "<=", "lt", "le", "lte", ".lt", ".le", ".lte", "lessthan", "lessthanorequal"})


@dataclass(frozen=True)
class Context:
    received_at: str  # canonical date-time the intake received the notification
    record_href: str  # absolute URL of the stored raw event (the href of relatedEvent)
    rule: PriorityRule = field(default_factory=PriorityRule)


@dataclass
class Conversion:
    source: str
    event_id: str
    event_type: str
    kind: str  # DEGRADATION, CLEARED or REJECTED
    reason: str = ""
    body: dict = field(default_factory=dict)  # ServiceProblem_Create (empty when REJECTED)
    customer: str | None = None  # the customer's party id
    subjects: list[tuple[str, str]] = field(default_factory=list)  # ("service"|"product"|"productOffering", id)
    metric: str | None = None
    direction: str | None = None  # "up": higher values are worse; "down": lower values are worse
    group_keys: list[str] = field(default_factory=list)  # "alarm:ID", "resource:ID", "service:ID"
    alarm_id: str | None = None
    ticket_id: str | None = None
    assessment: Assessment | None = None

    @property
    def correlatable(self) -> bool:
        """Whether the notification names customer, product/service and metric: only then is it appended to an
        open report of the same three."""
        return bool(self.customer and self.subjects and self.metric)


# -- small helpers ---------------------------------------------------------------------------------------------

def _clean(mapping: dict) -> dict:
    return {k: v for k, v in mapping.items() if v not in (None, "", [], {})}


def _when(value: datetime | None) -> str | None:
    return canonical_datetime(value) if value is not None else None


def _lower(value) -> str:
    return re.sub(r"[\s_\-]", "", str(value or "")).lower()


def _last_segment(href: str | None) -> str | None:
    if not href:
        return None
    segment = href.rstrip("/").rsplit("/", 1)[-1]
    return segment or None


def _chars(*lists) -> dict:
    """name -> value over characteristic lists; the first list naming a characteristic wins."""
    found: dict = {}
    for items in lists:
        for item in items or ():
            if item.get("name") and item["name"] not in found and item.get("value") not in (None, ""):
                found[item["name"]] = item["value"]
    return found


def _date_text(value) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return canonical_datetime(value)
    try:
        return canonical_datetime(datetime.fromisoformat(str(value).strip().replace("z", "Z")))
    except ValueError:
        return str(value)


def _direction(explicit, observed, threshold) -> str | None:
    word = _lower(explicit)
    if word in ("up", "down"):
        return word
    if isinstance(observed, (int, float)) and isinstance(threshold, (int, float)) and observed != threshold:
        return "up" if observed > threshold else "down"
    return None


def worse(direction: str | None, candidate, current) -> bool:
    """Whether `candidate` is a worse observed value than `current` in the threshold's direction."""
    if not isinstance(candidate, (int, float)) or isinstance(candidate, bool):
        return False
    if not isinstance(current, (int, float)) or isinstance(current, bool):
        return True
    if direction == "up":
        return candidate > current
    if direction == "down":
        return candidate < current
    return False


def _party(party: dict, role: str | None = None, default_type: str = "Individual") -> dict:
    return _clean({"id": party["id"], "href": party.get("href"), "name": party.get("name"),
                   "role": role or party.get("role"), "@referredType": party.get("referredType") or default_type})


def _customer_of(*party_lists) -> dict | None:
    for parties in party_lists:
        for party in parties or ():
            if _lower(party.get("role")) == "customer" and party.get("id"):
                return party
    return None


def _system_party(system: str) -> dict:
    return {"id": system, "name": system, "role": "originator", "@referredType": "Organization"}


def _system_of(notice: dict, *candidates, default: str) -> str:
    reporting = notice.get("reportingSystem") or {}
    for value in (*candidates, reporting.get("name"), reporting.get("id")):
        if value:
            return str(value)
    return default


def _tier_word(*texts) -> str | None:
    for text in texts:
        for word in re.findall(r"[a-z]+", str(text or "").lower()):
            if word in TIERS:
                return word
    return None


class _Subjects:
    """Collects the affected services, products and offerings of a notification (deduplicated, in order)."""

    def __init__(self):
        self.services: list[dict] = []
        self.entities: list[dict] = []

    def service(self, ref: dict | None) -> None:
        if ref and ref.get("id") and all(s["id"] != ref["id"] for s in self.services):
            self.services.append(_clean({"id": ref["id"], "href": ref.get("href"), "name": ref.get("name"),
                                         "@referredType": "Service"}))

    def entity(self, ref: dict | None, role: str, referred_type: str) -> None:
        if ref and ref.get("id") and not any(e["id"] == ref["id"] and e["@referredType"] == referred_type
                                             for e in self.entities):
            self.entities.append(_clean({"id": ref["id"], "href": ref.get("href"), "name": ref.get("name"),
                                         "role": ref.get("role") or role, "@referredType": referred_type}))

    def any(self, ref: dict | None) -> None:
        """A reference whose @referredType says what it is (TMF621 relatedEntity, TMF688 source)."""
        if not ref or not ref.get("id"):
            return
        kind = _lower(ref.get("referredType"))
        if kind in SERVICE_TYPES:
            self.service(ref)
        elif kind in PRODUCT_TYPES:
            self.entity(ref, PRODUCT_TYPES[kind][0].lower() + PRODUCT_TYPES[kind][1:], PRODUCT_TYPES[kind])
        elif kind in SLA_TYPES:
            self.entity(ref, "sla", ref.get("referredType"))
        elif ref.get("referredType"):
            self.entity(ref, ref.get("role") or "related", ref["referredType"])

    def keys(self) -> list[tuple[str, str]]:
        keys = [("service", s["id"]) for s in self.services]
        keys += [("product", e["id"]) for e in self.entities if e["@referredType"] == "Product"]
        if not keys:  # an offering identifies the customer's product only when nothing better is known
            keys = [("productOffering", e["id"]) for e in self.entities if e["@referredType"] == "ProductOffering"]
        return keys


def _symptom(metric, observed, threshold, unit, direction, start, tier) -> list[dict]:
    values = {"metric": metric, "observedValue": observed, "threshold": threshold, "unit": unit,
              "direction": direction, "degradationStart": start, "slaTier": tier}
    out = []
    for name in SYMPTOM:
        value = values[name]
        if value in (None, ""):
            continue
        kind = "number" if isinstance(value, (int, float)) else ("dateTime" if name == "degradationStart" else "string")
        out.append({"name": name, "value": value, "valueType": kind})
    return out


def event_ref(notice: dict, ctx: Context) -> dict:
    """EventRef of the received notification: its eventId, the stored raw event's URL, its time and type."""
    return _clean({"id": notice["eventId"], "href": ctx.record_href,
                   "eventTime": _when(notice.get("eventTime")) or ctx.received_at,
                   "name": notice["eventType"], "@referredType": notice["eventType"]})


def _assemble(source: str, notice: dict, ctx: Context, *, kind: str, category: str, originator: dict,
              system: str, customer: dict | None, parties: list[dict], subjects: _Subjects, metric, observed,
              threshold, unit, direction, start, tier_candidates, impact: str, description: str, reason: str,
              name: str | None, first_alert: dict, references: dict, external: list[dict],
              resources: list[dict] | None = None, extra_characteristics: list[dict] | None = None,
              group_keys: list[str] | None = None, alarm_id: str | None = None,
              ticket_id: str | None = None) -> Conversion:
    tier = next((t for t in tier_candidates if t), None)
    assessment = ctx.rule.assess(tier, impact)
    related_party = []
    if customer:
        related_party.append(_party(customer, "customer", customer.get("referredType") or "Individual"))
    for party in parties:
        entry = _party(party)
        if not any(p["id"] == entry["id"] and p.get("role") == entry.get("role") for p in related_party) \
                and _lower(party.get("role")) != "customer":
            related_party.append(entry)
    # slaTier: as the source gave it (the tier the rule applied, maybe the default, is in impactPattern)
    characteristic = _symptom(metric, observed, threshold, unit, direction, start, normalise_tier(tier))
    taken = {c["name"] for c in characteristic}
    for extra in extra_characteristics or ():
        if extra["name"] not in taken:
            taken.add(extra["name"])
            entry = {"name": extra["name"], "value": extra.get("value")}
            if extra.get("valueType"):
                entry["valueType"] = extra["valueType"]
            characteristic.append(entry)
    body = _clean({
        "category": category,
        "priority": assessment.priority,
        "impactImportanceFactor": assessment.impact_importance_factor,
        "impactPattern": assessment.impact_pattern(metric),
        "name": name,
        "description": description,
        "reason": reason,
        "originatorParty": originator,
        "originatingSystem": system,
        "relatedParty": related_party,
        "affectedService": subjects.services,
        "affectedResource": resources or [],
        "relatedEntity": subjects.entities,
        "firstAlert": first_alert,
        "relatedEvent": [event_ref(notice, ctx)],
        "externalIdentifier": external,
        "characteristic": characteristic,
        **references,
    })
    services = [s["id"] for s in subjects.services]
    keys = list(group_keys or []) + [f"service:{s}" for s in services]
    return Conversion(source, notice["eventId"], notice["eventType"], kind, body=body,
                      customer=customer["id"] if customer else None, subjects=subjects.keys(),
                      metric=metric or None, direction=direction, group_keys=list(dict.fromkeys(keys)),
                      alarm_id=alarm_id, ticket_id=ticket_id, assessment=assessment)


def _envelope_customer(notice: dict) -> dict | None:
    return _customer_of(notice.get("relatedParty"))


# -- TMF621 TroubleTicketCreateEvent / TroubleTicketAttributeValueChangeEvent ---------------------------------

def _ticket_description(ticket: dict, metric) -> str:
    """The ticket's description; TMF621 requires one but lets it be empty (a report needs a description): then
    its name, else a sentence."""
    for text in (ticket.get("description"), ticket.get("name")):
        if text and text.strip():
            return text
    return f"Customer trouble ticket {ticket['id']}" + (f": {metric} degradation" if metric else "")


def from_trouble_ticket_event(notice: dict, ctx: Context) -> Conversion:
    ticket = notice["event"]["troubleTicket"]
    chars = _chars(ticket.get("troubleTicketCharacteristic"), ticket.get("characteristic"),
                   notice.get("analyticCharacteristic"))
    customer = _customer_of(ticket.get("relatedParty"), notice.get("relatedParty"))
    subjects = _Subjects()
    for entity in ticket.get("relatedEntity") or ():
        subjects.any(entity)
    subjects.any(notice.get("source"))
    system = _system_of(notice, default=DEFAULT_SYSTEMS["troubleTicket"])
    metric, observed = chars.get("metric"), measure(chars.get("observedValue"))
    threshold, unit = measure(chars.get("threshold")), chars.get("unit")
    direction = _direction(chars.get("direction"), observed, threshold)
    others = [p for p in ticket.get("relatedParty") or () if p is not customer]
    originator = _party(customer, "customer") if customer else (
        _party(others[0]) if others else _system_party(system))
    slas = [e for e in ticket.get("relatedEntity") or () if _lower(e.get("referredType")) in SLA_TYPES]
    symptom_names = set(SYMPTOM)
    extra = [c for c in (ticket.get("troubleTicketCharacteristic") or []) + (ticket.get("characteristic") or [])
             if c["name"] not in symptom_names]
    return _assemble(
        "troubleTicket", notice, ctx, kind=DEGRADATION, category=CUSTOMER_DECLARER, originator=originator,
        system=system, customer=customer, parties=others, subjects=subjects, metric=metric, observed=observed,
        threshold=threshold, unit=unit, direction=direction, start=_date_text(chars.get("degradationStart")),
        tier_candidates=[chars.get("slaTier"), *(s.get("slaTier") for s in slas),
                         _tier_word(*(s.get("name") for s in slas))],
        impact=impact_of(ticket.get("severity")),
        description=_ticket_description(ticket, metric),
        reason=f"{metric} degradation reported by the customer" if metric else
        f"customer {ticket.get('ticketType') or 'trouble ticket'}",
        name=ticket.get("name"),
        first_alert=_clean({"id": ticket["id"], "href": ticket.get("href"), "name": ticket.get("name"),
                            "role": "firstAlert", "@referredType": "TroubleTicket"}),
        references={"troubleTicket": [_clean({"id": ticket["id"], "href": ticket.get("href"),
                                              "name": ticket.get("name"), "@referredType": "TroubleTicket"})]},
        external=[{"id": ticket["id"], "owner": system, "externalIdentifierType": "TroubleTicket"}],
        extra_characteristics=extra, ticket_id=ticket["id"])


# -- TMF642 AlarmCreateEvent / AlarmAttributeValueChangeEvent / AlarmStateChangeEvent -------------------------

def is_qos_alarm(alarm_type: str) -> bool:
    return _lower(alarm_type) in QOS_ALARM_TYPES


def alarm_cleared(alarm: dict) -> bool:
    """TMF642: a cleared alarm has state `cleared`; its perceivedSeverity is then set to `cleared` too."""
    return _lower(alarm.get("state")) == "cleared" or _lower(alarm.get("perceivedSeverity")) == "cleared"


def from_alarm_event(notice: dict, ctx: Context) -> Conversion:
    alarm = notice["event"]["alarm"]
    if not is_qos_alarm(alarm["alarmType"]):
        return Conversion("alarm", notice["eventId"], notice["eventType"], REJECTED,
                          reason=f"alarmType '{alarm['alarmType']}' is not a Quality of Service Alarm",
                          alarm_id=alarm["id"])
    crossed = alarm.get("crossedThresholdInformation") or {}
    threshold_ref = crossed.get("threshold") or {}
    chars = _chars(notice.get("analyticCharacteristic"))
    customer = _envelope_customer(notice)
    subjects = _Subjects()
    for service in alarm.get("affectedService") or ():
        subjects.service(service)
    subjects.any(notice.get("source"))
    if threshold_ref:
        subjects.entity(threshold_ref, "crossedThreshold", "Threshold")
    system = _system_of(notice, alarm.get("sourceSystemId"), alarm.get("reportingSystemId"),
                        default=DEFAULT_SYSTEMS["alarm"])
    metric = crossed.get("indicatorName") or chars.get("metric")
    observed = crossed.get("observedValue") if crossed.get("observedValue") is not None else \
        measure(chars.get("observedValue"))
    threshold = threshold_ref.get("name") or threshold_ref.get("id") or measure(chars.get("threshold"))
    unit = crossed.get("indicatorUnit") or chars.get("unit")
    direction = _direction(crossed.get("direction") or chars.get("direction"), observed, threshold)
    obj = alarm["alarmedObject"]
    resource = _clean({"id": obj["id"], "href": obj.get("href"),
                       "@referredType": alarm.get("alarmedObjectType") or "Resource"})
    cleared = alarm_cleared(alarm)
    what = f"{metric} {observed}{' ' + unit if unit else ''}" if metric else "Quality of Service"
    crossing = f" crossed threshold {threshold}" if threshold else ""
    crossing += f" ({direction})" if direction else ""
    details = alarm.get("alarmDetails") or alarm.get("specificProblem") or crossed.get("thresholdCrossingDescription")
    description = f"Quality of Service Alarm {alarm['id']} on {obj['id']}: {what}{crossing}" + \
        (f". {details}" if details else "")
    conversion = _assemble(
        "alarm", notice, ctx, kind=CLEARED if cleared else DEGRADATION, category=SYSTEM_ORIGINATED,
        originator=_system_party(system), system=system, customer=customer,
        parties=[p for p in notice.get("relatedParty") or () if p is not customer], subjects=subjects,
        metric=metric, observed=observed, threshold=threshold, unit=unit, direction=direction,
        start=_when(alarm["alarmRaisedTime"]),
        tier_candidates=[chars.get("slaTier")], impact=impact_of(alarm["perceivedSeverity"]),
        description=description,
        reason=alarm.get("probableCause") or (f"{metric} threshold crossed" if metric else "QoS threshold crossed"),
        name=None,
        first_alert=_clean({"id": alarm["id"], "href": alarm.get("href"), "name": alarm.get("specificProblem"),
                            "role": "firstAlert", "@referredType": "Alarm"}),
        references={"underlyingAlarm": [_clean({"id": alarm["id"], "href": alarm.get("href"),
                                                "@referredType": "Alarm"})]},
        external=[{"id": alarm["id"], "owner": system, "externalIdentifierType": "Alarm"}],
        resources=[resource], group_keys=[f"alarm:{alarm['id']}", f"resource:{obj['id']}"], alarm_id=alarm["id"])
    if cleared:
        conversion.reason = f"alarm {alarm['id']} cleared at " + \
            (_when(alarm.get("alarmClearedTime")) or _when(notice.get("eventTime")) or ctx.received_at)
    return conversion


# -- TMF623 SlaViolation (v2), in a TMF event envelope ----------------------------------------------------------

def _sla_direction(operator, actual, reference) -> str | None:
    word = str(operator or "").strip().lower().replace(" ", "")
    if word in _MUST_BE_ABOVE:
        return "down"  # the value had to stay above the reference: lower is worse
    if word in _MUST_BE_BELOW:
        return "up"
    return _direction(None, actual, reference)


def from_sla_violation_event(notice: dict, ctx: Context) -> Conversion:
    violation_doc = notice["event"]["slaViolation"]
    violation = violation_doc["violation"]
    rule = violation.get("rule") or {}
    sla = violation_doc.get("sla") or {}
    chars = _chars(notice.get("analyticCharacteristic"))
    parties = []
    for party in violation_doc.get("relatedParty") or ():
        party_id = party.get("id") or _last_segment(party.get("href"))
        if party_id:
            parties.append({**party, "id": party_id, "referredType": party.get("referredType") or "Customer"})
    customer = _customer_of(parties, notice.get("relatedParty"))
    subjects = _Subjects()
    subjects.any(notice.get("source"))
    sla_id = sla.get("id") or _last_segment(sla.get("href"))
    sla_name = sla.get("name") or sla.get("description")
    if sla_id:
        subjects.entity({"id": sla_id, "href": sla.get("href"), "name": sla_name}, "sla", "Sla")
    system = _system_of(notice, default=DEFAULT_SYSTEMS["slaViolation"])
    metric = rule.get("metric") or chars.get("metric")
    observed = violation.get("actualValue")
    if observed is None:
        observed = violation.get("violationAverage")
    reference, unit = violation.get("referenceValue"), violation.get("unit") or chars.get("unit")
    direction = _sla_direction(violation.get("operator"), observed, reference)
    vid = violation_doc["id"]
    text = f"{metric or 'an SLA objective'}: {observed}{' ' + unit if unit else ''} against " \
           f"{violation.get('operator') or 'the reference'} {reference}"
    return _assemble(
        "slaViolation", notice, ctx, kind=DEGRADATION, category=SYSTEM_ORIGINATED,
        originator=_system_party(system), system=system, customer=customer,
        parties=[p for p in parties if p is not customer], subjects=subjects, metric=metric, observed=observed,
        threshold=reference, unit=unit, direction=direction, start=_when(violation_doc["date"]),
        tier_candidates=[chars.get("slaTier"), sla.get("slaTier"), _tier_word(sla.get("name"), sla.get("description"))],
        impact=BREACHED_TARGET_IMPACT,
        description=violation.get("comment") or f"SLA {sla_name or sla_id or ''} violated, {text}".replace("  ", " "),
        reason=f"SLA violation: {metric}" if metric else "SLA violation",
        name=None,
        first_alert=_clean({"id": vid, "href": violation_doc.get("href"), "role": "firstAlert",
                            "@referredType": "SlaViolation"}),
        references={"slaViolation": [_clean({"id": vid, "href": violation_doc.get("href"),
                                             "@referredType": "SlaViolation"})]},
        external=[{"id": vid, "owner": system, "externalIdentifierType": "SlaViolation"}])


# -- TMF688 Event with event.qosDegradation -------------------------------------------------------------------

GENERIC_CLEARED = "QoSDegradationClearedEvent"


def from_event(notice: dict, ctx: Context) -> Conversion:
    q = notice["event"]["qosDegradation"]
    chars = _chars(notice.get("analyticCharacteristic"))
    customer = q.get("customer") or _envelope_customer(notice)
    subjects = _Subjects()
    subjects.service(q.get("service"))
    subjects.entity(q.get("product"), "product", "Product")
    subjects.entity(q.get("productOffering"), "productOffering", "ProductOffering")
    subjects.any(notice.get("source"))
    sla = q.get("sla") or {}
    if sla:
        subjects.entity(sla, "sla", "Sla")
    system = _system_of(notice, default=DEFAULT_SYSTEMS["event"])
    declared_by_customer = _lower(q.get("declaredBy")) == "customer"
    observed, threshold = q.get("observedValue"), q.get("threshold")
    direction = _direction(q.get("direction") or chars.get("direction"), observed, threshold)
    metric = q["metric"]
    what = f"{metric} {observed if observed is not None else ''}{' ' + q['unit'] if q.get('unit') else ''}".strip()
    cleared = notice["eventType"] == GENERIC_CLEARED
    conversion = _assemble(
        "event", notice, ctx, kind=CLEARED if cleared else DEGRADATION,
        category=CUSTOMER_DECLARER if declared_by_customer else SYSTEM_ORIGINATED,
        originator=_party(customer, "customer") if declared_by_customer and customer else _system_party(system),
        system=system, customer=customer,
        parties=[p for p in notice.get("relatedParty") or () if _lower(p.get("role")) != "customer"],
        subjects=subjects, metric=metric, observed=observed, threshold=threshold,
        unit=q.get("unit") or chars.get("unit"), direction=direction,
        start=_when(q.get("degradationStart")) or _when(notice.get("timeOcurred")),
        tier_candidates=[q.get("slaTier"), chars.get("slaTier"), sla.get("slaTier"), _tier_word(sla.get("name"))],
        impact=impact_of(q.get("severity")),
        description=q.get("description") or notice.get("description") or f"QoS degradation detected: {what}",
        reason=f"{metric} degradation",
        name=notice.get("title"),
        first_alert={"id": notice["eventId"], "role": "firstAlert", "@referredType": notice["eventType"]},
        references={},
        external=[{"id": notice["eventId"], "owner": system, "externalIdentifierType": "Event"}])
    if cleared:
        conversion.reason = f"{metric} degradation cleared at " + \
            (_when(notice.get("timeOcurred")) or _when(notice.get("eventTime")) or ctx.received_at)
    return conversion


CONVERTERS = {
    "troubleTicket": from_trouble_ticket_event,
    "alarm": from_alarm_event,
    "slaViolation": from_sla_violation_event,
    "event": from_event,
}


def convert(source: str, notice: dict, ctx: Context) -> Conversion:
    return CONVERTERS[source](notice, ctx)
