"""Pure changes of ServiceProblem representations made by the intake (applied through ServiceProblemService.update):
appending a notification to an open report, recording a clearing, and the parent of reports with one cause (the
links between parent and children are then made by the TMF656 ProblemGroup task, tmf_server/problems/tasks.py).
"""
from __future__ import annotations

from tmf_server.intake.conversion import SYSTEM_ORIGINATED, Conversion, worse
from tmf_server.intake.priority import raise_only
from tmf_server.problems.lifecycle import allows, is_open_status
from tmf_server.problems.lookups import GROUPED_BY

# The kinds of cause key ("alarm:ID", "resource:ID", "service:ID") and the list of a report that names the cause.
CAUSE_PATHS = {"alarm": "underlyingAlarm", "resource": "affectedResource", "service": "affectedService"}

# What one report keeps of the notifications appended to it (docs/intake.md, "What a report keeps"): the entries
# made per notification (its relatedEvent, the externalIdentifier of a TMF688 event, the intake's tracking record)
# are kept for the first notification and the RECENT_KEPT most recent; the characteristic EVENT_COUNT says how many
# events were related in all. Every stored notification stays readable through GET /intake/record.
RECENT_KEPT = 50
EVENT_COUNT = "relatedEventCount"
INTAKE_TRACKING = "intake: "  # how the descriptions of the intake's tracking records begin
_PER_NOTIFICATION_EXTERNAL = "Event"  # externalIdentifierType naming the notification itself (TMF688 events)

# Lists a later notification adds to, and what identifies an entry in each.
_APPENDED = {
    "relatedEvent": ("id",),
    "troubleTicket": ("id",),
    "underlyingAlarm": ("id",),
    "slaViolation": ("id",),
    "externalIdentifier": ("id", "externalIdentifierType"),  # the same ticket or alarm, whoever relayed it
    "affectedService": ("id",),
    "affectedResource": ("id",),
    "relatedEntity": ("id", "@referredType"),
    "relatedParty": ("id", "role"),
}


class NoLongerOpen(Exception):
    """The report was closed (or otherwise finished) between finding it and changing it."""


def is_open(representation: dict) -> bool:
    return is_open_status(representation.get("status"))


def is_parent(representation: dict) -> bool:
    """Whether the report is a parent the intake made (it carries the GROUPED_BY characteristic)."""
    return any(c.get("name") == GROUPED_BY for c in representation.get("characteristic", []))


def customers(representation: dict) -> list[dict]:
    """The report's related parties with role customer."""
    return [p for p in representation.get("relatedParty", []) if p.get("role") == "customer"]


def shares_cause(representation: dict, key: str) -> bool:
    """Whether the report names the cause `key` ("alarm:ID", "resource:ID" or "service:ID")."""
    kind, _, value = key.partition(":")
    path = CAUSE_PATHS.get(kind)
    return bool(path) and any(entry.get("id") == value for entry in representation.get(path, []))


def problem_ref(representation: dict) -> dict:
    return {"id": representation["id"], "href": representation["href"], "@referredType": "ServiceProblem"}


def _append(representation: dict, name: str, entries) -> None:
    keys = _APPENDED[name]
    current = representation.setdefault(name, [])
    for entry in entries or ():
        if not any(all(e.get(k) == entry.get(k) for k in keys) for e in current):
            current.append(entry)
    if not current:
        representation.pop(name)


def _keep_first_and_recent(entries: list, selected, recent: int) -> None:
    """Drops from `entries` the `selected` ones between the first selected and the `recent` most recent."""
    positions = [i for i, entry in enumerate(entries) if selected(entry)]
    for i in reversed(positions[1:max(1, len(positions) - recent)]):
        del entries[i]


def _is_intake_tracking(record) -> bool:
    return isinstance(record, dict) and str(record.get("description", "")).startswith(INTAKE_TRACKING)


def _names_a_notification(identifier) -> bool:
    return isinstance(identifier, dict) and identifier.get("externalIdentifierType") == _PER_NOTIFICATION_EXTERNAL


