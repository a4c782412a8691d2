"""A crash between storing a notification and finishing it: the record is left `received`, and the sweeper, run
from the server's background loop, finishes it (docs/intake.md, "Store first"). Real processes, a real crash
(SIGKILL), one embedded engine shared by the two servers."""
from __future__ import annotations

import threading
import time

import pymongo
import pytest
import requests

from tests.intake.support import Intake, IntakeContract, ticket_event, unique
from tests.support.client import Api
from tests.support.polling import wait_for
from tests.support.server import ServerProcess
from tmf_server.app import load_spec
from tmf_server.events.outbox import Outbox
from tmf_server.intake.repository import IntakeRepository
from tmf_server.intake.service import MAX_TAKEOVERS, IntakeService
from tmf_server.problems.repository import ServiceProblemRepository, problem_catalog
from tmf_server.problems.rules import ServiceProblemRules
from tmf_server.problems.service import ServiceProblemService
from tmf_server.settings import Settings


@pytest.fixture()
def database(engine):
    client = pymongo.MongoClient(engine.uri)
    yield client["tmf656"]
    client.close()


def test_a_record_a_crash_left_received_is_finished_by_the_sweeper(engine, database, tmp_path, contract):
    repository = IntakeRepository(database, ServiceProblemRepository(database, Outbox(database)))
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
    repository.unlock([f"ticket:{ticket_id}"], holder)
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


def test_a_record_whose_processing_keeps_failing_is_finished_as_rejected_after_a_few_sweeps(database):
    """Not the database, a bug: here a record of a source no converter knows (no request can store one). The sweep
    gives it back after each failure and finishes it as rejected, with the error, after MAX_TAKEOVERS tries."""
    spec = load_spec()
    outbox = Outbox(database)
    problems = ServiceProblemService(ServiceProblemRepository(database, outbox),
                                     ServiceProblemRules(spec, problem_catalog(spec)), Settings())
    service = IntakeService(database, problems, Settings(intake_lease_seconds=0.001), spec)
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
