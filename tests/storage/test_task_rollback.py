"""A task that cannot finish writes back what it already changed (all or nothing without transactions)."""
from __future__ import annotations

import pymongo
import pytest

from tests.api.test_tasks import ACTIONABLE, STATE_CHANGE
from tests.support.client import report

# ------------------------------------------------------------------------------------------------------------
# all or nothing when a later write fails (in process: the real service on the embedded engine)
# ------------------------------------------------------------------------------------------------------------

BASE = "http://tasks.test/tmf-api/serviceProblemManagement/v4"


@pytest.fixture()
def local(engine):
    """The real ServiceProblemService and ProblemTasks on the embedded engine, and a hook into the task's writes."""
    from tmf_server.app import load_spec
    from tmf_server.settings import Settings
    from tmf_server.store.database import EVENTS
    from tmf_server.wiring import build_services

    client = pymongo.MongoClient(engine.uri)
    db = client["tasks"]
    for name in db.list_collection_names():
        db[name].delete_many({})
    built = build_services(Settings(mongodb_uri=engine.uri, database="tasks"), load_spec())  # the server's wiring
    service = built.problems

    class Local:
        def __init__(self):
            self.before_write = {}  # problem id -> a function run (once) just before the task's write to it
            self.service = service
            self.tasks = built.tasks
            self.events = db[EVENTS]
            original = service.update

            def update(problem_id, change, **kwargs):
                hook = self.before_write.pop(problem_id, None)
                if hook:
                    hook()
                return original(problem_id, change, **kwargs)

            service.update = update  # the instance only: the server under test is another process

        def create(self, *, actionable_report: bool) -> dict:
            body = report(characteristic=ACTIONABLE) if actionable_report else report()
            if not actionable_report:
                body.pop("characteristic", None)
            return service.create(body, BASE + "/serviceProblem").representation

        def read(self, problem_id: str) -> dict:
            return service.get(problem_id).representation

        def set(self, problem_id: str, **attributes) -> None:
            """Another client's change, through the same write path."""
            service.update(problem_id, lambda r: r.update(attributes))

    yield Local()
    built.close()
    client.close()


def test_a_failed_later_write_rolls_back_the_earlier_ones(local):
    from tmf_server.errors import Conflict

    first, second, third = (local.create(actionable_report=False) for _ in range(3))
    # Between the check and the write to the third report, another client moves it on.
    local.before_write[third["id"]] = lambda: local.set(third["id"], status="inProgress")
    with pytest.raises(Conflict) as refused:
        local.tasks.acknowledge({"problem": [{"id": p["id"]} for p in (first, second, third)]}, BASE)
    assert third["id"] in refused.value.message and "rolled back" in refused.value.message

    for problem in (first, second):
        after = local.read(problem["id"])
        assert after["status"] == "pending"
        assert after.get("statusChangeReason") == problem.get("statusChangeReason"), "the reason is written back"
        assert after["trackingRecord"][-1]["description"] == "status changed from acknowledged to pending"
        assert any(r["description"].startswith("rolled back: problemAcknowledgement") for r in after["trackingRecord"])
        states = [e for e in local.events.find({"_problemId": problem["id"], "eventType": STATE_CHANGE})]
        assert [e["notification"]["event"]["serviceProblem"]["status"] for e in states] == ["acknowledged", "pending"]
    assert local.read(third["id"])["status"] == "inProgress"


def test_a_failed_group_rolls_back_the_children_already_linked(local):
    from tmf_server.errors import Conflict

    parent, first, second = (local.create(actionable_report=True) for _ in range(3))
    local.before_write[parent["id"]] = lambda: local.set(parent["id"], status="cancelled")
    with pytest.raises(Conflict) as refused:
        local.tasks.group({"parentProblem": {"id": parent["id"]},
                           "childProblem": [{"id": first["id"]}, {"id": second["id"]}]}, BASE)
    assert "cancelled" in refused.value.message and "2 changes already made were rolled back" in refused.value.message
    for child in (first, second):
        assert "parentProblem" not in local.read(child["id"])
    assert "underlyingProblem" not in local.read(parent["id"])


def test_a_rollback_leaves_alone_a_problem_changed_again_meanwhile(local):
    from tmf_server.errors import Conflict

    parent, first, second = (local.create(actionable_report=True) for _ in range(3))
    other = local.create(actionable_report=True)
    other_ref = {"id": other["id"], "href": other["href"]}

    def meanwhile():
        local.set(first["id"], parentProblem=[other_ref])  # someone relinks the first child after the task did
        local.set(second["id"], status="cancelled")  # and the second can no longer be grouped

    local.before_write[second["id"]] = meanwhile
    with pytest.raises(Conflict) as refused:
        local.tasks.group({"parentProblem": {"id": parent["id"]},
                           "childProblem": [{"id": first["id"]}, {"id": second["id"]}]}, BASE)
    assert f"except on '{first['id']}'" in refused.value.message
    assert local.read(first["id"])["parentProblem"] == [other_ref], "a later change is not overwritten"


def test_a_concurrent_modification_becomes_a_409_after_the_rollback(local):
    from tmf_server.errors import Conflict, PreconditionFailed

    first, second = local.create(actionable_report=False), local.create(actionable_report=False)

    def keeps_changing():
        raise PreconditionFailed("ServiceProblem kept changing; the change was not applied. Retry.",
                                 code="concurrentModification")

    local.before_write[second["id"]] = keeps_changing
    with pytest.raises(Conflict) as refused:
        local.tasks.acknowledge({"problem": [{"id": first["id"]}, {"id": second["id"]}]}, BASE)
    assert refused.value.code == "concurrentModification"
    assert local.read(first["id"])["status"] == "pending"
