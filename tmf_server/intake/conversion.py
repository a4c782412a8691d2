"""What every source converter shares: the Context a conversion gets, the Conversion it gives, and the ReportDraft
value object a converter fills and `assemble` turns into a ServiceProblem_Create body (docs/intake.md has the
table). Pure: no database, no clock, no request; everything that varies comes in through the Context.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from tmf_server.dates import canonical_datetime
from tmf_server.intake.priority import TIERS, Assessment, PriorityRule, normalise_tier
from tmf_server.validation import is_uri

# What a conversion asks the intake to do.
DEGRADATION = "degradation"  # create a report, or append to the open one of the same customer/subject/metric
UPDATE = "update"  # a change or state event: append to the open report made from the same source resource only
CLEARED = "cleared"  # the source is cleared, resolved, closed or cancelled: never opens a report
REJECTED = "rejected"  # not a QoS degradation: stored with the reason, nothing else

CUSTOMER_DECLARER = "customer.declarer"
SYSTEM_ORIGINATED = "system.originated"

# The QoS symptom, as ServiceProblem characteristics (names fixed: the information rule reads metric and
# degradationStart).
SYMPTOM = ("metric", "observedValue", "threshold", "unit", "direction", "degradationStart", "slaTier")

PRODUCT_TYPES = {"product": "Product", "productoffering": "ProductOffering"}
SERVICE_TYPES = frozenset({"service", "customerfacingservice", "resourcefacingservice"})
SLA_TYPES = frozenset({"sla", "servicelevelagreement", "agreement", "servicelevelspecification"})


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
    kind: str  # DEGRADATION, UPDATE, CLEARED or REJECTED
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
    severity_given: bool = True  # False: the priority in the body is the default's, it never raises a report's
    finish_status: str | None = None  # CLEARED by the source's status: "resolved" or "cancelled" where allowed
    shape: str = "v4"  # "v5" when told apart by shape (docs/intake.md)
    not_qos: str | None = None  # a finished source that is no QoS degradation either: why (when no report has it)

    @property
    def correlatable(self) -> bool:
        """Whether the notification names customer, product/service and metric: only then is it appended to an
        open report of the same three."""
        return bool(self.customer and self.subjects and self.metric)


# -- small helpers ---------------------------------------------------------------------------------------------

def clean(mapping: dict) -> dict:
    return {k: v for k, v in mapping.items() if v not in (None, "", [], {})}


def when(value: datetime | None) -> str | None:
    return canonical_datetime(value) if value is not None else None


def squash(value) -> str:
    """A word compared without case, spaces, '_' or '-' ("Quality of Service Alarm" = "qualityofservicealarm")."""
    return re.sub(r"[\s_\-]", "", str(value or "")).lower()


def href(value) -> str | None:
    """An href the report can keep: an absolute URI (the TMF656 references declare it so). Sources declare href a
    plain string; a relative or invalid one stays in the stored record only."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if value and is_uri(value) else None


def last_segment(link: str | None) -> str | None:
    if not link:
        return None
    segment = link.strip().rstrip("/").rsplit("/", 1)[-1]
    return segment or None


def characteristics(*lists) -> dict:
    """name -> value over characteristic lists; the first list naming a characteristic wins."""
    found: dict = {}
    for items in lists:
        for item in items or ():
            if item.get("name") and item["name"] not in found and item.get("value") not in (None, ""):
                found[item["name"]] = item["value"]
    return found


def date_text(value) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return canonical_datetime(value)
    try:
        return canonical_datetime(datetime.fromisoformat(str(value).strip().replace("z", "Z")))
    except ValueError:
        return str(value)


def direction_of(explicit, observed, threshold) -> str | None:
    word = squash(explicit)
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


def party(entry: dict, role: str | None = None, default_type: str = "Individual") -> dict:
    return clean({"id": entry["id"], "href": href(entry.get("href")), "name": entry.get("name"),
                  "role": role or entry.get("role"), "@referredType": entry.get("referredType") or default_type})


def customer_of(*party_lists) -> dict | None:
    for parties in party_lists:
        for entry in parties or ():
            if squash(entry.get("role")) == "customer" and entry.get("id"):
                return entry
    return None


def system_party(system: str) -> dict:
    return {"id": system, "name": system, "role": "originator", "@referredType": "Organization"}


