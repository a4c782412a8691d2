"""TMF656 task resources: /problemAcknowledgement, /problemUnacknowledgement, /problemGroup, /problemUngroup.

Over HTTP against the real server (every response checked against the served document). The rollback of a task
whose later write fails is in tests/storage/test_task_rollback.py (a concurrent change cannot be timed between a
task's check and its writes over HTTP).
"""
from __future__ import annotations

import uuid
from contextlib import contextmanager

import pytest

from tests.support.assertions import assert_tmf_error
from tests.support.client import Api, report

STATE_CHANGE = "ServiceProblemStateChangeEvent"
ATTRIBUTE_CHANGE = "ServiceProblemAttributeValueChangeEvent"
UNKNOWN = "no-such-problem-"  # + a uuid: an id nobody created

# The information that makes a report actionable (created `acknowledged`); without it a report is `pending`.
ACTIONABLE = [{"name": "metric", "value": "downlinkThroughput"},
              {"name": "degradationStart", "value": "2026-11-20T18:00:00Z"}]
# Allowed PATCH transitions that drive an acknowledged report into each status.
PATH_TO = {
    "acknowledged": [],
    "inProgress": ["inProgress"],
    "held": ["inProgress", "held"],
    "resolved": ["inProgress", "resolved"],
    "closed": ["inProgress", "resolved", "closed"],
    "cancelled": ["cancelled"],
    "rejected": ["rejected"],
}


# ------------------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------------------

def unknown_id() -> str:
    return UNKNOWN + str(uuid.uuid4())


def actionable(api: Api) -> dict:
    """A report with the information that makes it actionable: created acknowledged."""
    problem = api.created(characteristic=ACTIONABLE)
    assert problem["status"] == "acknowledged", problem
    return problem


def pending(api: Api) -> dict:
    """A report without a `metric` characteristic: received, not yet actionable, created pending."""
    body = report()
    body.pop("characteristic", None)
    response = api.create(body)
    assert response.status_code == 201, response.text
    problem = response.json()
    assert problem["status"] == "pending", "a report without a metric is created pending (lead's rule)"
    return problem


def in_status(api: Api, status: str) -> dict:
    problem = actionable(api)
    for step in PATH_TO[status]:
        response = api.patch(problem["id"], {"status": step})
        assert response.status_code == 200, response.text
    return read(api, problem["id"])


def read(api: Api, problem_id: str) -> dict:
    response = api.get(problem_id)
    assert response.status_code == 200, response.text
    return response.json()


def records(api: Api, problem_id: str, event_type: str | None = None) -> list[dict]:
    query = f"serviceProblem.id={problem_id}&sort=eventTime"
    if event_type:
        query += f"&eventType={event_type}"
    response = api.request("GET", f"/serviceProblemEventRecord?{query}")
    assert response.status_code == 200, response.text
    return response.json()


def ref(problem: dict) -> dict:
    return {"id": problem["id"], "href": problem["href"]}


def ids_of(refs) -> list[str]:
    return [r["id"] for r in refs or []]


def post(api: Api, task: str, body, **kwargs):
    return api.request("POST", f"/{task}", json=body, **kwargs)


def created_task(response, task: str, api: Api) -> dict:
    assert response.status_code == 201, response.text
    body = response.json()
    uuid.UUID(body["id"])
    assert body["href"] == f"{api.base_url}/{task}/{body['id']}"
    assert "Location" not in response.headers, "tasks are not stored: nothing to locate"
    return body


def snapshot(api: Api, problem_ids) -> dict:
    """Each report as GET returns it, its ETag and the ids of its event records."""
    state = {}
    for problem_id in problem_ids:
        response = api.get(problem_id)
        assert response.status_code == 200, response.text
        state[problem_id] = (response.json(), response.headers["ETag"], [r["id"] for r in records(api, problem_id)])
    return state


@contextmanager
def unchanged(api: Api, *problems: dict):
    """The reports (and their events) are exactly the same after the block."""
    ids = [p["id"] for p in problems]
    before = snapshot(api, ids)
    yield
    assert snapshot(api, ids) == before, "a refused task changed a report or emitted an event"


def acknowledged(api: Api, *problems: dict) -> dict:
    """A successful acknowledgement of the problems (the task resource)."""
    response = post(api, "problemAcknowledgement", {"problem": [{"id": p["id"]} for p in problems]})
    return created_task(response, "problemAcknowledgement", api)


