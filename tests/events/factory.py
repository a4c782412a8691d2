"""Stored events and hub subscriptions in the shapes of the data contract."""
from __future__ import annotations

import uuid

from tmf_server.store.database import EVENTS, SUBSCRIPTIONS

T = "2026-11-25T17:00:00.123Z"
BASE = "http://127.0.0.1:8080/tmf-api/serviceProblemManagement/v4"


def event(problem_id: str, version: int, seq: int = 0, event_type: str = "ServiceProblemStateChangeEvent", *,
          priority: int = 2, status: str = "inProgress", party: str = "C1") -> dict:
    """An event document as the producer stores it (_fanout pending)."""
    event_id = str(uuid.uuid4())
    problem = {"id": problem_id, "href": f"{BASE}/serviceProblem/{problem_id}", "priority": priority,
               "status": status, "relatedParty": [{"id": party, "role": "customer"}]}
    notification = {"eventId": event_id, "eventTime": T, "eventType": event_type, "correlationId": str(uuid.uuid4()),
                    "domain": "ServiceProblemManagement", "title": "t", "description": f"{problem_id} v{version}.{seq}",
                    "priority": str(priority), "timeOcurred": T, "event": {"serviceProblem": problem}}
    return {"_id": event_id, "eventType": event_type, "eventTime": T, "recordTime": T,
            "href": f"{BASE}/serviceProblemEventRecord/{event_id}",
            "serviceProblem": {"id": problem_id, "href": problem["href"]}, "notification": notification,
            "_problemId": problem_id, "_problemVersion": version, "_seq": seq, "_fanout": "pending"}


def subscription(callback: str, filter_: dict | None = None, *, secret: str | None = None, active: bool = True) -> dict:
    return {"_id": str(uuid.uuid4()), "callback": callback, "query": None, "_filter": filter_ or {},
            "_secret": secret, "_active": active, "createdAt": T}


def add_events(db, *events: dict) -> list[dict]:
    db[EVENTS].insert_many(list(events))
    return list(events)


def add_subscription(db, callback: str, filter_: dict | None = None, **options) -> dict:
    document = subscription(callback, filter_, **options)
    db[SUBSCRIPTIONS].insert_one(document)
    return document