def is_subject(ref: dict | None) -> bool:
    """Whether an envelope `source` names the degraded product, offering or service (else it is the emitting
    system: a TMF688 v5 `source` is the application that sent the event)."""
    kind = squash((ref or {}).get("referredType"))
    return kind in PRODUCT_TYPES or kind in SERVICE_TYPES


def system_of(notice: dict, *candidates, default: str) -> str:
    """The originating system: the source's own system attributes, then the envelope's reportingSystem, then an
    envelope `source` that is not a product or service (v5: the emitting application), else the default."""
    reporting = notice.get("reportingSystem") or {}
    source = notice.get("source") or {}
    systems = (source.get("name"), source.get("id")) if source and not is_subject(source) else ()
    for value in (*candidates, reporting.get("name"), reporting.get("id"), *systems):
        if value:
            return str(value)
    return default


def tier_word(*texts) -> str | None:
    for text in texts:
        for word in re.findall(r"[a-z]+", str(text or "").lower()):
            if word in TIERS:
                return word
    return None


def sentence(*parts) -> str:
    """The parts that are present, joined as sentences (no filler for what is absent)."""
    kept = [str(p).strip().rstrip(".") for p in parts if p not in (None, "") and str(p).strip()]
    return ". ".join(kept)


class Subjects:
    """Collects the affected services, products and offerings of a notification (deduplicated, in order)."""

    def __init__(self):
        self.services: list[dict] = []
        self.entities: list[dict] = []

    def service(self, ref: dict | None) -> None:
        if ref and ref.get("id") and all(s["id"] != ref["id"] for s in self.services):
            self.services.append(clean({"id": ref["id"], "href": href(ref.get("href")), "name": ref.get("name"),
                                        "@referredType": "Service"}))

    def entity(self, ref: dict | None, role: str, referred_type: str) -> None:
        if ref and ref.get("id") and not any(e["id"] == ref["id"] and e["@referredType"] == referred_type
                                             for e in self.entities):
            self.entities.append(clean({"id": ref["id"], "href": href(ref.get("href")), "name": ref.get("name"),
                                        "role": ref.get("role") or role, "@referredType": referred_type}))

    def any(self, ref: dict | None) -> None:
        """A reference whose @referredType says what it is (TMF621 relatedEntity)."""
        if not ref or not ref.get("id"):
            return
        kind = squash(ref.get("referredType"))
        if kind in SERVICE_TYPES:
            self.service(ref)
        elif kind in PRODUCT_TYPES:
            self.entity(ref, PRODUCT_TYPES[kind][0].lower() + PRODUCT_TYPES[kind][1:], PRODUCT_TYPES[kind])
        elif kind in SLA_TYPES:
            self.entity(ref, "sla", ref.get("referredType"))
        elif ref.get("referredType"):
            self.entity(ref, ref.get("role") or "related", ref["referredType"])

    def source(self, ref: dict | None) -> None:
        """The envelope's `source`, when it names the degraded product or service (never a system)."""
        if is_subject(ref):
            self.any(ref)

    def keys(self) -> list[tuple[str, str]]:
        keys = [("service", s["id"]) for s in self.services]
        keys += [("product", e["id"]) for e in self.entities if e["@referredType"] == "Product"]
        if not keys:  # an offering identifies the customer's product only when nothing better is known
            keys = [("productOffering", e["id"]) for e in self.entities if e["@referredType"] == "ProductOffering"]
        return keys


def event_ref(notice: dict, ctx: Context) -> dict:
    """EventRef of the received notification: its eventId, the stored raw event's URL, its time and type."""
    return clean({"id": notice["eventId"], "href": ctx.record_href,
                  "eventTime": when(notice.get("eventTime")) or ctx.received_at,
                  "name": notice["eventType"], "@referredType": notice["eventType"]})


def external_ids(entries, owner_default: str) -> list[dict]:
    """A source's own externalIdentifier list (TMF621 v5), kept on the report as the source sent it."""
    return [clean({"id": e["id"], "owner": e.get("owner") or owner_default,
                   "externalIdentifierType": e.get("externalIdentifierType")})
            for e in entries or () if e.get("id")]


# -- the value object a converter fills --------------------------------------------------------------------------

