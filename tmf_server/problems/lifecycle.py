"""The ServiceProblem status lifecycle (TMF656 R18.5 user guide): the one transition table."""
from __future__ import annotations

import uuid

from tmf_server.errors import BadRequest, Conflict

INITIAL_STATUS = "acknowledged"

TRANSITIONS: dict[str, frozenset[str]] = {
    # pending <-> acknowledged: received but not yet actionable (information missing; TMF656's "submitted").
    "acknowledged": frozenset({"inProgress", "pending", "rejected", "cancelled"}),
    "inProgress": frozenset({"held", "pending", "resolved", "cancelled"}),
    "held": frozenset({"inProgress", "cancelled"}),
    "pending": frozenset({"acknowledged", "inProgress", "cancelled"}),
    "resolved": frozenset({"closed", "acknowledged"}),  # back to acknowledged: the originator reopens it
    "rejected": frozenset(),
    "closed": frozenset(),
    "cancelled": frozenset(),
}
FINAL_STATUSES = frozenset(s for s, targets in TRANSITIONS.items() if not targets)
# An open report is one still being worked on: not final, and not resolved (a resolved report waits for its
# originator to close or reopen it). The intake appends to, clears and groups open reports only.
NOT_OPEN_STATUSES = FINAL_STATUSES | {"resolved"}


def is_open_status(status: str | None) -> bool:
    return status not in NOT_OPEN_STATUSES


def allows(current: str, target: str) -> bool:
    """Whether the lifecycle allows `current` -> `target` (the same status is no change, and allowed)."""
    return current == target or target in TRANSITIONS.get(current, ())


def check_initial(status: str | None) -> str:
    if status in (None, INITIAL_STATUS):
        return INITIAL_STATUS
    raise BadRequest(f"A ServiceProblem is created in status '{INITIAL_STATUS}', not '{status}'; "
                     f"change the status afterwards with PATCH.", code="invalidStatus")


def check_transition(current: str, target: str) -> None:
    allowed = TRANSITIONS[current]
    if target not in allowed:
        if not allowed:
            raise Conflict(f"Status '{current}' is final; the status cannot change to '{target}'.",
                           code="invalidStatusTransition")
        raise Conflict(f"Status cannot change from '{current}' to '{target}'; allowed from '{current}': "
                       f"{', '.join(sorted(allowed))}.", code="invalidStatusTransition")


def apply_status_change(document: dict, previous: str, now: str, system_id: str, reason_given: bool) -> None:
    """Records a status change already written into `document` (dates, reason, tracking record)."""
    check_transition(previous, document["status"])
    document["statusChangeDate"] = now
    if not reason_given:
        document.pop("statusChangeReason", None)  # it explained the previous change, not this one
    if document["status"] == "resolved":
        document["resolutionDate"] = now
    elif previous == "resolved" and document["status"] == "acknowledged":
        document.pop("resolutionDate", None)  # reopened: no longer resolved; the tracking record keeps it
    record = {
        "id": str(uuid.uuid4()),
        "description": f"status changed from {previous} to {document['status']}",
        "time": now,
        "systemId": system_id,
        "@type": "TrackingRecord",
    }
    if document.get("statusChangeReason"):
        record["characteristic"] = [{"name": "statusChangeReason", "value": document["statusChangeReason"]}]
    document.setdefault("trackingRecord", []).append(record)
