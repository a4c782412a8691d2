"""TMF621 trouble ticket events (v4.0.0 and v5.0.1) -> a customer-declared report (docs/intake.md)."""
from __future__ import annotations

from tmf_server.intake.conversion import (CLEARED, CUSTOMER_DECLARER, DEGRADATION, REJECTED, SLA_TYPES, SYMPTOM,
                                          UPDATE, Context, Conversion, ReportDraft, Subjects, Symptom, assemble,
                                          characteristics, clean, customer_of, date_text, direction_of, external_ids,
                                          href, party, squash, system_of, system_party, tier_word)
from tmf_server.intake.priority import impact_of
from tmf_server.intake.schemas import Notice, measure
from tmf_server.intake.sources.base import Rules, Source

NAME = "troubleTicket"
DEFAULT_SYSTEM = "troubleTicketManagement"
CREATE = "TroubleTicketCreateEvent"
RESOLVED_EVENT = "TroubleTicketResolvedEvent"
# A ticket in one of these statuses is finished at its source: it opens no report; the report made from it is
# resolved or cancelled where the lifecycle allows.
FINISHED = {"resolved": "resolved", "closed": "resolved", "cancelled": "cancelled", "canceled": "cancelled"}


def _description(ticket: dict, metric) -> str:
    """The ticket's description; if it has none, its name, else a sentence."""
    for text in (ticket.get("description"), ticket.get("name")):
        if text and text.strip():
            return text
    return f"Customer trouble ticket {ticket['id']}" + (f": {metric} degradation" if metric else "")


def _ref(ticket: dict, **extra) -> dict:
    return clean({"id": ticket["id"], "href": href(ticket.get("href")), "name": ticket.get("name"), **extra,
                  "@referredType": "TroubleTicket"})


def convert(notice: Notice, ctx: Context, rules: Rules) -> Conversion:
    values = notice.values
    ticket = values["event"]["troubleTicket"]
    own = (ticket.get("troubleTicketCharacteristic") or []) + (ticket.get("characteristic") or [])
    chars = characteristics(own, values.get("analyticCharacteristic"))
    status = FINISHED.get(squash(ticket.get("status")))
    if values["eventType"] == RESOLVED_EVENT:
        status = status or "resolved"
    kind = CLEARED if status else (DEGRADATION if values["eventType"] == CREATE else UPDATE)
    refused = rules.ticket_relevance.not_qos(ticket, chars) if kind != UPDATE else None
    if kind == DEGRADATION:
        if refused:
            return Conversion(NAME, values["eventId"], values["eventType"], REJECTED, reason=refused,
                              ticket_id=ticket["id"], shape=notice.shape)
    customer = customer_of(ticket.get("relatedParty"), values.get("relatedParty"))
    subjects = Subjects()
    for entity in ticket.get("relatedEntity") or ():
        subjects.any(entity)
    subjects.source(values.get("source"))
    system = system_of(values, default=DEFAULT_SYSTEM)
    metric, observed = chars.get("metric"), measure(chars.get("observedValue"))
    threshold = measure(chars.get("threshold"))
    others = [p for p in ticket.get("relatedParty") or () if p is not customer]
    slas = [e for e in ticket.get("relatedEntity") or () if squash(e.get("referredType")) in SLA_TYPES]
    ticket_type = ticket.get("ticketType") or ticket.get("type")
    draft = ReportDraft(
        kind=kind, category=CUSTOMER_DECLARER, system=system,
        originator=party(customer, "customer") if customer else (party(others[0]) if others else system_party(system)),
        description=_description(ticket, metric),
        reason=f"{metric} degradation reported by the customer" if metric else
        f"customer {ticket_type or 'trouble ticket'}",
        first_alert=_ref(ticket, role="firstAlert"),
        impact=impact_of(ticket.get("severity")), severity_given=bool(ticket.get("severity")),
        customer=customer, parties=others, subjects=subjects,
        symptom=Symptom(metric, observed, threshold, chars.get("unit"),
                        direction_of(chars.get("direction"), observed, threshold),
                        date_text(chars.get("degradationStart"))),
        tier_candidates=[chars.get("slaTier"), *(s.get("slaTier") for s in slas),
                         tier_word(*(s.get("name") for s in slas))],
        name=ticket.get("name"),
        references={"troubleTicket": [_ref(ticket)]},
        external=[{"id": ticket["id"], "owner": system, "externalIdentifierType": "TroubleTicket"},
                  *external_ids(ticket.get("externalIdentifier"), system)],
        extra_characteristics=[c for c in own if c["name"] not in SYMPTOM],
        ticket_id=ticket["id"], finish_status=status, shape=notice.shape)
    conversion = assemble(NAME, values, ctx, draft)
    conversion.not_qos = refused
    if status:
        conversion.reason = f"trouble ticket {ticket['id']} {squash(ticket.get('status')) or status} at its source"
    return conversion


SOURCE = Source(NAME, DEFAULT_SYSTEM, convert)
