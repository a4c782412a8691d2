"""A TMF623 v2 SlaViolation in a TMF event envelope -> a system-originated report (docs/intake.md)."""
from __future__ import annotations

from tmf_server.intake.conversion import (DEGRADATION, SYSTEM_ORIGINATED, Context, Conversion, ReportDraft,
                                          Subjects, Symptom, assemble, characteristics, clean, customer_of,
                                          direction_of, href, last_segment, sentence, system_of, system_party,
                                          tier_word, when)
from tmf_server.intake.priority import BREACHED_TARGET_IMPACT
from tmf_server.intake.schemas import Notice
from tmf_server.intake.sources.base import Rules, Source

NAME = "slaViolation"
DEFAULT_SYSTEM = "slaManagement"
# The SLA operator says how the metric must compare with the reference value; a violation is the opposite.
_MUST_BE_ABOVE = frozenset({">", ">=", "gt", "ge", "gte", ".gt", ".ge", ".gte", "greaterthan", "greaterthanorequal"})
_MUST_BE_BELOW = frozenset({"<", "<=", "lt", "le", "lte", ".lt", ".le", ".lte", "lessthan", "lessthanorequal"})


def _direction(operator, actual, reference) -> str | None:
    word = str(operator or "").strip().lower().replace(" ", "")
    if word in _MUST_BE_ABOVE:
        return "down"  # the value had to stay above the reference: lower is worse
    if word in _MUST_BE_BELOW:
        return "up"
    return direction_of(None, actual, reference)


def convert(notice: Notice, ctx: Context, rules: Rules) -> Conversion:
    values = notice.values
    document = values["event"]["slaViolation"]
    violation = document.get("violation") or {}
    rule = violation.get("rule") or {}
    sla = document.get("sla") or {}
    chars = characteristics(values.get("analyticCharacteristic"))
    parties = []
    for entry in document.get("relatedParty") or ():
        party_id = entry.get("id") or last_segment(entry.get("href"))
        if party_id:
            parties.append({**entry, "id": party_id, "referredType": entry.get("referredType") or "Customer"})
    customer = customer_of(parties, values.get("relatedParty"))
    subjects = Subjects()
    subjects.source(values.get("source"))
    sla_id = sla.get("id") or last_segment(sla.get("href"))
    sla_name = sla.get("name") or sla.get("description")
    if sla_id:
        subjects.entity({"id": sla_id, "href": sla.get("href"), "name": sla_name}, "sla", "Sla")
    system = system_of(values, default=DEFAULT_SYSTEM)
    metric = rule.get("metric") or chars.get("metric")
    observed = violation.get("actualValue")
    if observed is None:
        observed = violation.get("violationAverage")
    reference, unit = violation.get("referenceValue"), violation.get("unit") or chars.get("unit")
    vid = document["id"]
    measured = " ".join(str(v) for v in (metric, observed, unit) if v not in (None, ""))
    against = " ".join(str(v) for v in (violation.get("operator"), reference) if v not in (None, ""))
    draft = ReportDraft(
        kind=DEGRADATION, category=SYSTEM_ORIGINATED, system=system, originator=system_party(system),
        description=violation.get("comment") or sentence(
            f"SLA {sla_name or sla_id} violated" if (sla_name or sla_id) else f"SLA violation {vid}",
            measured + (f" against {against}" if against else "")),
        reason=f"SLA violation: {metric}" if metric else "SLA violation",
        first_alert=clean({"id": vid, "href": href(document.get("href")), "role": "firstAlert",
                           "@referredType": "SlaViolation"}),
        impact=BREACHED_TARGET_IMPACT,
        customer=customer, parties=[p for p in parties if p is not customer], subjects=subjects,
        symptom=Symptom(metric, observed, reference, unit, _direction(violation.get("operator"), observed, reference),
                        when(document.get("date"))),
        tier_candidates=[chars.get("slaTier"), sla.get("slaTier"), tier_word(sla.get("name"), sla.get("description"))],
        references={"slaViolation": [clean({"id": vid, "href": href(document.get("href")),
                                            "@referredType": "SlaViolation"})]},
        external=[{"id": vid, "owner": system, "externalIdentifierType": "SlaViolation"}], shape=notice.shape)
    return assemble(NAME, values, ctx, draft)


SOURCE = Source(NAME, DEFAULT_SYSTEM, convert)
