"""A crash between storing a notification and finishing it: the record is left `received`, and the sweeper, run
from the server's background loop, finishes it (docs/intake.md, "Store first"). Real processes, a real crash
(SIGKILL), one embedded engine shared by the two servers."""
from __future__ import annotations

import threading

import pymongo
import pytest
import requests

from tests.intake.support import Intake, IntakeContract, ticket_event, unique
from tests.support.client import Api
from tests.support.polling import wait_for
from tests.support.server import ServerProcess
from tmf_server.events.outbox import Outbox
from tmf_server.intake.repository import IntakeRepository
from tmf_server.problems.repository import ServiceProblemRepository


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
