"""Issue 12: no single request, client or crash takes the server down.

Each test starts its own real server process (embedded engine) and attacks it as an outside tester would, on
loopback and in bounded loops: a catastrophic regex in a hub subscription, the engine SIGKILLed during traffic
(and unable to restart), hundreds of half-sent requests, the engine paused under creates retried with an
Idempotency-Key. Answers are TMF Errors (4xx or 503), nothing acknowledged is lost, nothing is written twice.
"""
from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import uuid
from urllib.parse import urlsplit

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from tests.api.test_database_faults import engine_pid
from tests.intake.support import IntakeContract
from tests.support.assertions import assert_tmf_error, no_subscription_written, nothing_written
from tests.support.client import Api, report
from tests.support.polling import wait_for
from tests.support.server import ServerProcess
from tests.support.wire_proxy import ReplyLosingProxy
from tmf_server.store.embedded import EmbeddedEngine

KEY = "Idempotency-Key"


def start_server(tmp_path, contract, **env) -> tuple[ServerProcess, Api]:
    process = ServerProcess(tmp_path, env={k: str(v) for k, v in env.items()}).start()
    return process, Api(process.base_url, contract)


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def events_of(api: Api, problem_id: str) -> list[dict]:
    response = api.request("GET", f"/serviceProblemEventRecord?serviceProblem.id={problem_id}&limit=1000")
    assert response.status_code == 200, response.text
    return response.json()


def assert_unavailable(response: requests.Response, *codes: str) -> None:
    error = assert_tmf_error(response, 503)
    assert int(response.headers["Retry-After"]) > 0
    assert error["code"] in codes, error


# ------------------------------------------------------------------------------------------------------------
# Hub subscriptions obey the query budget

def test_a_hub_subscription_with_a_catastrophic_regex_is_refused_at_subscribe_time(tmp_path, contract):
    process, api = start_server(tmp_path, contract, TMF_CALLBACK_ALLOW="loopback")
    try:
        with no_subscription_written(api):
            response = api.request("POST", "/hub", json={
                "callback": "http://127.0.0.1:9/listener",
                "query": "event.serviceProblem.description.regex=(a%2B)%2B$"})
            assert_tmf_error(response, 400, "query", "quantifier on a group")
        api.created(description="a" * 28 + "!")  # what made the old fan-out's query run for minutes
        assert api.list("limit=1").status_code == 200
    finally:
        process.stop()


# ------------------------------------------------------------------------------------------------------------
# Engine supervision

def test_a_killed_engine_is_restarted_and_service_resumes_with_nothing_lost(tmp_path, contract):
    process, api = start_server(tmp_path, contract, TMF_DB_TIMEOUT_MS=500, TMF_RETRY_AFTER=2)
    acknowledged: list[str] = []
    refused: list[requests.Response] = []
    stop = threading.Event()

    def traffic():
        client = Api(process.base_url, contract)
        while not stop.is_set():
            try:
                response = client.create(report(), check=False, headers={KEY: str(uuid.uuid4())})
            except requests.RequestException:
                continue
            (acknowledged.append(response.json()["id"]) if response.status_code == 201 else refused.append(response))

    try:
        first_engine = engine_pid(tmp_path)
        assert first_engine is not None
        writer = threading.Thread(target=traffic)
        writer.start()
        wait_for(lambda: len(acknowledged) >= 5, message="creates before the kill")
        os.kill(first_engine, signal.SIGKILL)
        wait_for(lambda: engine_pid(tmp_path) not in (None, first_engine), message="a new engine")
        count = len(acknowledged)
        wait_for(lambda: len(acknowledged) >= count + 5, message="creates after the restart")
        stop.set()
        writer.join(timeout=60)
        assert process.process.poll() is None, "the server stayed up"
        for response in refused:  # while the engine was away: TMF 503s with Retry-After, nothing else
            assert_unavailable(response, "serviceUnavailable", "writeOutcomeUnknown")
            api.contract.check("POST", urlsplit(response.url).path, response)
        for problem_id in acknowledged:
            assert api.get(problem_id).status_code == 200, f"acknowledged report {problem_id} lost"
        assert api.total() >= len(acknowledged)
    finally:
        stop.set()
        process.stop()


def test_the_server_exits_non_zero_when_the_engine_cannot_be_restarted(tmp_path, contract):
    process, api = start_server(tmp_path, contract, TMF_ENGINE_RESTART_DELAYS="0.5,0.5,0.5")
    # A live process that names the engine in its command line, whose pid the engine's pid file will hold: the
    # server then refuses to start a second engine on the same data (store/embedded.py), so every restart fails.
    impostor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "nx-27017"])
    try:
        api.created()
        engine = engine_pid(tmp_path)
        os.kill(engine, signal.SIGSTOP)
        (tmp_path / "engine.pid").write_text(str(impostor.pid))
        os.kill(engine, signal.SIGKILL)
        returncode = process.process.wait(timeout=120)
        assert returncode == 3, process.log()
        assert "could not be restarted" in process.log()
        assert "is already served by" in process.log()  # the data directory, by the impostor
    finally:
        impostor.kill()
        impostor.wait()
        process.stop()


