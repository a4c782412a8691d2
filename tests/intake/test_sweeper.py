"""A crash between storing a notification and finishing it: the record is left `received`, and the sweeper, run
from the server's background loop, finishes it (docs/intake.md, "Store first"). Real processes, a real crash
(SIGKILL), one embedded engine shared by the two servers."""
from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.intake.support import Intake, IntakeContract, ticket_event, unique
from tests.support.client import Api
from tests.support.polling import wait_for
from tests.support.server import ServerProcess, WorkerProcess
from tmf_server.app import load_spec
from tmf_server.intake.service import MAX_TAKEOVERS
from tmf_server.settings import Settings
from tmf_server.wiring import build_services


@pytest.fixture()
def intake_repository(engine):
    """The intake's repository as the servers under test build it (tmf_server/wiring.py), on their database."""
    services = build_services(Settings(mongodb_uri=engine.uri), load_spec())
    yield services.intake.repository
    services.close()


def test_a_record_a_crash_left_received_is_finished_by_the_sweeper(engine, intake_repository, tmp_path, contract):
    repository = intake_repository
    customer_id, product_id, ticket_id = unique("C"), unique("P"), unique("TT")
    event = ticket_event(customer_id=customer_id, product_id=product_id, ticket_id=ticket_id)
    record_id = f"troubleTicket:{event['eventId']}"
    common = {"MONGODB_URI": engine.uri, "TMF_INTAKE_LEASE": "1"}

    # The first server stores the notification, then waits for the ticket's lock, which this test holds: it is
    # killed there, between store and finish, as a crash would.
    holder = repository.lock([f"ticket:{ticket_id}"], lease_ms=120_000, wait_seconds=1)
    assert holder is not None
    first = ServerProcess(tmp_path / "first", env={**common, "TMF_INTAKE_SWEEP": "3600"}).start()
    sent = threading.Thread(target=lambda: _post_ignoring_the_crash(first.root_url, event), daemon=True)
    sent.start()
    try:
        wait_for(lambda: (repository.get(record_id) or {}).get("outcome") == "received",
                 message="the notification stored, its processing waiting")
    finally:
        first.kill()
    sent.join(30)
    repository.unlock(holder)
    left = repository.get(record_id)
    assert left["outcome"] == "received" and "completedAt" not in left
    assert repository.open_report_of_ticket(ticket_id) is None  # killed before the report was written

    # A second server (no redelivery comes) finishes it from its background loop once the lease has run out.
    second = ServerProcess(tmp_path / "second", env={**common, "TMF_INTAKE_SWEEP": "0.2"}).start()
    try:
        intake, tmf = Intake(second.root_url, IntakeContract()), Api(second.base_url, contract)
        finished = wait_for(lambda: _finished(intake, record_id), message="the record finished by the sweeper")
        assert finished["outcome"] == "created" and finished["payload"] == event
        problem = tmf.get(finished["serviceProblem"]["id"]).json()
        assert problem["troubleTicket"][0]["id"] == ticket_id and problem["status"] == "acknowledged"
        assert [e["href"] for e in problem["relatedEvent"]] == [finished["href"].replace(second.root_url,
                                                                                         first.root_url)]
        assert tmf.total(f"relatedParty.id={customer_id}") == 1
        # A redelivery now is a duplicate: nothing is done again.
        again = intake.post("troubleTicketEvent", event).json()
        assert again["outcome"] == "duplicate" and again["serviceProblem"] == finished["serviceProblem"]
    finally:
        second.stop()


def _post_ignoring_the_crash(root_url: str, event: dict) -> None:
    try:
        requests.post(root_url + "/intake/troubleTicketEvent", json=event, timeout=30)
    except requests.RequestException:
        pass  # the server was killed while processing it


def _finished(intake: Intake, record_id: str) -> dict | None:
    record = intake.request("GET", f"/record/{record_id}").json()
    return record if record["outcome"] != "received" else None


@pytest.fixture()
def intake_service(engine):
    """The server's IntakeService, built by the server's wiring, with a 1 ms lease."""
    services = build_services(Settings(mongodb_uri=engine.uri, intake_lease_seconds=0.001), load_spec())
    yield services.intake
    services.close()


def test_a_record_whose_processing_keeps_failing_is_finished_as_rejected_after_a_few_sweeps(intake_service):
    """Not the database, a bug: here a record of a source no converter knows (no request can store one). The sweep
    gives it back after each failure and finishes it as rejected, with the error, after MAX_TAKEOVERS tries."""
    service = intake_service
    event_id = unique("poison")
    service.repository.store({"_id": f"nosuch:{event_id}", "source": "nosuch", "sourceEventId": event_id,
                              "eventType": "X", "receivedAt": "2026-11-21T09:00:00.000Z", "payload": {},
                              "_apiBase": "http://x", "_recordBase": "http://x/intake/record",
                              "_correlationId": event_id}, lease_ms=0)
    for attempt in range(1, MAX_TAKEOVERS + 1):
        time.sleep(0.01)  # the lease (1 ms) runs out
        service.sweep()
        stored = service.get(f"nosuch:{event_id}")
        assert stored["outcome"] == ("rejected" if attempt == MAX_TAKEOVERS else "received"), attempt
    assert stored["reason"].startswith(f"processing failed {MAX_TAKEOVERS} times, the last: ")
    assert "_token" not in stored and "_takeovers" not in stored


def test_a_tmf_server_worker_finishes_a_record_left_received(engine, intake_service, tmp_path):
    """`tmf-server worker` runs the same sweep as the server's background loop (docs/intake.md, "Limits"): a
    record stored and never completed (here: admitted, as a request does before it would complete it) is finished
    by a worker process, with no server running and no redelivery."""
    customer_id, product_id, ticket_id = unique("C"), unique("P"), unique("TT")
    event = ticket_event(customer_id=customer_id, product_id=product_id, ticket_id=ticket_id)
    admitted = intake_service.admit("troubleTicket", event, api_base="http://tmf.test/api",
                                    record_base="http://tmf.test/intake/record")
    stored = admitted.stored
    assert admitted.state == "new" and stored["outcome"] == "received"
    worker = WorkerProcess(tmp_path / "worker.log", engine.uri, env={"TMF_INTAKE_SWEEP": "0.2"}).start()
    try:
        finished = wait_for(lambda: _stored_and_finished(intake_service, stored["_id"]),
                            message="the record finished by the worker's sweep")
    finally:
        worker.stop()
    assert finished["outcome"] == "created" and finished["payload"] == event
    problem = intake_service.problems.get(finished["serviceProblem"]["id"]).representation
    assert problem["troubleTicket"][0]["id"] == ticket_id
    assert intake_service.repository.open_report_of_ticket(ticket_id) is not None


def _stored_and_finished(service, record_id: str) -> dict | None:
    stored = service.repository.get(record_id)
    return stored if stored["outcome"] != "received" else None
