"""Intake of QoS degradation notifications (eTOM 1.3.8.4): read, store first, then convert, and create, append to,
clear, finish or group ServiceProblems, every write through ServiceProblemService (so its events are emitted by
the one path). A record a crash left `received` is finished by `sweep`, which the server's background loop calls.
docs/intake.md describes the behaviour.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import quote

from pymongo.errors import PyMongoError

from tmf_server.bodies import check_keys
from tmf_server.errors import ApiError, BadRequest, Conflict, NotFound
from tmf_server.intake import schemas
from tmf_server.intake.conversion import CLEARED, REJECTED, UPDATE, Context, Conversion
from tmf_server.intake.merge import (INTAKE_TRACKING, NoLongerOpen, adopt_children, append_notification, customers,
                                     finish_from_source, is_open, is_parent, parent_body, problem_ref, record_event,
                                     shares_cause)
from tmf_server.intake.priority import PriorityRule
from tmf_server.intake.relevance import TicketRelevance
from tmf_server.intake.repository import IntakeRepository, Locks
from tmf_server.intake.sources import Rules, convert
from tmf_server.problems.lookups import ids_of
from tmf_server.problems.service import ServiceProblemService, Stored, utc_now
from tmf_server.problems.tasks import ProblemTasks
from tmf_server.validation import component_validator, first_error

log = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 10.0  # how long a request waits for another one processing the same customer/subject/cause
RETRY_AFTER = "1"
SWEEP_BATCH = 20  # records a sweep finishes at most (the next sweep takes the rest)
MAX_TAKEOVERS = 5  # a record whose processing failed this often (not the database: a bug) is finished as rejected

_SHOWN = ("source", "sourceEventId", "eventType", "receivedAt", "outcome", "reason", "serviceProblem",
          "parentProblem", "duplicateCount", "lastDuplicateAt", "completedAt", "shape")


def record_representation(document: dict, record_base: str, *, duplicate: bool = False,
                          with_payload: bool = False) -> dict:
    shown = {"id": document["_id"], "href": f"{record_base}/{quote(document['_id'], safe='')}"}
    shown.update((key, document[key]) for key in _SHOWN if document.get(key) is not None)
    if duplicate:
        shown["firstOutcome"] = shown["outcome"]
        shown["outcome"] = "duplicate"
        shown["reason"] = (f"already received at {document['receivedAt']}; nothing was done again "
                           f"(first outcome: {document['outcome']})")
    if with_payload:
        shown["payload"] = document.get("payload")
    return shown


@dataclass
class Admitted:
    """A notification read and stored. `state`: "new" or "taken over" (this request holds the processing lease:
    `complete` it), or "done" (a redelivery of an event already processed); `locks`: those taken with the record."""

    state: str
    stored: dict
    notice: schemas.Notice
    conversion: Conversion | None
    locks: Locks


def _customer_of(report: dict) -> str | None:
    return next((p.get("id") for p in customers(report)), None)


def lock_keys(conversion: Conversion) -> list[str]:
    """What the processing of a notification holds: its causes, its customer/subject/metric reports and its
    ticket; none for what takes no lock (a rejection, a clearing that finishes no source)."""
    if conversion.kind == REJECTED or (conversion.kind == CLEARED and not conversion.finish_status):
        return []
    keys = [f"cause:{k}" for k in conversion.group_keys]
    if conversion.correlatable:
        keys += [f"report:{conversion.customer}|{kind}:{value}|{conversion.metric}"
                 for kind, value in conversion.subjects]
    if conversion.ticket_id:
        keys.append(f"ticket:{conversion.ticket_id}")
    return keys


class IntakeService:
    def __init__(self, db, problems: ServiceProblemService, settings, spec: dict, clock=utc_now):
        self.repository = IntakeRepository(db, problems.repository)
        self.problems = problems
        self.tasks = ProblemTasks(problems)
        self.settings = settings
        self.rule = PriorityRule.from_settings(settings)
        self.rules = Rules(TicketRelevance.from_settings(settings))
        self.lease_ms = int(1000 * settings.intake_lease_seconds)
        self.clock = clock
        self._create_validator = component_validator(spec, "ServiceProblem_Create")

    # -- the entry points ----------------------------------------------------------------------------------

    def receive(self, source: str, payload: dict, *, api_base: str, record_base: str,
                correlation_id: str | None = None) -> tuple[dict, int]:
        """Returns (IntakeRecord, HTTP status): 201 when a new report was created, 200 otherwise."""
        admitted = self.admit(source, payload, api_base=api_base, record_base=record_base,
                              correlation_id=correlation_id)
        if admitted.state == "done":
            return record_representation(admitted.stored, record_base, duplicate=True), 200
        return self.complete(admitted.stored, admitted.notice, admitted.conversion, admitted.locks)

    def admit(self, source: str, payload: dict, *, api_base: str, record_base: str,
              correlation_id: str | None = None) -> Admitted:
        """Reads the notification (a 400 naming every problem when it cannot be understood, nothing stored) and
        stores it first, taking in the same write the free locks its processing needs."""
        check_keys(payload)  # names MongoDB would read as operators or paths: 400, nothing stored
        notice = schemas.load(source, payload)
        event_id = notice.values["eventId"]
        record_id = f"{source}:{event_id}"
        record = {
            "_id": record_id, "source": source, "sourceEventId": event_id, "eventType": notice.values["eventType"],
            "receivedAt": self.clock(), "shape": notice.shape, "payload": payload,
            # what processing needs again if a sweep finishes the record after a crash
            "_apiBase": api_base, "_recordBase": record_base,
            "_correlationId": correlation_id or notice.values.get("correlationId") or record_id,
        }
        try:  # pure: converted before storing only to know the locks; a failure is met again, and recorded, later
            conversion = self._conversion(record, notice)
        except Exception:  # noqa: BLE001 (converted again after storing, where the outcome records the failure)
            conversion = None
        state, stored, locks = self.repository.store(record, self.lease_ms, lock_keys(conversion) if conversion else [])
        if state == "busy":
            raise Conflict(f"Event '{event_id}' from {source} is being processed by another request; "
                           f"retry shortly.", code="intakeInProgress", headers={"Retry-After": RETRY_AFTER})
        # a record taken over keeps the redelivery's payload, so it is converted again from what is stored
        return Admitted(state, stored, notice, conversion if state == "new" else None, locks)

    def complete(self, stored: dict, notice: schemas.Notice | None = None, conversion: Conversion | None = None,
                 locks: Locks | None = None) -> tuple[dict, int]:
        """Converts and processes a stored record whose lease this caller holds, and records the outcome; the locks
        (those `locks` holds already and those processing takes) are released with it."""
        record_base = stored["_recordBase"]
        locks = locks or Locks()
        try:
            outcome = self._outcome(stored, notice, conversion, locks)
        except ApiError as error:
            if error.status in (409, 412, 503):  # transient: let a redelivery try again at once
                self.repository.abandon(stored, locks)
                raise
            log.warning("intake %s rejected: %s", stored["_id"], error.message)
            outcome = {"outcome": "rejected", "reason": error.message}
        except Exception:
            self.repository.abandon(stored, locks)
            raise
        outcome["completedAt"] = self.clock()
        final = self.repository.finish(stored, outcome, locks, ticket=outcome.pop("_ticket", None))
        return record_representation(final, record_base), 201 if outcome["outcome"] == "created" else 200

    def sweep(self, limit: int = SWEEP_BATCH) -> int:
        """Finishes records left `received` by a request that died between storing and finishing (their lease ran
        out and no redelivery came): each is taken over and processed as a redelivery would. Returns how many."""
        finished = 0
        for left in self.repository.left_received(limit):
            taken = self.repository.take_over(left, self.lease_ms)
            if taken is None:
                continue  # a redelivery or another sweeper took it
            try:
                self.complete(taken)
                finished += 1
            except Exception as exc:  # given back (abandoned): the next sweep tries again, a few times
                log.warning("intake %s: left received, not finished by the sweep: %s", left["_id"], exc)
                if taken["_takeovers"] >= MAX_TAKEOVERS and not isinstance(exc, (ApiError, PyMongoError)):
                    self.repository.finish(taken, {
                        "outcome": "rejected", "completedAt": self.clock(),
                        "reason": f"processing failed {taken['_takeovers']} times, the last: {exc}"})
        self.repository.drop_released_locks()
        return finished

    def get(self, record_id: str) -> dict | None:
        return self.repository.get(record_id)

    def _check_body(self, body: dict) -> None:
        error = first_error(self._create_validator, body, "(report)")
        if error is not None:
            raise BadRequest(f"The notification does not make a valid ServiceProblem: {error}",
                             code="invalidNotification")

    # -- processing ----------------------------------------------------------------------------------------

    def _conversion(self, stored: dict, notice: schemas.Notice) -> Conversion:
        ctx = Context(stored["receivedAt"], f"{stored['_recordBase']}/{quote(stored['_id'], safe='')}", self.rule)
        return convert(stored["source"], notice, ctx, self.rules)

    def _outcome(self, stored: dict, notice: schemas.Notice | None, conversion: Conversion | None,
                 locks: Locks) -> dict:
        notice = notice or schemas.load(stored["source"], stored["payload"])
        conversion = conversion or self._conversion(stored, notice)
        outcome = self._process(conversion, stored["_apiBase"], stored["_correlationId"], locks)
        if notice.unread:
            outcome["reason"] = f"{outcome.get('reason') or outcome['outcome']}; not read: " + "; ".join(notice.unread)
        return outcome

    def _process(self, conversion: Conversion, api_base: str, correlation: str, locks: Locks) -> dict:
        if conversion.kind == REJECTED:
            return {"outcome": "rejected", "reason": conversion.reason}
        if conversion.kind == CLEARED and not conversion.finish_status:
            return self._clear(conversion, correlation)
        if self.repository.lock(lock_keys(conversion), self.lease_ms, LOCK_WAIT_SECONDS, locks) is None:
            raise Conflict("Another notification about the same customer, service or cause is being processed; "
                           "retry shortly.", code="intakeBusy", headers={"Retry-After": RETRY_AFTER})
        # the locks are released with the record's outcome (IntakeService.complete)
        if conversion.kind == CLEARED:
            return self._finish(conversion, correlation)
        return self._degradation(conversion, api_base, correlation)

    def _tracking(self, conversion: Conversion, what: str) -> str:
        return f"{INTAKE_TRACKING}{what} {conversion.event_type} {conversion.event_id} ({conversion.source})"

    def _report_of_source(self, conversion: Conversion) -> Stored | None:
        """The open report made from the same source resource: the ticket's, or the alarm's one open report
        (not a parent) of this customer or of no customer yet (it supplies it); a notification naming no customer
        takes the alarm's report when there is exactly one."""
        if conversion.ticket_id:
            return self.repository.open_report_of_ticket(conversion.ticket_id)
        if conversion.alarm_id is not None:
            customer = conversion.customer
            candidates = [r for r in self.repository.open_reports_of_alarm(conversion.alarm_id)
                          if not is_parent(r.representation)
                          and (customer is None or _customer_of(r.representation) in (None, customer))]
            return candidates[0] if len(candidates) == 1 else None
        return None

    def _degradation(self, conversion: Conversion, api_base: str, correlation: str) -> dict:
        target = self._report_of_source(conversion)
        if target is None and conversion.correlatable and conversion.kind != UPDATE:
            target = self.repository.open_report(conversion.customer, conversion.subjects, conversion.metric)
        problem, outcome = None, "created"
        if target is not None:
            try:
                problem = self.problems.update(target.representation["id"], append_notification(conversion),
                                               correlation_id=correlation, read=target, check_changes_only=True,
                                               tracking=self._tracking(conversion, "appended")).representation
                outcome = "merged"
            except (NoLongerOpen, NotFound):  # closed or deleted since it was found: a new report
                problem = None
        if problem is None and conversion.kind == UPDATE:
            source_id = conversion.ticket_id or conversion.alarm_id
            return {"outcome": "ignored",
                    "reason": f"no open report made from {conversion.source} {source_id}: a change event updates "
                              f"the report of its source resource and never opens one"}
        if problem is None:
            self._check_body(conversion.body)  # a safeguard: a report the document would refuse is not written
            problem = self.problems.create(conversion.body, api_base + "/serviceProblem",
                                           correlation_id=correlation).representation
        reason = (f"appended to open report {problem['id']}" if outcome == "merged" else
                  f"report {problem['id']} created in status {problem['status']}")
        result = {"outcome": outcome, "reason": reason, "serviceProblem": problem_ref(problem),
                  "_problemId": problem["id"]}
        if conversion.ticket_id and ids_of(problem, "ticket")[:1] != [conversion.ticket_id]:
            result["_ticket"] = conversion.ticket_id  # the report is found by it through the ticket's document
        parent = self._group(problem, conversion, api_base, correlation)
        if parent is not None:
            result["parentProblem"] = problem_ref(parent)
            result["reason"] += f"; grouped under parent {parent['id']}"
        return result

    def _finish(self, conversion: Conversion, correlation: str) -> dict:
        """A source resource that arrives finished (a ticket resolved, closed or cancelled): no new report; the
        open report made from it takes the source's status where the lifecycle allows (else a tracking record)."""
        report = self._report_of_source(conversion)
        if report is None and conversion.not_qos:
            return {"outcome": "rejected", "reason": f"{conversion.not_qos} ({conversion.reason})"}
        if report is None:
            return {"outcome": "cleared", "reason": f"{conversion.reason}: no open report, none opened"}
        finished: dict[str, str] = {}
        try:
            problem = self.problems.update(report.representation["id"], finish_from_source(conversion, finished),
                                           correlation_id=correlation, read=report, check_changes_only=True,
                                           tracking=self._tracking(conversion, conversion.reason + ":")).representation
        except (NoLongerOpen, NotFound):
            return {"outcome": "cleared", "reason": f"{conversion.reason}: no open report, none opened"}
        status = finished.get(problem["id"], problem["status"])
        if status == conversion.finish_status:
            what = f"report {problem['id']} {status}"
        else:
            what = (f"report {problem['id']} left in status {status} (the lifecycle does not allow "
                    f"{conversion.finish_status} from it); tracking record added")
        return {"outcome": "cleared", "reason": f"{conversion.reason}: {what}", "serviceProblem": problem_ref(problem),
                "_problemId": problem["id"]}

    def _clear(self, conversion: Conversion, correlation: str) -> dict:
        if conversion.alarm_id is not None:
            reports = self.repository.open_reports_of_alarm(conversion.alarm_id)
        elif conversion.correlatable:
            found = self.repository.open_report(conversion.customer, conversion.subjects, conversion.metric)
            reports = [found] if found else []
        else:
            reports = []
        touched = []
        for report in reports:
            try:
                touched.append(self.problems.update(report.representation["id"], record_event(conversion),
                                                    correlation_id=correlation, read=report,
                                                    check_changes_only=True,
                                                    tracking=self._tracking(conversion, conversion.reason + ":"))
                               .representation)
            except (NoLongerOpen, NotFound):
                continue
        if not touched:
            return {"outcome": "cleared", "reason": "no open report"}
        first = touched[0]
        return {"outcome": "cleared", "serviceProblem": problem_ref(first), "_problemId": first["id"],
                "reason": f"{conversion.reason}; tracking record added to {len(touched)} open report(s): "
                          + ", ".join(t["id"] for t in touched)}

    # -- grouping: reports of several customers with one cause -----------------------------------------------

    def _group(self, problem: dict, conversion: Conversion, api_base: str, correlation: str) -> dict | None:
        """Reports of other customers open for one of this notification's causes (the same alarm, alarmed object or
        service) are grouped with this one under a parent: an open parent made for one of the causes, or a
        sibling's parent, or a new one (category system.originated)."""
        if not conversion.group_keys or not conversion.customer or problem.get("parentProblem"):
            return None
        keys = conversion.group_keys
        parent = self.repository.open_parent(keys)
        siblings = self.repository.open_siblings(keys, conversion.customer, problem["id"])
        if parent is None:
            parent = next((candidate for candidate in (self.repository.get_problem(ref["id"])
                                                       for sibling in siblings
                                                       for ref in sibling.get("parentProblem", []))
                           if candidate is not None and is_open(candidate)), None)
        if parent is None and not siblings:
            return None
        children = [problem] + [s for s in siblings if not s.get("parentProblem")]
        if parent is not None:
            try:
                parent = self.problems.update(parent["id"], adopt_children(children, conversion),
                                              correlation_id=correlation, check_changes_only=True,
                                              tracking=self._tracking(conversion, "more reports with this cause:")
                                              ).representation
            except NoLongerOpen:  # finished meanwhile: a new parent for the open reports
                parent = None
        if parent is None:
            key = next((k for k in keys if any(shares_cause(s, k) for s in siblings)), keys[0])
            body = parent_body(key, children, conversion, self.settings.system_id)
            self._check_body(body)
            parent = self.problems.create(body, api_base + "/serviceProblem", correlation_id=correlation).representation
        # The links on both sides (parentProblem of each child, underlyingProblem of the parent): the TMF656 task.
        self.tasks.group_under(parent["id"], [c["id"] for c in children], correlation)
        return parent

