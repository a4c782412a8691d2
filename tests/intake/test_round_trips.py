"""What a notification costs in database round trips (docs/performance.md, the intake): counted with pymongo's
command monitoring on the real embedded engine, through the server's own intake, problem and event classes wired
as a server with a dispatcher wires them (a write wakes the dispatcher; nothing is published in the request)."""
from __future__ import annotations

import pymongo
import pytest
from pymongo import monitoring

from tests.intake.support import ticket_event, unique
from tmf_server.app import load_spec
from tmf_server.events.outbox import Outbox
from tmf_server.intake.repository import ensure_indexes as ensure_intake_indexes
from tmf_server.intake.service import IntakeService
from tmf_server.problems.repository import ServiceProblemRepository, ensure_indexes, problem_catalog
from tmf_server.problems.rules import ServiceProblemRules
from tmf_server.problems.service import ServiceProblemService
from tmf_server.settings import Settings


class Commands(monitoring.CommandListener):
    """The commands one client sends: (command name, collection)."""

    def __init__(self):
        self.sent: list[tuple[str, str]] = []

    def started(self, event):
        self.sent.append((event.command_name, event.command.get(event.command_name)))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


@pytest.fixture()
def counted(engine):
    commands = Commands()
    client = pymongo.MongoClient(engine.uri, event_listeners=[commands])
    db = client["round_trips"]
    ensure_indexes(db)
    ensure_intake_indexes(db)
    spec, settings = load_spec(), Settings(mongodb_uri=engine.uri)
    woken = []
    repository = ServiceProblemRepository(db, Outbox(db, publisher=lambda _document: woken.append(1)))
    problems = ServiceProblemService(repository, ServiceProblemRules(spec, problem_catalog(spec)), settings)
    yield IntakeService(db, problems, settings, spec), commands, woken
    client.close()


def receive(intake: IntakeService, event: dict) -> dict:
    record, _status = intake.receive("troubleTicket", event, api_base="http://tmf.test/api",
                                     record_base="http://tmf.test/intake/record")
    return record


def test_a_ticket_notification_costs_eight_round_trips_whether_it_opens_a_report_or_is_appended_to_one(counted):
    intake, commands, woken = counted
    customer, product = unique("C"), unique("P")
    commands.sent.clear()
    assert receive(intake, ticket_event(customer_id=customer, product_id=product))["outcome"] == "created"
    # the record stored with its locks; the ticket's lookup (the reports whose only or first ticket it is, two
    # equalities on one index, and the ticket's document beside the records), the customer's (the union of two index-served searches); the report;
    # the record finished with its locks released
    assert commands.sent == [("update", "intakeEvent"), *[("find", "serviceProblem")] * 2, ("find", "intakeEvent"),
                             *[("find", "serviceProblem")] * 2, ("insert", "serviceProblem"), ("update", "intakeEvent")]
    commands.sent.clear()
    assert receive(intake, ticket_event(customer_id=customer, product_id=product))["outcome"] == "merged"
    # the same, with the open report written against the version its lookup read (no second read)
    assert commands.sent == [("update", "intakeEvent"), *[("find", "serviceProblem")] * 2, ("find", "intakeEvent"),
                             *[("find", "serviceProblem")] * 2, ("update", "serviceProblem"), ("update", "intakeEvent")]
    assert len(woken) == 2  # each write handed its events to the dispatcher


def test_a_redelivery_takes_no_lock_and_looks_nothing_up(counted):
    intake, commands, _woken = counted
    event = ticket_event(customer_id=unique("C"), product_id=unique("P"))
    receive(intake, event)
    commands.sent.clear()
    assert receive(intake, event)["outcome"] == "duplicate"
    # the store (refused at the record, before its locks), the stored record read, its duplicate count raised
    assert commands.sent == [("update", "intakeEvent"), ("find", "intakeEvent"), ("findAndModify", "intakeEvent")]


def test_a_ticket_appended_to_a_report_is_found_without_reading_the_reports_that_name_several_tickets(counted):
    intake, commands, _woken = counted
    customer, product = unique("C"), unique("P")
    first_ticket, second_ticket = unique("TT"), unique("TT")
    first = receive(intake, ticket_event(customer_id=customer, product_id=product, ticket_id=first_ticket))
    # a report is found by its first ticket: no ticket document is written for it
    assert intake.repository.events.find_one({"_id": f"~ticket:{first_ticket}"}) is None
    assert receive(intake, ticket_event(customer_id=customer, product_id=product,
                                        ticket_id=second_ticket))["outcome"] == "merged"  # by the customer
    # appended beside the first ticket: the ticket's document names the report (written with the record's outcome)
    assert intake.repository.events.find_one({"_id": f"~ticket:{second_ticket}"})["_report"] == \
        first["serviceProblem"]["id"]
    commands.sent.clear()
    change = ticket_event(customer_id=None, product_id=None, ticket_id=second_ticket, characteristics=[],
                          event_type="TroubleTicketAttributeValueChangeEvent")
    record = receive(intake, change)
    assert record["outcome"] == "merged" and record["serviceProblem"]["id"] == first["serviceProblem"]["id"]
    # the report whose first ticket it is (none), the ticket's document, then its report read by id: no search
    # of the reports flagged with several tickets
    finds = [c for c in commands.sent if c[0] == "find"]
    assert finds == [*[("find", "serviceProblem")] * 2, ("find", "intakeEvent"), ("find", "serviceProblem")]
