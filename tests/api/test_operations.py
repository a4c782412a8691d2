"""Operating the server: health, Prometheus metrics after real traffic (one and two workers, `tmf-server worker`),
"send now" for retrying deliveries, and the logs. Real server processes, real engine, real listeners."""
from __future__ import annotations

import json
import platform
import threading
import time
import uuid

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.client import Api, report
from tests.support.polling import wait_for
from tests.support.server import ServerProcess, WorkerProcess
from tmf_server import __version__
from tmf_server.store.embedded import EmbeddedEngine, free_port

# One retry 0.2 s after a first failure, then parked; a listener's Retry-After (capped at 2 h) is honoured.
OPS = {"TMF_CALLBACK_ALLOW": "loopback", "TMF_DELIVERY_SCHEDULE": "0.2", "TMF_DISPATCH_POLL": "0.05",
       "TMF_LEASE_SECONDS": "10", "TMF_DELIVERY_TIMEOUT": "5", "TMF_MAX_RETRY_AFTER": "7200"}

TROUBLE_TICKET = {
    "eventType": "TroubleTicketCreateEvent", "eventTime": "2026-11-21T08:00:00Z",
    "event": {"troubleTicket": {
        "description": "Throughput far below the contracted rate", "severity": "Major", "ticketType": "complaint",
        "relatedParty": [{"id": "C-OPS", "role": "customer", "@referredType": "Individual"}],
        "relatedEntity": [{"id": "prod-ops", "role": "impactedProduct", "@referredType": "Product"}],
        "troubleTicketCharacteristic": [{"name": "metric", "value": "downlinkThroughput"},
                                        {"name": "degradationStart", "value": "2026-11-20T18:00:00Z"}]}}}


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a /metrics answer, parsed by Prometheus's own text parser: (name, sorted labels) -> value."""
    response = requests.get(url, timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    """One sample's value; 0 for a labelled counter not yet incremented (it has no sample until then)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def subscribe(api: Api, callback: str, query: str | None = None) -> str:
    response = api.request("POST", "/hub", json={"callback": callback, **({"query": query} if query else {})})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def admin(server: ServerProcess, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{server.root_url}/admin{path}", timeout=30, **kwargs)


def deliveries(server: ServerProcess, subscription_id: str, state: str | None = None) -> list[dict]:
    params = {"subscriptionId": subscription_id, "limit": 1000, **({"state": state} if state else {})}
    response = admin(server, "GET", "/delivery", params=params)
    # 206 too: the count is a second query, and a delivery may change state between the two.
    assert response.status_code in (200, 206), response.text
    return response.json()


@pytest.fixture(scope="module")
def ops_server(tmp_path_factory, contract):
    process = ServerProcess(tmp_path_factory.mktemp("ops"), env=OPS).start()
    yield process, Api(process.base_url, contract)
    process.stop()


# -- health ----------------------------------------------------------------------------------------------


def test_health_live_and_ready_with_the_version_outside_the_api(server):
    for path in ("/health/live", "/health/ready"):
        response = requests.get(server.root_url + path, timeout=30)
        assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
        assert response.json() == {"status": "up", "version": __version__}
    refused = requests.post(server.root_url + "/health/live", timeout=30)
    assert refused.status_code == 405 and refused.headers["Allow"] == "GET"
    assert refused.json()["code"] == "methodNotAllowed" and refused.json()["@type"] == "Error"
    # Not part of any OpenAPI document (they need no credentials whatever the documents require).
    for document in ("/tmf-api/serviceProblemManagement/v4/openapi.json", "/admin/openapi.json",
                     "/intake/openapi.json"):
        paths = requests.get(server.root_url + document, timeout=30).json()["paths"]
        assert not any(p.startswith(("/health", "/metrics")) for p in paths)


def test_readiness_names_the_unreachable_database_and_recovers(tmp_path):
    engine = EmbeddedEngine(tmp_path / "engine").start()
    process = ServerProcess(tmp_path / "server", env={"MONGODB_URI": engine.uri, "TMF_DB_TIMEOUT_MS": "500"}).start()
    try:
        engine.stop(timeout=3)
        not_ready = requests.get(process.root_url + "/health/ready", timeout=30)
        assert not_ready.status_code == 503
        body = not_ready.json()
        assert body["status"] == "down" and body["version"] == __version__ and set(body["problems"]) == {"database"}
        assert requests.get(process.root_url + "/health/live", timeout=30).status_code == 200
        assert value(scrape(process.root_url + "/metrics"), "tmf_database_up") == 0
        answered = requests.get(process.base_url + "/serviceProblem", timeout=30)
        assert answered.status_code == 503
        samples = scrape(process.root_url + "/metrics")
        assert value(samples, "tmf_database_errors_total", component="api") >= 1
        assert value(samples, "tmf_http_requests_total", operation="listServiceProblem", method="GET",
                     status="503") == 1
        engine = EmbeddedEngine(tmp_path / "engine", port=engine.port).start()
        wait_for(lambda: requests.get(process.root_url + "/health/ready", timeout=30).status_code == 200,
                 message="ready again")
    finally:
        process.stop()
        engine.stop(timeout=3)


# -- metrics after real traffic --------------------------------------------------------------------------


def test_metrics_follow_requests_events_deliveries_and_intake(ops_server, listener_factory):
    server, api = ops_server
    tag = f"ops-{uuid.uuid4().hex[:8]}"
    before, started = scrape(server.root_url + "/metrics"), time.monotonic()
    good, failing = listener_factory(), listener_factory(lambda _request, _seen: (500, {}))
    good_id = subscribe(api, good.url, f"event.serviceProblem.category={tag}")
    failing_id = subscribe(api, failing.url, f"eventType=ServiceProblemCreateEvent&event.serviceProblem.category={tag}")

    first = api.created(category=tag)
    api.created(category=tag)  # the second create: its event goes to both listeners too
    assert api.patch(first["id"], {"priority": 1}).status_code == 200
    assert api.get(str(uuid.uuid4())).status_code == 404
    assert api.create({"category": tag}).status_code == 400
    ticket = {**TROUBLE_TICKET, "eventId": f"tt-{tag}"}
    ticket["event"] = {"troubleTicket": {**TROUBLE_TICKET["event"]["troubleTicket"], "id": f"TT-{tag}"}}
    intake = f"{server.root_url}/intake/troubleTicketEvent"
    assert requests.post(intake, json=ticket, timeout=30).json()["outcome"] == "created"
    assert requests.post(intake, json=ticket, timeout=30).json()["outcome"] == "duplicate"

    # 2 creates and 1 patch of this tag: 3 deliveries to `good`; 2 creates to `failing`, each tried twice, parked.
    wait_for(lambda: len(good.delivered_ids()) == 3, message="deliveries to the good listener")
    wait_for(lambda: len(deliveries(server, failing_id, "parked")) == 2, message="parked deliveries")
    after = scrape(server.root_url + "/metrics")

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("tmf_http_requests_total", operation="createServiceProblem", method="POST", status="201") == 2
    assert moved("tmf_http_requests_total", operation="createServiceProblem", method="POST", status="400") == 1
    assert moved("tmf_http_requests_total", operation="patchServiceProblem", method="PATCH", status="200") == 1
    assert moved("tmf_http_requests_total", operation="retrieveServiceProblem", method="GET", status="404") == 1
    assert moved("tmf_http_requests_total", operation="registerListener", method="POST", status="201") == 2
    assert moved("tmf_http_request_duration_seconds_count", operation="createServiceProblem") == 3
    assert moved("tmf_events_published_total", event_type="ServiceProblemCreateEvent") == 3  # the intake's too
    assert moved("tmf_events_published_total", event_type="ServiceProblemAttributeValueChangeEvent") == 1
    assert moved("tmf_intake_events_total", source="troubleTicket", outcome="created") == 1
    assert moved("tmf_intake_events_total", source="troubleTicket", outcome="duplicate") == 1
    assert moved("tmf_deliveries_total", outcome="delivered") == 3
    assert moved("tmf_deliveries_total", outcome="retrying") == 2 and moved("tmf_deliveries_total", outcome="parked") == 2
    assert moved("tmf_delivery_attempt_duration_seconds_count", outcome="delivered") == 3
    # From each change to its listener's 2xx: three deliveries, none later than the test's own time.
    assert moved("tmf_delivery_lag_seconds_count") == 3
    assert 0 < moved("tmf_delivery_lag_seconds_sum") <= 3 * (time.monotonic() - started)
    assert moved("tmf_deliveries_in_state", state="parked") == 2
    assert moved("tmf_subscriptions", state="active") == 2
    assert value(after, "tmf_database_up") == 1
    wait_for(lambda: value(scrape(server.root_url + "/metrics"), "tmf_outbox_pending") == 0, message="outbox empty")
    assert value(after, "tmf_server_info", version=__version__, python=platform.python_version()) == 1
    assert good_id != failing_id


def test_send_now_a_retrying_delivery_and_all_of_a_subscription(ops_server, listener_factory):
    server, api = ops_server
    tag = f"now-{uuid.uuid4().hex[:8]}"
    failing = threading.Event()  # while set, the listener refuses with Retry-After: 2 hours
    failing.set()
    listener = listener_factory(lambda _request, _seen: (503, {"Retry-After": "7200"}) if failing.is_set() else (204, {}))
    subscription = subscribe(api, listener.url, f"eventType=ServiceProblemCreateEvent&event.serviceProblem.category={tag}")
    ids = [api.created(category=tag)["id"] for _ in range(2)]
    # The first attempt fails: that delivery waits 2 hours, and the dispatcher rests on the listener meanwhile.
    one = wait_for(lambda: deliveries(server, subscription, "retrying"), message="a retrying delivery")[0]
    assert value(scrape(server.root_url + "/metrics"), "tmf_deliveries_in_state", state="retrying") >= 1

    failing.clear()  # the listener is back
    sent = admin(server, "POST", f"/delivery/{one['id']}/send-now")
    assert sent.status_code == 200, sent.text
    assert sent.json()["state"] == "retrying" and sent.json()["nextAttemptAt"] < one["nextAttemptAt"]
    assert sent.json()["attemptCount"] == one["attemptCount"] == 1  # its schedule goes on from its failure
    wait_for(lambda: len(deliveries(server, subscription, "delivered")) == 2, message="both delivered")

    delivered = admin(server, "GET", f"/delivery/{one['id']}").json()
    refused = admin(server, "POST", f"/delivery/{one['id']}/send-now")  # delivered: nothing to send now
    assert refused.status_code == 409 and refused.json()["code"] == "deliveryNotRetrying"
    assert refused.json()["@type"] == "Error" and refused.json()["status"] == "409"
    assert admin(server, "GET", f"/delivery/{one['id']}").json() == delivered  # nothing written
    unknown = admin(server, "POST", "/delivery/nothing:here/send-now")
    assert unknown.status_code == 404 and unknown.json()["code"] == "notFound"
    missing = admin(server, "POST", "/delivery/send-now")
    assert missing.status_code == 400 and missing.json()["@type"] == "Error"

    # Every retrying delivery of the subscription at once
    failing.set()
    ids += [api.created(category=tag)["id"] for _ in range(2)]
    wait_for(lambda: deliveries(server, subscription, "retrying"), message="retrying again")
    failing.clear()
    everything = admin(server, "POST", "/delivery/send-now", params={"subscriptionId": subscription})
    assert everything.status_code == 200 and everything.json()["subscriptionId"] == subscription
    assert everything.json()["due"] >= 1
    wait_for(lambda: len(deliveries(server, subscription, "delivered")) == 4, message="all four delivered")
    assert sorted(r.json["event"]["serviceProblem"]["id"] for r in listener.received(2)) == sorted(ids)
    again = admin(server, "POST", "/delivery/send-now", params={"subscriptionId": subscription})
    assert again.json() == {"subscriptionId": subscription, "due": 0}


def test_metrics_of_two_workers_add_up(tmp_path, contract):
    process = ServerProcess(tmp_path, env={"TMF_WORKERS": "2"}).start()
    try:
        api = Api(process.base_url, contract)
        wait_for(lambda: process.log().count("Started server process") == 2, message="both workers")
        for _ in range(12):  # a fresh connection each: the workers share the requests
            assert api.create(report(), headers={"Connection": "close"}).status_code == 201
        url = process.root_url + "/metrics"
        published = ("tmf_events_published_total", (("event_type", "ServiceProblemCreateEvent"),))
        wait_for(lambda: scrape(url).get(published) == 12, message="the events published (after the answers)")
        for _ in range(6):  # whichever worker answers the scrape, it reports both workers' counts
            samples = scrape(process.root_url + "/metrics")
            assert value(samples, "tmf_http_requests_total", operation="createServiceProblem", method="POST",
                         status="201") == 12
            assert value(samples, "tmf_events_published_total", event_type="ServiceProblemCreateEvent") == 12
        pids = {line.split("[")[1].split("]")[0] for line in process.log().splitlines()
                if "Started server process" in line}
        assert len(pids) == 2
    finally:
        process.stop()


def test_worker_serves_its_metrics_port(tmp_path, contract, listener_factory):
    engine_port = free_port()
    process = ServerProcess(tmp_path / "server", env={**OPS, "TMF_DISPATCHER": "off",
                                                      "TMF_ENGINE_PORT": str(engine_port)}).start()
    metrics_port = free_port()
    worker = WorkerProcess(tmp_path / "worker.log", f"mongodb://127.0.0.1:{engine_port}/", processes=2,
                           env=OPS, arguments=["--metrics-port", str(metrics_port)]).start()
    try:
        api = Api(process.base_url, contract)
        listener = listener_factory()
        subscribe(api, listener.url, "eventType=ServiceProblemCreateEvent")
        for _ in range(4):
            api.created()
        wait_for(lambda: len(listener.delivered_ids()) == 4, message="deliveries by the worker processes")
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        samples = wait_for(lambda: requests.get(url, timeout=30).ok and scrape(url), message="worker metrics")
        assert value(samples, "tmf_deliveries_total", outcome="delivered") == 4
        assert value(samples, "tmf_subscriptions", state="active") == 1
        assert value(samples, "tmf_deliveries_in_state", state="parked") == 0
        served = scrape(process.root_url + "/metrics")  # the server delivers nothing itself
        assert value(served, "tmf_deliveries_total", outcome="delivered") == 0
    finally:
        worker.stop()
        process.stop()


# -- logs ------------------------------------------------------------------------------------------------


def test_json_logs_one_access_line_per_request_and_no_connexion_warnings(tmp_path, contract):
    process = ServerProcess(tmp_path, env={"TMF_LOG_FORMAT": "json"}).start()
    try:
        api = Api(process.base_url, contract)
        created = api.created()
        patched = api.patch(created["id"], {"priority": 1}, headers={"X-Correlation-ID": "corr-ops-1"})
        assert patched.status_code == 200
        assert api.patch(created["id"], [{"op": "replace", "path": "/priority", "value": 2}],
                         "application/json-patch+json").status_code == 200

        def entries() -> list[dict]:
            return [json.loads(line) for line in process.log().splitlines() if line.startswith("{")]

        patches = wait_for(lambda: (found := [e for e in entries() if e.get("method") == "PATCH"]) and
                           len(found) == 2 and found, message="two PATCH access lines")
        assert all({"time", "level", "logger", "message"} <= set(e) for e in entries())
        first = patches[0]
        assert first["method"] == "PATCH" and first["path"] == f"/tmf-api/serviceProblemManagement/v4/serviceProblem/{created['id']}"
        assert first["status"] == 200 and first["correlationId"] == "corr-ops-1" and first["durationMs"] >= 0
        assert first["client"].startswith("127.0.0.1:") and first["time"].endswith("Z")
        assert "accepts multiple content types" not in process.log()
        assert not any(e["logger"].startswith("uvicorn.access") for e in entries())  # ours is the only access log
    finally:
        process.stop()


def test_log_level_warning_drops_access_lines(tmp_path, contract):
    process = ServerProcess(tmp_path, env={"TMF_LOG_LEVEL": "warning"}).start()
    try:
        assert Api(process.base_url, contract).create().status_code == 201
        assert requests.get(process.root_url + "/health/live", timeout=30).status_code == 200
        process.stop()
        assert "tmf_server.access" not in process.log() and " INFO " not in process.log()
    finally:
        process.stop()