def group(api: Api, parent: dict, *children: dict):
    return post(api, "problemGroup", {"parentProblem": {"id": parent["id"]},
                                      "childProblem": [{"id": c["id"]} for c in children]})


def grouped(api: Api, parent: dict, *children: dict) -> dict:
    return created_task(group(api, parent, *children), "problemGroup", api)


def ungroup(api: Api, parent: dict, *children: dict):
    return post(api, "problemUngroup", {"parentProblem": {"id": parent["id"]},
                                        "childProblem": [{"id": c["id"]} for c in children]})


# ------------------------------------------------------------------------------------------------------------
# acknowledgement
# ------------------------------------------------------------------------------------------------------------

def test_acknowledgement_moves_pending_problems_to_acknowledged(api):
    first, second = pending(api), pending(api)
    tracking = {"description": "checked by the service desk", "user": "agent 7", "@type": "TrackingRecord"}
    body = {"problem": [{"id": first["id"]}, {"id": second["id"], "href": second["href"]}],
            "trackingRecord": tracking}
    task = created_task(post(api, "problemAcknowledgement", body), "problemAcknowledgement", api)

    assert task["ackProblem"] == [ref(first), ref(second)]
    assert task["problem"] == body["problem"]
    assert task["trackingRecord"] == tracking
    assert task["@type"] == "ProblemAcknowledgement"
    for before in (first, second):
        after = read(api, before["id"])
        assert after["status"] == "acknowledged"
        assert after["statusChangeDate"] >= before["statusChangeDate"]
        assert task["id"] in after["statusChangeReason"]
        assert "checked by the service desk" in after["statusChangeReason"]
        assert after["trackingRecord"][-1]["description"] == "status changed from pending to acknowledged"
        [state] = records(api, before["id"], STATE_CHANGE)
        assert state["notification"]["event"]["serviceProblem"]["status"] == "acknowledged"


def test_the_events_of_a_task_share_its_correlation_id(api):
    first, second = pending(api), pending(api)
    correlation = f"corr-{uuid.uuid4()}"
    created_task(post(api, "problemAcknowledgement", {"problem": [{"id": first["id"]}, {"id": second["id"]}]},
                      headers={"X-Correlation-ID": correlation}), "problemAcknowledgement", api)
    for problem in (first, second):
        [state] = records(api, problem["id"], STATE_CHANGE)
        assert state["notification"]["correlationId"] == correlation
    # Without one, the task's own id ties its events together.
    third, fourth = pending(api), pending(api)
    task = acknowledged(api, third, fourth)
    for problem in (third, fourth):
        [state] = records(api, problem["id"], STATE_CHANGE)
        assert state["notification"]["correlationId"] == task["id"]


def test_acknowledging_an_acknowledged_problem_changes_nothing_and_still_reports_it(api):
    waiting, done = pending(api), actionable(api)
    with unchanged(api, done):
        task = acknowledged(api, waiting, done)
    assert task["ackProblem"] == [ref(waiting), ref(done)]
    assert read(api, waiting["id"])["status"] == "acknowledged"
    # Again: everything is acknowledged already; nothing changes, both are reported.
    with unchanged(api, waiting, done):
        again = acknowledged(api, waiting, done)
    assert again["ackProblem"] == [ref(waiting), ref(done)]


def test_a_problem_listed_twice_is_acknowledged_once(api):
    problem = pending(api)
    task = acknowledged(api, problem, problem)
    assert task["ackProblem"] == [ref(problem)]
    assert len(records(api, problem["id"], STATE_CHANGE)) == 1


@pytest.mark.parametrize("status", ["inProgress", "held", "resolved", "closed", "cancelled", "rejected"])
def test_acknowledging_a_problem_in_another_status_is_a_conflict_and_changes_nothing(api, status):
    waiting, other = pending(api), in_status(api, status)
    with unchanged(api, waiting, other):
        response = post(api, "problemAcknowledgement", {"problem": [{"id": waiting["id"]}, {"id": other["id"]}]})
        assert_tmf_error(response, 409, other["id"], status)
    assert waiting["id"] not in response.json()["message"]


# ------------------------------------------------------------------------------------------------------------
# unacknowledgement
# ------------------------------------------------------------------------------------------------------------

