"""Delivery survives a crash right after the answer, and several worker processes deliver exactly once."""
from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from tests.api.test_notifications import FAST, subscribe
from tests.support.client import Api, report
from tests.support.listener import Listener
from tests.support.polling import wait_for
from tests.support.server import ServerProcess, WorkerProcess
from tmf_server.store.embedded import free_port


def test_an_acknowledged_create_is_delivered_even_if_the_server_is_killed_right_after(tmp_path, contract):
    listener = Listener()  # not listening yet: the event cannot be delivered before the crash
    first = ServerProcess(tmp_path, env=FAST).start()
    api = Api(first.base_url, contract)
    subscribe(api, listener.url)
    response = api.create(report())
    assert response.status_code == 201
    first.kill()  # SIGKILL, right after the answer

    listener.up()
    second = ServerProcess(tmp_path, env=FAST, port=first.port).start()
    try:
        [request] = wait_for(lambda: listener.received(2))
        event = request.json
        assert event["eventType"] == "ServiceProblemCreateEvent"
        assert event["event"]["serviceProblem"] == response.json()
        records = api.request("GET", f"/serviceProblemEventRecord?serviceProblem.id={response.json()['id']}").json()
        assert [r["id"] for r in records] == [request.webhook_id]
    finally:
        second.stop()
        listener.down()


def delivered_count(api: Api, subscription_id: str) -> int:
    """How many of the subscription's deliveries are recorded delivered (the count moves while workers run, so a
    page can be a 206)."""
    root = api.base_url.split("/tmf-api")[0]
    response = api.request("GET", f"{root}/admin/delivery?subscriptionId={subscription_id}&state=delivered&limit=1",
                           check=False)
    assert response.status_code in (200, 206), response.text[:500]
    return int(response.headers["X-Total-Count"])


def test_two_worker_processes_deliver_a_burst_exactly_once_per_subscriber(tmp_path, contract):
    engine_port = free_port()
    server = ServerProcess(tmp_path / "server", env={**FAST, "TMF_DISPATCHER": "off",
                                                    "TMF_ENGINE_PORT": str(engine_port)}).start()
    workers = [WorkerProcess(tmp_path / f"worker{n}.log", f"mongodb://127.0.0.1:{engine_port}/",
                             env={**FAST}) for n in range(2)]
    listeners = [Listener().up() for _ in range(3)]
    try:
        api = Api(server.base_url, contract)
        tag = f"burst-{uuid.uuid4().hex[:8]}"
        subscriptions = [subscribe(api, listener.url, f"event.serviceProblem.category={tag}")
                         for listener in listeners]
        for worker in workers:
            worker.start()

        def create(_n):
            response = api.create(report(category=tag))
            assert response.status_code == 201, response.text
            return response.json()["id"]

        with ThreadPoolExecutor(4) as pool:
            problem_ids = set(pool.map(create, range(500)))
        assert len(problem_ids) == 500

        # Done when every delivery is recorded delivered: a delivered one is final, so no attempt can follow and
        # the counts below would show a duplicate.
        for subscription in subscriptions:
            wait_for(lambda subscription=subscription: delivered_count(api, subscription) == 500,
                     timeout=300, interval=0.5)
        event_ids = {r["id"] for r in api.request(
            "GET", "/serviceProblemEventRecord?eventType=ServiceProblemCreateEvent&limit=1000").json()
            if r["serviceProblem"]["id"] in problem_ids}
        assert len(event_ids) == 500
        for listener in listeners:
            delivered = [r.webhook_id for r in listener.received()]
            assert len(delivered) == 500, "a delivery was sent more than once"
            assert set(delivered) == event_ids
            assert all(r.status == 204 for r in listener.received())
        assert all(w.process.poll() is None for w in workers), "a worker process died"
    finally:
        for worker in workers:
            worker.stop()
        for listener in listeners:
            listener.down()
        server.stop()