# ------------------------------------------------------------------------------------------------------------
# Slow and idle clients

CREATE_PATH = "/tmf-api/serviceProblemManagement/v4/serviceProblem"
INTAKE_PATH = "/intake/troubleTicketEvent"


def half_sent_request(method: str, path: str) -> bytes:
    """The headers of a request announcing a 100,000-byte body, and its first bytes."""
    return (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: 100000\r\n\r\n{{\"category\": \"").encode()


def half_sent(port: int, count: int, method: str = "POST", path: str = CREATE_PATH) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        s.sendall(half_sent_request(method, path))
        sockets.append(s)
    return sockets


def answer_of(s: socket.socket) -> bytes:
    """Everything the server sends on a connection until it closes it."""
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def one_answer(s: socket.socket) -> bytes:
    """One answer (its head, then its Content-Length body) read from a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))
    while len(body) < length:
        body += s.recv(65536)
    return head + b"\r\n\r\n" + body


def response_of(raw: bytes) -> requests.Response:
    """A raw HTTP/1.1 answer as a requests.Response, for the contract checkers."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    response = requests.Response()
    response.status_code = int(status_line.split()[1])
    response.headers = CaseInsensitiveDict({name.strip(): value.strip()
                                            for name, value in (line.split(":", 1) for line in header_lines)})
    response._content = body
    response.encoding = "utf-8"
    return response


def test_half_sent_requests_get_408_or_503_and_others_are_served_with_memory_bounded(tmp_path, contract):
    process, api = start_server(tmp_path, contract, TMF_MAX_IN_FLIGHT=150, TMF_BODY_TIMEOUT=8)
    held: list[socket.socket] = []
    try:
        api.created()
        baseline = rss_kb(process.process.pid)
        held = half_sent(process.port, 100)
        # Any request that announces a body can time out: a GET and an intake listener too (both declare 408).
        sent = [("POST", CREATE_PATH)] * 100 + [("GET", CREATE_PATH), ("POST", INTAKE_PATH)]
        for method, path in sent[100:]:
            held += half_sent(process.port, 1, method, path)
        # Below the cap: other clients are served while the half-sent requests wait.
        assert api.list("limit=1").status_code == 200
        assert api.create(report()).status_code == 201
        # Beyond the cap (150 held): refused at once with a TMF 503, Retry-After, and the connection closed.
        extra = half_sent(process.port, 100)
        held += extra
        sent += [("POST", CREATE_PATH)] * 100
        readable, _, _ = select.select(extra, [], [], 60)  # the first refusal: the cap is reached
        assert readable, "no request beyond the cap was refused"
        assert_unavailable(api.list("limit=1"), "tooManyRequestsInFlight")
        statuses = []
        intake_contract = IntakeContract()
        for s, (method, path) in zip(held, sent):  # the admitted ones get a TMF 408 once the body deadline passes,
            response = response_of(answer_of(s))  # connection closed too; each answer as its document declares it
            (intake_contract if path == INTAKE_PATH else api.contract).check(method, path, response)
            error = assert_tmf_error(response, response.status_code)
            assert response.headers["Connection"] == "close"
            if response.status_code == 503:
                assert error["code"] == "tooManyRequestsInFlight" and int(response.headers["Retry-After"]) > 0
            statuses.append(response.status_code)
        assert set(statuses) == {408, 503}
        assert statuses.count(408) >= 102 and statuses.count(503) >= 1
        assert statuses[100:102] == [408, 408], "the half-sent GET and intake POST were admitted before the cap"
        wait_for(lambda: api.list("limit=1").status_code in (200, 206), message="service after the slow clients")
        assert api.total() == 2, "a half-sent request wrote a report"
        grown = rss_kb(process.process.pid) - baseline
        assert grown < 64 * 1024, f"RSS grew by {grown} kB and stayed there"
    finally:
        for s in held:
            s.close()
        process.stop()


def test_connections_whose_request_head_never_arrives_are_closed_and_others_are_served(tmp_path, contract):
    """A connection that sends nothing, or a request head that stops halfway (a slowloris client), is closed
    once TMF_HEADER_TIMEOUT has passed since it was opened or since its last answer; meanwhile, and after,
    other clients are served, and a kept-alive connection that sends its next request in time is answered.
    (The deadline is a lower bound only: nothing here depends on how fast the machine is.)"""
    process, api = start_server(tmp_path, contract, TMF_HEADER_TIMEOUT=2)
    stalled: list[socket.socket] = []
    try:
        for _ in range(20):
            stalled.append(socket.create_connection(("127.0.0.1", process.port), timeout=60))  # silent
            partial = socket.create_connection(("127.0.0.1", process.port), timeout=60)
            partial.sendall(f"GET {CREATE_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode())
            stalled.append(partial)
        kept = socket.create_connection(("127.0.0.1", process.port), timeout=60)
        request = f"GET {CREATE_PATH}?limit=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        for _ in range(3):  # a kept-alive connection whose next request follows its answer is served each time
            kept.sendall(request)
            assert one_answer(kept).startswith(b"HTTP/1.1 200")
        assert api.list("limit=1").status_code == 200  # served while the stalled connections wait
        for s in stalled + [kept]:  # each is closed by the server without an answer (end of stream); the
            assert answer_of(s) == b""  # kept-alive one too, once idle for the deadline after its last answer
        # Served after them, on a new connection: the client's kept-alive one was idle as long, and the server may
        # close it just as the client reuses it (a POST is not retried then).
        assert Api(process.base_url, contract).create(report()).status_code == 201
    finally:
        for s in stalled:
            s.close()
        process.stop()


# ------------------------------------------------------------------------------------------------------------
# Retries never duplicate

def test_retries_with_an_idempotency_key_after_a_paused_engine_create_each_report_once(tmp_path, contract):
    """Issue 12's row: the engine paused (SIGSTOP) under parallel 880 KB creates; some were answered 503 although
    stored. With a key, the retry answers the stored report: one report and one CreateEvent per key."""
    process, api = start_server(tmp_path, contract, TMF_DB_TIMEOUT_MS=500, TMF_RETRY_AFTER=1)
    try:
        keys = [f"pause-{i}-{uuid.uuid4()}" for i in range(4)]
        bodies = {key: report(description=f"{key} " + "x" * 880_000) for key in keys}
        engine = engine_pid(tmp_path)
        first: dict[str, requests.Response] = {}

        def create(key):
            first[key] = Api(process.base_url, contract).create(bodies[key], headers={KEY: key}, timeout=120)

        os.kill(engine, signal.SIGSTOP)
        try:
            threads = [threading.Thread(target=create, args=(key,)) for key in keys]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
        finally:
            os.kill(engine, signal.SIGCONT)
        for key in keys:
            response = first[key]
            if response.status_code != 201:
                assert_unavailable(response, "serviceUnavailable", "writeOutcomeUnknown")
        answered = {}
        for key in keys:  # the client retries as told
            retry = wait_for(lambda key=key: (r := api.create(bodies[key], headers={KEY: key})).status_code == 201
                             and r, message=f"retry of {key}")
            answered[key] = retry.json()["id"]
            if first[key].status_code == 201:
                assert first[key].json()["id"] == answered[key]
        assert api.total() == len(keys), "a retried create stored a second report"
        for key, problem_id in answered.items():
            created_events = [e for e in events_of(api, problem_id) if e["eventType"] == "ServiceProblemCreateEvent"]
            assert len(created_events) == 1, key
    finally:
        process.stop()


def test_a_create_whose_reply_was_lost_is_answered_as_unknown_and_its_retry_answers_the_stored_report(
        tmp_path, contract):
    """The database stored the report with its CreateEvent but its reply never came: the answer says the outcome
    is unknown and names the report's href; the retry with the key answers that report, stored once."""
    engine = EmbeddedEngine(tmp_path / "engine").start()
    proxy = ReplyLosingProxy(engine.port, threshold=500_000)
    process = ServerProcess(tmp_path / "server", env={"MONGODB_URI": proxy.uri, "TMF_DB_TIMEOUT_MS": "500",
                                                      "TMF_RETRY_AFTER": "1"}).start()
    api = Api(process.base_url, contract)
    try:
        key = f"lost-{uuid.uuid4()}"
        body = report(description="lost reply " + "x" * 880_000)
        proxy.arm()
        first = api.create(body, headers={KEY: key}, timeout=120)
        assert_unavailable(first, "writeOutcomeUnknown")
        assert proxy.dropped == 1
        href = re.search(r"(http\S+/serviceProblem/[0-9a-f-]{36})", first.json()["message"]).group(1)
        retry = api.create(body, headers={KEY: key})
        assert retry.status_code == 201, retry.text[:300]
        assert retry.json()["href"] == href
        assert api.total() == 1
        assert [e["eventType"] for e in events_of(api, retry.json()["id"])] == ["ServiceProblemCreateEvent"]
        # Without a key the answer still says where to look.
        proxy.arm()
        unkeyed = api.create(report(description="unkeyed " + "y" * 880_000), timeout=120)
        assert_unavailable(unkeyed, "writeOutcomeUnknown")
        href = re.search(r"(http\S+/serviceProblem/[0-9a-f-]{36})", unkeyed.json()["message"]).group(1)
        assert api.request("GET", href).status_code == 200
        assert api.total() == 2
    finally:
        process.stop()
        proxy.close()
        engine.stop(timeout=3)


def test_an_idempotency_key_answers_the_first_answer_also_after_a_restart(tmp_path, contract):
    process, api = start_server(tmp_path, contract)
    try:
        key = f"restart-{uuid.uuid4()}"
        first = api.create(report(), headers={KEY: key})
        assert first.status_code == 201
        again = api.create(report(), headers={KEY: f'"{key}"'})  # the draft's quoted form is the same key
        assert (again.status_code, again.json(), again.headers["Location"], again.headers["ETag"]) == \
            (201, first.json(), first.headers["Location"], first.headers["ETag"])
        process.stop()
        process.start()
        after = api.create(report(), headers={KEY: key})
        assert (after.status_code, after.json()) == (201, first.json())
        assert api.total() == 1
        assert len(events_of(api, first.json()["id"])) == 1
    finally:
        process.stop()


def test_an_idempotency_key_reused_with_another_body_is_422_and_writes_nothing(tmp_path, contract):
    process, api = start_server(tmp_path, contract, TMF_CALLBACK_ALLOW="loopback")
    try:
        key = f"reuse-{uuid.uuid4()}"
        assert api.create(report(), headers={KEY: key}).status_code == 201
        other = api.create(report(priority=1), headers={KEY: key})
        assert_tmf_error(other, 422, key, "another request body")
        assert api.total() == 1
        # Keys are per operation: the same key on /hub is another key.
        hub = api.request("POST", "/hub", json={"callback": "http://127.0.0.1:9/x"}, headers={KEY: key})
        assert hub.status_code == 201
        again = api.request("POST", "/hub", json={"callback": "http://127.0.0.1:9/x"}, headers={KEY: key})
        assert again.json() == hub.json()
        assert int(api.request("GET", "/hub?limit=1").headers["X-Total-Count"]) == 1
    finally:
        process.stop()


def test_a_task_with_an_idempotency_key_is_carried_out_once(tmp_path, contract):
    process, api = start_server(tmp_path, contract)
    try:
        problem = api.created()
        key = f"task-{uuid.uuid4()}"
        body = {"problem": [{"id": problem["id"]}]}
        first = api.request("POST", "/problemUnacknowledgement", json=body, headers={KEY: key})
        assert first.status_code == 201, first.text
        again = api.request("POST", "/problemUnacknowledgement", json=body, headers={KEY: key})
        assert (again.status_code, again.json()) == (201, first.json())  # not a 409: it is already pending
        assert len(events_of(api, problem["id"])) == 2  # the create and one state change
        other = api.request("POST", "/problemUnacknowledgement", json={**body, "trackingRecord": {"description": "x"}},
                            headers={KEY: key})
        assert_tmf_error(other, 422, key, "another request body")
        assert len(events_of(api, problem["id"])) == 2
        refused_key = f"refused-{uuid.uuid4()}"
        missing = {"problem": [{"id": "no-such-report"}]}
        assert_tmf_error(api.request("POST", "/problemAcknowledgement", json=missing, headers={KEY: refused_key}),
                         404)
        # A refused request wrote nothing and does not keep its key: the corrected request may use it.
        fixed = api.request("POST", "/problemAcknowledgement", json=body, headers={KEY: refused_key})
        assert fixed.status_code == 201, fixed.text
    finally:
        process.stop()


@pytest.mark.parametrize("key", ["", "with space", "x" * 256, "é", '""'])
def test_a_malformed_idempotency_key_is_400(api, key):
    with nothing_written(api):
        response = api.create(report(), headers={KEY: key.encode("utf-8")})
        assert_tmf_error(response, 400, KEY)


def test_a_malformed_idempotency_key_on_the_hub_and_a_task_is_400_and_changes_nothing(api):
    problem = api.created()
    with no_subscription_written(api):
        response = api.request("POST", "/hub", json={"callback": "http://127.0.0.1:9/x"}, headers={KEY: "a b"})
        assert_tmf_error(response, 400, KEY)
    before = events_of(api, problem["id"])
    response = api.request("POST", "/problemUnacknowledgement", json={"problem": [{"id": problem["id"]}]},
                           headers={KEY: "x" * 256})
    assert_tmf_error(response, 400, KEY)
    assert events_of(api, problem["id"]) == before and api.get(problem["id"]).json()["status"] == "acknowledged"