def test_unacknowledgement_moves_acknowledged_problems_back_to_pending(api):
    first, second = actionable(api), pending(api)
    acknowledged(api, second)
    body = {"problem": [{"id": first["id"]}, {"id": second["id"]}], "trackingRecord": {"description": "sent too early"}}
    task = created_task(post(api, "problemUnacknowledgement", body), "problemUnacknowledgement", api)

    assert task["unackProblem"] == [ref(first), ref(second)]
    assert task["problem"] == body["problem"] and task["trackingRecord"] == body["trackingRecord"]
    assert task["@type"] == "ProblemUnacknowledgement"
    for problem in (first, second):
        after = read(api, problem["id"])
        assert after["status"] == "pending"
        assert after["trackingRecord"][-1]["description"] == "status changed from acknowledged to pending"
        assert records(api, problem["id"], STATE_CHANGE)[-1]["notification"]["event"]["serviceProblem"]["status"] \
            == "pending"
    # and back again
    acknowledged(api, first)
    assert read(api, first["id"])["status"] == "acknowledged"


@pytest.mark.parametrize("status", ["pending", "inProgress", "resolved", "cancelled"])
def test_unacknowledging_a_problem_not_acknowledged_is_a_conflict_and_changes_nothing(api, status):
    done = actionable(api)
    other = pending(api) if status == "pending" else in_status(api, status)
    with unchanged(api, done, other):
        response = post(api, "problemUnacknowledgement", {"problem": [{"id": done["id"]}, {"id": other["id"]}]})
        assert_tmf_error(response, 409, other["id"], status)


# ------------------------------------------------------------------------------------------------------------
# unknown problems: 404 naming them, nothing changed
# ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["problemAcknowledgement", "problemUnacknowledgement"])
def test_an_unknown_problem_is_a_404_and_nothing_changes(api, task):
    known = pending(api) if task == "problemAcknowledgement" else actionable(api)
    missing, also_missing = unknown_id(), unknown_id()
    with unchanged(api, known):
        response = post(api, task, {"problem": [{"id": known["id"]}, {"id": missing}, {"id": also_missing}]})
        assert_tmf_error(response, 404, missing, also_missing)
    assert known["id"] not in response.json()["message"]


@pytest.mark.parametrize("where", ["child", "parent"])
def test_grouping_with_an_unknown_problem_is_a_404_and_nothing_changes(api, where):
    parent, child = actionable(api), actionable(api)
    missing = unknown_id()
    body = ({"parentProblem": {"id": parent["id"]}, "childProblem": [{"id": child["id"]}, {"id": missing}]}
            if where == "child" else {"parentProblem": {"id": missing}, "childProblem": [{"id": child["id"]}]})
    with unchanged(api, parent, child):
        assert_tmf_error(post(api, "problemGroup", body), 404, missing)


@pytest.mark.parametrize("where", ["child", "parent"])
def test_ungrouping_with_an_unknown_problem_is_a_404_and_nothing_changes(api, where):
    parent, child = actionable(api), actionable(api)
    grouped(api, parent, child)
    missing = unknown_id()
    body = ({"parentProblem": {"id": parent["id"]}, "childProblem": [{"id": child["id"]}, {"id": missing}]}
            if where == "child" else {"parentProblem": {"id": missing}, "childProblem": [{"id": child["id"]}]})
    with unchanged(api, parent, child):
        assert_tmf_error(post(api, "problemUngroup", body), 404, missing)


# ------------------------------------------------------------------------------------------------------------
# grouping
# ------------------------------------------------------------------------------------------------------------

def test_grouping_links_parent_and_children_on_both_sides(api):
    parent, first, second = actionable(api), actionable(api), pending(api)
    task = grouped(api, parent, first, second)
    assert task["parentProblem"] == {"id": parent["id"]}
    assert task["childProblem"] == [{"id": first["id"]}, {"id": second["id"]}]
    assert task["@type"] == "ProblemGroup"

    assert read(api, parent["id"])["underlyingProblem"] == [ref(first), ref(second)]
    for child in (first, second):
        after = read(api, child["id"])
        assert after["parentProblem"] == [ref(parent)]
        assert after["status"] == child["status"], "grouping does not change the status"
        [change] = records(api, child["id"], ATTRIBUTE_CHANGE)
        assert change["notification"]["fieldPath"] == "parentProblem"
        assert change["notification"]["correlationId"] == task["id"]
    [change] = records(api, parent["id"], ATTRIBUTE_CHANGE)
    assert change["notification"]["fieldPath"] == "underlyingProblem"
    assert "parentProblem" not in read(api, parent["id"])


