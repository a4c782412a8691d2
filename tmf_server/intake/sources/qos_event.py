"""A TMF688 Event carrying the documented `qosDegradation` -> a report (docs/intake.md)."""
from __future__ import annotations

from tmf_server.intake.conversion import (CLEARED, CUSTOMER_DECLARER, DEGRADATION, SYSTEM_ORIGINATED, Context,
                                          Conversion, ReportDraft, Subjects, Symptom, assemble, characteristics,
                                          customer_of, direction_of, party, squash, system_of, system_party,
                                          tier_word, when)
from tmf_server.intake.priority import impact_of
from tmf_server.intake.schemas import Notice
from tmf_server.intake.sources.base import Rules, Source

NAME = "event"
DEFAULT_SYSTEM = "eventManagement"
CLEARED_EVENT = "QoSDegradationClearedEvent"


def convert(notice: Notice, ctx: Context, rules: Rules) -> Conversion:
    values = notice.values
    q = values["event"]["qosDegradation"]
    chars = characteristics(values.get("analyticCharacteristic"))
    customer = q.get("customer") or customer_of(values.get("relatedParty"))
    subjects = Subjects()
    subjects.service(q.get("service"))
    subjects.entity(q.get("product"), "product", "Product")
    subjects.entity(q.get("productOffering"), "productOffering", "ProductOffering")
    subjects.source(values.get("source"))
    sla = q.get("sla") or {}
    if sla:
        subjects.entity(sla, "sla", "Sla")
    system = system_of(values, default=DEFAULT_SYSTEM)
    declared_by_customer = squash(q.get("declaredBy")) == "customer"
    observed, threshold = q.get("observedValue"), q.get("threshold")
    metric = q.get("metric") or chars.get("metric")
    unit = q.get("unit") or chars.get("unit")
    measured = " ".join(str(v) for v in (metric, observed, unit) if v not in (None, ""))
    occurred = when(values.get("timeOcurred")) or when(values.get("timeOccurred"))
    cleared = values["eventType"] == CLEARED_EVENT
    draft = ReportDraft(
        kind=CLEARED if cleared else DEGRADATION,
        category=CUSTOMER_DECLARER if declared_by_customer else SYSTEM_ORIGINATED, system=system,
        originator=party(customer, "customer") if declared_by_customer and customer else system_party(system),
        description=q.get("description") or values.get("description") or
        ("QoS degradation detected" + (f": {measured}" if measured else "")),
        reason=f"{metric} degradation" if metric else "QoS degradation",
        first_alert={"id": values["eventId"], "role": "firstAlert", "@referredType": values["eventType"]},
        impact=impact_of(q.get("severity")), severity_given=bool(q.get("severity")),
        customer=customer,
        parties=[p for p in values.get("relatedParty") or () if squash(p.get("role")) != "customer"],
        subjects=subjects,
        symptom=Symptom(metric, observed, threshold, unit,
                        direction_of(q.get("direction") or chars.get("direction"), observed, threshold),
                        when(q.get("degradationStart")) or occurred),
        tier_candidates=[q.get("slaTier"), chars.get("slaTier"), sla.get("slaTier"), tier_word(sla.get("name"))],
        name=values.get("title"),
        external=[{"id": values["eventId"], "owner": system, "externalIdentifierType": "Event"}], shape=notice.shape)
    conversion = assemble(NAME, values, ctx, draft)
    if cleared:
        conversion.reason = f"{metric or 'QoS'} degradation cleared at " + \
            (occurred or when(values.get("eventTime")) or ctx.received_at)
    return conversion


SOURCE = Source(NAME, DEFAULT_SYSTEM, convert)
