"""Many notifications correlated into one open report (docs/intake.md, "What a report keeps"), over HTTP against a
real server: the report keeps the first and the 50 most recent related events and intake tracking records, says how
many events it has taken, keeps every ticket it names (a later event of the first ticket still finds it), and its
events still say what changed; the full history stays in the intake records."""
from __future__ import annotations

import json

from tests.intake.support import ticket_event, unique

RECENT = 50  # docs/intake.md: the first and the 50 most recent
TICKETS = 10
NOTIFICATIONS = 150  # 10 tickets opened, then change events of them: 2.5 times what a report keeps, and more


def get_problem(tmf, problem_id: str) -> dict:
    response = tmf.get(problem_id)
    assert response.status_code == 200, response.text
    return response.json()


def count_of(problem: dict):
    values = [c["value"] for c in problem.get("characteristic", []) if c["name"] == "relatedEventCount"]
    assert len(values) <= 1, problem["characteristic"]
    return values[0] if values else None


def intake_tracking(problem: dict) -> list[str]:
    return [t["description"] for t in problem.get("trackingRecord", []) if t["description"].startswith("intake: ")]


def test_a_storm_correlated_into_one_report_keeps_it_bounded_counted_and_findable_by_every_ticket(intake, tmf):
    customer_id, product_id = unique("C"), unique("P")
    tickets = [unique("TT") for _ in range(TICKETS)]
    events = [ticket_event(customer_id=customer_id, product_id=product_id, ticket_id=tickets[i % TICKETS],
                           event_type="TroubleTicketCreateEvent" if i < TICKETS
                           else "TroubleTicketAttributeValueChangeEvent")
              for i in range(NOTIFICATIONS)]

    first = intake.post("troubleTicketEvent", events[0])
    assert first.status_code == 201, first.text
    problem_id = first.json()["serviceProblem"]["id"]
    # a client's change (a PATCH taking the report in progress) has its tracking record: never dropped by the bound
    patched = tmf.patch(problem_id, {"status": "inProgress"})
    assert patched.status_code == 200, patched.text
    by_client = [t for t in patched.json()["trackingRecord"] if not t["description"].startswith("intake: ")]
    assert by_client and by_client[-1]["description"] == "status changed from acknowledged to inProgress"

    sizes = {}
    for i, event in enumerate(events[1:], start=1):
        answer = intake.post("troubleTicketEvent", event)
        assert answer.status_code == 200, answer.text
        assert answer.json()["outcome"] == "merged" and answer.json()["serviceProblem"]["id"] == problem_id, \
            answer.json()
        if i + 1 in (2 * RECENT, NOTIFICATIONS):
            sizes[i + 1] = len(json.dumps(get_problem(tmf, problem_id)))

    problem = get_problem(tmf, problem_id)
    ids = [e["id"] for e in problem["relatedEvent"]]
    assert ids == [events[0]["eventId"]] + [e["eventId"] for e in events[-RECENT:]]  # the first, the most recent
    assert count_of(problem) == NOTIFICATIONS
    appended = intake_tracking(problem)
    assert len(appended) == 1 + RECENT
    assert appended[0].endswith(f"{events[1]['eventId']} (troubleTicket)")  # the first append, then the most recent
    assert [a.split()[3] for a in appended[1:]] == [e["eventId"] for e in events[-RECENT:]]
    assert all(record in problem["trackingRecord"] for record in by_client)
    assert sorted(t["id"] for t in problem["troubleTicket"]) == sorted(tickets)  # every ticket kept
    # bounded: from 100 to 150 notifications the report grew by the digits of its count at most, where each
    # notification used to add its event and tracking record (about 0.5 KB)
    assert abs(sizes[NOTIFICATIONS] - sizes[2 * RECENT]) < 64, sizes

    # nothing is lost: every notification is a stored intake record of the report, readable through the intake API
    assert intake.total(f"serviceProblemId={problem_id}") == NOTIFICATIONS
    dropped = events[RECENT]["eventId"]
    record = intake.request("GET", f"/record/troubleTicket:{dropped}")
    assert record.status_code == 200 and record.json()["payload"]["eventId"] == dropped

    # a later event of the FIRST ticket (its events long out of the report's list) still finds the report
    later = ticket_event(customer_id=customer_id, product_id=product_id, ticket_id=tickets[0], severity="Critical",
                         event_type="TroubleTicketAttributeValueChangeEvent")
    answer = intake.post("troubleTicketEvent", later)
    assert answer.status_code == 200 and answer.json()["outcome"] == "merged", answer.text
    assert answer.json()["serviceProblem"]["id"] == problem_id
    problem = get_problem(tmf, problem_id)
    assert problem["relatedEvent"][-1]["id"] == later["eventId"] and len(problem["relatedEvent"]) == 1 + RECENT
    assert count_of(problem) == NOTIFICATIONS + 1

    # the event of that append says what changed, the bounded lists and the count among them
    changes = tmf.request("GET", f"/serviceProblemEventRecord?serviceProblem.id={problem_id}"
                                 f"&eventType=ServiceProblemAttributeValueChangeEvent&limit=1000").json()
    assert len(changes) == NOTIFICATIONS  # every append (the PATCH's is a state change event)
    last = next(c for c in changes if c["notification"]["event"]["serviceProblem"].get("relatedEvent", [{}])[-1]
                .get("id") == later["eventId"])
    changed = last["notification"]["fieldPath"].split(",")
    assert {"relatedEvent", "characteristic", "priority"} <= set(changed), changed

    # a redelivery of the last event changes nothing (the count included)
    again = intake.post("troubleTicketEvent", later)
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    assert count_of(get_problem(tmf, problem_id)) == NOTIFICATIONS + 1