@dataclass
class Symptom:
    metric: str | None = None
    observed: object = None
    threshold: object = None
    unit: str | None = None
    direction: str | None = None
    start: str | None = None


@dataclass
class ReportDraft:
    """What a converter read from one notification, in the report's terms."""

    kind: str
    category: str
    system: str  # originatingSystem
    originator: dict
    description: str
    reason: str
    first_alert: dict
    impact: str
    severity_given: bool = True
    customer: dict | None = None
    parties: list[dict] = field(default_factory=list)  # other related parties (not the customer)
    subjects: Subjects = field(default_factory=Subjects)
    symptom: Symptom = field(default_factory=Symptom)
    tier_candidates: list = field(default_factory=list)
    name: str | None = None
    references: dict = field(default_factory=dict)  # troubleTicket / underlyingAlarm / slaViolation
    external: list[dict] = field(default_factory=list)
    resources: list[dict] = field(default_factory=list)
    extra_characteristics: list[dict] = field(default_factory=list)
    group_keys: list[str] = field(default_factory=list)
    alarm_id: str | None = None
    ticket_id: str | None = None
    finish_status: str | None = None
    shape: str = "v4"


def _symptom(symptom: Symptom, tier: str | None) -> list[dict]:
    values = {"metric": symptom.metric, "observedValue": symptom.observed, "threshold": symptom.threshold,
              "unit": symptom.unit, "direction": symptom.direction, "degradationStart": symptom.start, "slaTier": tier}
    out = []
    for name in SYMPTOM:
        value = values[name]
        if value in (None, ""):
            continue
        kind = "number" if isinstance(value, (int, float)) else ("dateTime" if name == "degradationStart" else "string")
        out.append({"name": name, "value": value, "valueType": kind})
    return out


def assemble(source: str, notice: dict, ctx: Context, draft: ReportDraft) -> Conversion:
    """The ServiceProblem_Create body and the correlation facts of a filled draft."""
    tier = next((t for t in draft.tier_candidates if t), None)
    assessment = ctx.rule.assess(tier, draft.impact)
    related_party = []
    if draft.customer:
        related_party.append(party(draft.customer, "customer", draft.customer.get("referredType") or "Individual"))
    for other in draft.parties:
        entry = party(other)
        if squash(other.get("role")) != "customer" \
                and not any(p["id"] == entry["id"] and p.get("role") == entry.get("role") for p in related_party):
            related_party.append(entry)
    symptom = draft.symptom
    # slaTier: as the source gave it (the tier the rule applied, maybe the default, is in impactPattern)
    characteristic = _symptom(symptom, normalise_tier(tier))
    taken = {c["name"] for c in characteristic}
    for extra in draft.extra_characteristics:
        if extra["name"] not in taken:
            taken.add(extra["name"])
            entry = {"name": extra["name"], "value": extra.get("value")}
            if extra.get("valueType"):
                entry["valueType"] = extra["valueType"]
            characteristic.append(entry)
    body = clean({
        "category": draft.category,
        "priority": assessment.priority,
        "impactImportanceFactor": assessment.impact_importance_factor,
        "impactPattern": assessment.impact_pattern(symptom.metric),
        "name": draft.name,
        "description": draft.description,
        "reason": draft.reason,
        "originatorParty": draft.originator,
        "originatingSystem": draft.system,
        "relatedParty": related_party,
        "affectedService": draft.subjects.services,
        "affectedResource": draft.resources,
        "relatedEntity": draft.subjects.entities,
        "firstAlert": draft.first_alert,
        "relatedEvent": [event_ref(notice, ctx)],
        "externalIdentifier": draft.external,
        "characteristic": characteristic,
        **draft.references,
    })
    keys = list(draft.group_keys) + [f"service:{s['id']}" for s in draft.subjects.services]
    return Conversion(source, notice["eventId"], notice["eventType"], draft.kind, body=body,
                      customer=draft.customer["id"] if draft.customer else None, subjects=draft.subjects.keys(),
                      metric=symptom.metric or None, direction=symptom.direction,
                      group_keys=list(dict.fromkeys(keys)), alarm_id=draft.alarm_id, ticket_id=draft.ticket_id,
                      assessment=assessment, severity_given=draft.severity_given, finish_status=draft.finish_status,
                      shape=draft.shape)