def _relate_events(representation: dict, entries) -> None:
    """Adds the notification's related event (once); when it is new, counts it in EVENT_COUNT and bounds what the
    report keeps per notification. The intake's tracking record of this change is added after this (by
    ServiceProblemService.update), so one place is left for it. Nothing changes when the event is known."""
    before = len(representation.get("relatedEvent", []))
    _append(representation, "relatedEvent", entries)
    added = len(representation.get("relatedEvent", [])) - before
    if added <= 0:
        return
    counted = (_characteristic(representation, EVENT_COUNT) or {}).get("value")
    known = counted if isinstance(counted, int) and not isinstance(counted, bool) and counted >= before else before
    _set_characteristic(representation, {"name": EVENT_COUNT, "value": known + added, "valueType": "integer"})
    _keep_first_and_recent(representation["relatedEvent"], lambda _event: True, RECENT_KEPT)
    _keep_first_and_recent(representation.get("externalIdentifier", []), _names_a_notification, RECENT_KEPT)
    _keep_first_and_recent(representation.get("trackingRecord", []), _is_intake_tracking, RECENT_KEPT - 1)


def _characteristic(representation: dict, name: str) -> dict | None:
    return next((c for c in representation.get("characteristic", []) if c.get("name") == name), None)


def _set_characteristic(representation: dict, entry: dict) -> None:
    existing = _characteristic(representation, entry["name"])
    if existing is None:
        representation.setdefault("characteristic", []).append(dict(entry))
    else:
        existing.clear()
        existing.update(entry)


def _merge_symptom(representation: dict, incoming: list[dict], direction_hint: str | None) -> None:
    """Missing symptom attributes are filled in; the observed value becomes the worst seen (in the threshold's
    direction); degradationStart the earliest."""
    by_name = {c["name"]: c for c in incoming}
    for entry in incoming:
        if entry["name"] in ("observedValue", "degradationStart"):
            continue
        if _characteristic(representation, entry["name"]) is None:
            _set_characteristic(representation, entry)
    direction_entry = _characteristic(representation, "direction")
    direction = direction_entry["value"] if direction_entry else direction_hint
    observed = by_name.get("observedValue")
    if observed is not None:
        current = _characteristic(representation, "observedValue")
        if current is None or worse(direction, observed["value"], current.get("value")):
            _set_characteristic(representation, observed)
    start = by_name.get("degradationStart")
    if start is not None:
        current = _characteristic(representation, "degradationStart")
        if current is None or str(start["value"]) < str(current.get("value")):
            _set_characteristic(representation, start)


def _raise_priority(representation: dict, body: dict) -> None:
    if body.get("priority") is None:
        return
    before = representation.get("priority")
    representation["priority"] = raise_only(before, body["priority"])
    if representation["priority"] != before:  # raised: the impact assessment that raised it replaces the old one
        for name in ("impactImportanceFactor", "impactPattern"):
            if name in body:
                representation[name] = body[name]
    elif "impactImportanceFactor" not in representation and "impactImportanceFactor" in body:
        representation["impactImportanceFactor"] = body["impactImportanceFactor"]


def append_notification(conversion: Conversion):
    """The change that appends a degradation notification to an open report."""
    body = conversion.body

    def change(representation: dict) -> None:
        if not is_open(representation):
            raise NoLongerOpen(representation["id"])
        for name in _APPENDED:
            if name in body and name != "relatedEvent":
                _append(representation, name, body[name])
        _relate_events(representation, body.get("relatedEvent"))
        if "affectedService" in representation:
            representation["affectedNumberOfServices"] = len(representation["affectedService"])
        _merge_symptom(representation, body.get("characteristic", []), conversion.direction)
        if conversion.severity_given:  # a change event without a severity says nothing about the impact
            _raise_priority(representation, body)

    return change


def record_event(conversion: Conversion):
    """The change of a clearing: the clearing event becomes a related event (the tracking record says why)."""

    def change(representation: dict) -> None:
        if not is_open(representation):
            raise NoLongerOpen(representation["id"])
        _relate_events(representation, conversion.body.get("relatedEvent"))

    return change