def test_grouping_again_adds_no_duplicates(api):
    parent, first, second, third = actionable(api), actionable(api), actionable(api), actionable(api)
    grouped(api, parent, first, second)
    with unchanged(api, parent, first, second):
        grouped(api, parent, first, second)  # the same group again: nothing to change
        grouped(api, parent, second, second)  # a child listed twice
    grouped(api, parent, first, third)  # one more child; the one already there stays once
    assert ids_of(read(api, parent["id"])["underlyingProblem"]) == [first["id"], second["id"], third["id"]]
    assert read(api, third["id"])["parentProblem"] == [ref(parent)]


def test_a_child_under_another_parent_is_a_conflict_and_nothing_changes(api):
    old_parent, new_parent, child, free = actionable(api), actionable(api), actionable(api), actionable(api)
    grouped(api, old_parent, child)
    with unchanged(api, old_parent, new_parent, child, free):
        response = group(api, new_parent, free, child)
        assert_tmf_error(response, 409, child["id"], old_parent["id"])


def test_a_problem_cannot_be_grouped_under_itself(api):
    problem, other = actionable(api), actionable(api)
    with unchanged(api, problem, other):
        assert_tmf_error(group(api, problem, other, problem), 409, problem["id"])


def test_grouping_a_parent_under_its_own_child_is_a_cycle(api):
    parent, child = actionable(api), actionable(api)
    grouped(api, parent, child)
    with unchanged(api, parent, child):
        assert_tmf_error(group(api, child, parent), 409, "cycle", parent["id"])


def test_grouping_a_problem_under_its_descendant_is_a_cycle(api):
    top, middle, bottom, free = actionable(api), actionable(api), actionable(api), actionable(api)
    grouped(api, top, middle)
    grouped(api, middle, bottom)
    with unchanged(api, top, middle, bottom, free):
        assert_tmf_error(group(api, bottom, free, top), 409, "cycle", top["id"])


@pytest.mark.parametrize("status", ["closed", "cancelled", "rejected"])
@pytest.mark.parametrize("role", ["parent", "child"])
def test_a_problem_in_a_final_status_cannot_be_grouped(api, status, role):
    final, parent, child = in_status(api, status), actionable(api), actionable(api)
    with unchanged(api, final, parent, child):
        response = group(api, final, child) if role == "parent" else group(api, parent, child, final)
        assert_tmf_error(response, 409, final["id"], status)


# ------------------------------------------------------------------------------------------------------------
# ungrouping
# ------------------------------------------------------------------------------------------------------------

def test_ungrouping_removes_the_links_on_both_sides(api):
    parent, first, second = actionable(api), actionable(api), actionable(api)
    grouped(api, parent, first, second)
    task = created_task(ungroup(api, parent, first), "problemUngroup", api)
    assert task["parentProblem"] == {"id": parent["id"]} and task["childProblem"] == [{"id": first["id"]}]
    assert task["@type"] == "ProblemUngroup"
    assert "parentProblem" not in read(api, first["id"])
    assert read(api, parent["id"])["underlyingProblem"] == [ref(second)]
    assert read(api, second["id"])["parentProblem"] == [ref(parent)]

    created_task(ungroup(api, parent, second), "problemUngroup", api)
    assert "underlyingProblem" not in read(api, parent["id"])
    assert "parentProblem" not in read(api, second["id"])
    # Free again: they can be grouped elsewhere.
    grouped(api, first, second)
    assert read(api, second["id"])["parentProblem"] == [ref(first)]


def test_ungrouping_a_problem_that_is_not_a_child_is_a_conflict_and_nothing_changes(api):
    parent, child, stranger = actionable(api), actionable(api), actionable(api)
    grouped(api, parent, child)
    with unchanged(api, parent, child, stranger):
        response = ungroup(api, parent, child, stranger)
        assert_tmf_error(response, 409, stranger["id"])
    assert child["id"] not in response.json()["message"]


def test_ungrouping_from_the_wrong_parent_is_a_conflict(api):
    parent, other, child = actionable(api), actionable(api), actionable(api)
    grouped(api, parent, child)
    with unchanged(api, parent, other, child):
        assert_tmf_error(ungroup(api, other, child), 409, child["id"], other["id"])


