"""Which events a change of a ServiceProblem produces, and their TMF656 notification envelopes."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

DOMAIN = "ServiceProblemManagement"
CREATE = "ServiceProblemCreateEvent"
ATTRIBUTE_VALUE_CHANGE = "ServiceProblemAttributeValueChangeEvent"
STATE_CHANGE = "ServiceProblemStateChangeEvent"
INFORMATION_REQUIRED = "ServiceProblemInformationRequiredEvent"
DELETE = "ServiceProblemDeleteEvent"  # the v5 name; an extension in v4
EVENT_TYPES = (CREATE, ATTRIBUTE_VALUE_CHANGE, STATE_CHANGE, INFORMATION_REQUIRED, DELETE)

# Set by the server as a consequence of another change: never reported as an attribute change of their own.
BOOKKEEPING = frozenset({"lastUpdate", "statusChangeDate", "resolutionDate", "trackingRecord"})


@dataclass(frozen=True)
class Change:
    """When a change happened, what ties its events together (the client's correlation id, if any) and who made it
    (the token's subject; None without authentication)."""

    time: str
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    user: str | None = None


def changed_attributes(before: dict, after: dict) -> list[str]:
    """First-level attributes a client changed, in name order (status and its reason count as a state change)."""
    names = sorted((set(before) | set(after)) - BOOKKEEPING)
    changed = [n for n in names if before.get(n) != after.get(n)]
    if before.get("status") != after.get("status"):
        changed = [n for n in changed if n not in ("status", "statusChangeReason")]
    return changed


def notification(event_type: str, problem: dict, change: Change, *, title: str, description: str,
                 field_path: str | None = None) -> dict:
    event = {
        "eventId": str(uuid.uuid4()),
        "eventTime": change.time,
        "eventType": event_type,
        "correlationId": change.correlation_id,
        "domain": DOMAIN,
        "title": title,
        "description": description,
        "timeOcurred": change.time,  # the TMF656 v4 spelling
        "event": {"serviceProblem": problem},
    }
    if problem.get("priority") is not None:
        event["priority"] = str(problem["priority"])
    if field_path is not None:
        event["fieldPath"] = field_path
    return event


def events_for_change(before: dict | None, after: dict | None, change: Change,
                      missing: list[str] | tuple[str, ...] = ()) -> list[dict]:
    """The notifications for one change: before None is a create, after None a delete; a create that lacks
    information (`missing`, the paths the problems package names) also asks for it."""
    if before is None:
        events = [notification(CREATE, after, change, title="ServiceProblem created",
                               description=f"ServiceProblem {after['id']} created in status {after.get('status')}")]
        if missing:
            events.append(information_required(after, missing, change))
        return events
    if after is None:
        return [notification(DELETE, before, change, title="ServiceProblem deleted",
                             description=f"ServiceProblem {before['id']} deleted")]
    events = []
    attributes = changed_attributes(before, after)
    if attributes:
        path = ",".join(attributes)
        events.append(notification(ATTRIBUTE_VALUE_CHANGE, after, change, title="ServiceProblem changed",
                                   description=f"ServiceProblem {after['id']} changed: {path}", field_path=path))
    if before.get("status") != after.get("status"):
        reason = f" ({after['statusChangeReason']})" if after.get("statusChangeReason") else ""
        events.append(notification(STATE_CHANGE, after, change, title="ServiceProblem status changed",
                                   description=f"ServiceProblem {after['id']} changed status from "
                                               f"{before.get('status')} to {after.get('status')}{reason}"))
    return events


def information_required(problem: dict, missing: list[str], change: Change) -> dict:
    """Asks the originator for missing information (fieldPath names what is missing)."""
    path = ",".join(missing)
    return notification(INFORMATION_REQUIRED, problem, change, title="ServiceProblem needs information",
                        description=f"ServiceProblem {problem['id']} needs: {path}", field_path=path)


def event_document(event: dict, version: int, seq: int, user: str | None = None) -> dict:
    """The stored event: the ServiceProblemEventRecord, the notification to deliver, its order and fan-out state."""
    problem = event["event"]["serviceProblem"]
    records = problem["href"].rsplit("/serviceProblem/", 1)[0] + "/serviceProblemEventRecord/"
    document = {
        "_id": event["eventId"],
        "href": records + event["eventId"],
        "eventTime": event["eventTime"],
        "eventType": event["eventType"],
        "recordTime": event["eventTime"],
        "serviceProblem": {"id": problem["id"], "href": problem["href"], "@referredType": "ServiceProblem"},
        "notification": event,
        "_problemId": problem["id"],
        "_problemVersion": version,
        "_seq": seq,
        "_fanout": "pending",
    }
    if user is not None:  # who made the change (the record only: subscribers' notifications do not carry it)
        document["user"] = user
    return document