def finish_from_source(conversion: Conversion, finished: dict[str, str]):
    """The change of a report whose source finished (a ticket resolved, closed or cancelled): the event becomes a
    related event, and the report takes the source's final status where the lifecycle allows it from its own
    (`finished[report id]` = the status it is left in)."""

    def change(representation: dict) -> None:
        if not is_open(representation):
            raise NoLongerOpen(representation["id"])
        _relate_events(representation, conversion.body.get("relatedEvent"))
        target = conversion.finish_status
        if target and allows(representation["status"], target):
            representation["status"] = target
            representation["statusChangeReason"] = conversion.reason
        finished[representation["id"]] = representation["status"]

    return change


# -- grouping under a parent -----------------------------------------------------------------------------------

def _key_refs(key: str) -> dict:
    kind, _, value = key.partition(":")
    if kind == "resource":
        return {"rootCauseResource": [{"id": value, "@referredType": "Resource"}]}
    if kind == "service":
        return {"rootCauseService": [{"id": value, "@referredType": "Service"}]}
    if kind == "alarm":
        return {"underlyingAlarm": [{"id": value, "@referredType": "Alarm"}]}
    return {}


def parent_body(key: str, children: list[dict], conversion: Conversion, system_id: str) -> dict:
    """ServiceProblem_Create of the parent of reports of several customers with one cause (`key`)."""
    parent: dict = {
        "category": SYSTEM_ORIGINATED,
        "priority": min(c.get("priority", 10) for c in children),
        "description": f"Common cause of the QoS degradation reports of {len(children)} customers ({key})",
        "reason": f"{conversion.metric or 'QoS'} degradation affecting several customers",
        "originatorParty": {"id": system_id, "name": system_id, "role": "originator",
                            "@referredType": "Organization"},
        "originatingSystem": system_id,
        "characteristic": [{"name": GROUPED_BY, "value": key, "valueType": "string"}],
        "relatedEvent": list(conversion.body.get("relatedEvent", [])),
        **_key_refs(key),
    }
    _take_children(parent, children)
    for child in children:
        _merge_symptom(parent, [c for c in child.get("characteristic", [])
                                if c.get("name") in ("metric", "observedValue", "unit", "direction",
                                                     "degradationStart")], conversion.direction)
    factors = [int(c["impactImportanceFactor"]) for c in children if str(c.get("impactImportanceFactor", "")).isdigit()]
    if factors:
        parent["impactImportanceFactor"] = str(max(factors))
    parent["impactPattern"] = {"description": f"{_customer_count(parent)} customers affected by {key}"}
    return parent


def _take_children(parent: dict, children: list[dict]) -> None:
    """The parent takes the children's services, resources, alarms and customers (each once)."""
    for child in children:
        for name in ("affectedService", "affectedResource", "underlyingAlarm"):
            _append(parent, name, child.get(name))
        _append(parent, "relatedParty", customers(child))
    if "affectedService" in parent:
        parent["affectedNumberOfServices"] = len(parent["affectedService"])


def _customer_count(parent: dict) -> int:
    return len({p["id"] for p in customers(parent)})


def adopt_children(children: list[dict], conversion: Conversion):
    """The change of an existing parent before more children are grouped under it (by the ProblemGroup task):
    it takes their customers, services, resources and alarms, and their priority if higher."""

    def change(parent: dict) -> None:
        if not is_open(parent):
            raise NoLongerOpen(parent["id"])
        _relate_events(parent, conversion.body.get("relatedEvent"))
        _take_children(parent, children)
        for child in children:
            if child.get("priority") is not None:
                parent["priority"] = raise_only(parent.get("priority"), child["priority"])
        cause = _characteristic(parent, GROUPED_BY)
        pattern = parent.get("impactPattern") or {}
        parent["impactPattern"] = {**pattern, "description": f"{_customer_count(parent)} customers affected by "
                                   f"{cause['value'] if cause else 'a common cause'}"}

    return change