# ------------------------------------------------------------------------------------------------------------
# bad requests
# ------------------------------------------------------------------------------------------------------------

def _status_bodies(problem_id: str) -> list:
    return [
        {},  # problem missing
        {"trackingRecord": {"description": "no problem listed"}},
        {"problem": []},
        {"problem": [{"href": "https://example.com/serviceProblem/1"}]},  # a ref without an id
        {"problem": {"id": problem_id}},  # not an array
        {"problem": [problem_id]},  # not a reference
        {"problem": [{"id": problem_id}], "colour": "red"},  # not an attribute of the task
        {"problem": [{"id": problem_id}], "id": "my-own-id"},  # set by the server
        {"problem": [{"id": problem_id}], "$where": "1"},
        {"problem": [{"id": problem_id, "a.b": 1}]},
        {"problem": [{"id": problem_id}], "trackingRecord": {"time": "yesterday"}},
    ]


@pytest.mark.parametrize("task", ["problemAcknowledgement", "problemUnacknowledgement"])
@pytest.mark.parametrize("case", range(len(_status_bodies("x"))))
def test_a_bad_acknowledgement_body_is_a_400_and_nothing_changes(api, task, case):
    problem = pending(api) if task == "problemAcknowledgement" else actionable(api)
    with unchanged(api, problem):
        assert_tmf_error(post(api, task, _status_bodies(problem["id"])[case]), 400)


@pytest.mark.parametrize("task, output", [("problemAcknowledgement", "ackProblem"),
                                          ("problemUnacknowledgement", "unackProblem")])
def test_the_output_list_is_not_accepted_in_a_request(api, task, output):
    problem = pending(api) if task == "problemAcknowledgement" else actionable(api)
    with unchanged(api, problem):
        response = post(api, task, {"problem": [{"id": problem["id"]}], output: [{"id": problem["id"]}]})
        assert_tmf_error(response, 400, output)


def _group_bodies(parent_id: str, child_id: str) -> list:
    return [
        {"childProblem": [{"id": child_id}]},  # parent missing
        {"parentProblem": {"id": parent_id}},  # children missing
        {"parentProblem": {"id": parent_id}, "childProblem": []},
        {"parentProblem": [{"id": parent_id}], "childProblem": [{"id": child_id}]},  # parent is one reference
        {"parentProblem": {"name": "no id"}, "childProblem": [{"id": child_id}]},
        {"parentProblem": {"id": parent_id}, "childProblem": [{"id": child_id}], "href": "https://example.com/x"},
        {"parentProblem": {"id": parent_id}, "childProblem": [{"id": child_id}], "problem": [{"id": child_id}]},
    ]


@pytest.mark.parametrize("task", ["problemGroup", "problemUngroup"])
@pytest.mark.parametrize("case", range(len(_group_bodies("p", "c"))))
def test_a_bad_group_body_is_a_400_and_nothing_changes(api, task, case):
    parent, child = actionable(api), actionable(api)
    if task == "problemUngroup":
        grouped(api, parent, child)
    with unchanged(api, parent, child):
        assert_tmf_error(post(api, task, _group_bodies(parent["id"], child["id"])[case]), 400)


@pytest.mark.parametrize("task", ["problemAcknowledgement", "problemUnacknowledgement", "problemGroup",
                                  "problemUngroup"])
def test_transport_errors_of_the_task_operations(api, task):
    problem = pending(api)
    with unchanged(api, problem):
        # not JSON / no media type
        assert_tmf_error(api.request("POST", f"/{task}", data=b'{"problem": []}',
                                     headers={"Content-Type": "text/plain"}), 415)
        assert_tmf_error(api.request("POST", f"/{task}", data=b"{not json",
                                     headers={"Content-Type": "application/json"}), 400)
        # over the body limit (the test server allows 64 KiB)
        big = {"problem": [{"id": problem["id"], "name": "x" * 70_000}]}
        assert_tmf_error(post(api, task, big), 413)
        # tasks are not stored: no list, no read
        listing = api.request("GET", f"/{task}")
        assert_tmf_error(listing, 405)
        assert listing.headers["Allow"] == "POST"
        assert_tmf_error(api.request("GET", f"/{task}/{uuid.uuid4()}"), 404)
