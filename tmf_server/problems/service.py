"""ServiceProblem use cases: create, read, update (the one read-modify-write), patch, delete."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from tmf_server.bodies import check_keys
from tmf_server.dates import canonical_datetime
from tmf_server.errors import NotFound, PreconditionFailed
from tmf_server.events.builder import Change
from tmf_server.problems import lifecycle
from tmf_server.problems.information import REQUIRED_PREFIX, awaiting_information, missing_information
from tmf_server.problems.patching import JSON_PATCH, json_patch, merge_patch, touched_attributes
from tmf_server.problems.repository import ServiceProblemRepository
from tmf_server.problems.rules import ServiceProblemRules, check_type
from tmf_server.settings import Settings
from tmf_server.store.documents import deep_copy, to_api

MAX_WRITE_ATTEMPTS = 50


def utc_now() -> str:
    return canonical_datetime(datetime.now(timezone.utc))


@dataclass
class Stored:
    """A representation with the version it was read or written at (and, when read, the stored document)."""

    representation: dict
    version: int
    document: dict | None = None

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


def _matches(if_match: str | None, version: int) -> bool:
    if if_match is None:
        return True
    tags = [t.strip().removeprefix("W/").strip('"') for t in if_match.split(",")]
    return "*" in tags or str(version) in tags


class ServiceProblemService:
    def __init__(self, repository: ServiceProblemRepository, rules: ServiceProblemRules, settings: Settings,
                 clock: Callable[[], str] = utc_now, actor: Callable[[], str | None] | None = None):
        self.repository = repository
        self.rules = rules
        self.settings = settings
        self.clock = clock
        # Who makes the current change (the token's subject), recorded in tracking records and event records;
        # None without authentication, so that nothing is looked up then.
        self.actor = actor

    def _change(self, correlation_id: str | None, now: str | None = None) -> Change:
        now = now or self.clock()
        if self.actor is None:
            return Change(now, correlation_id) if correlation_id else Change(now)
        user = self.actor()
        return Change(now, correlation_id, user) if correlation_id else Change(now, user=user)

    def _sign_new_tracking(self, representation: dict, known: list, user: str | None) -> None:
        """Tracking records written by this change name who made it: those after the last of the `known` ones (the
        records before the change), which stays where it was when a change drops older ones (the intake keeps only
        the first and the most recent of its own, docs/intake.md); else those after the first len(known)."""
        if user is None:
            return
        records = representation.get("trackingRecord", [])
        start = len(known)
        if known:
            start = next((i + 1 for i in range(len(records) - 1, -1, -1) if records[i] == known[-1]), start)
        for record in records[start:]:
            record["user"] = user

    def create(self, body: dict, href_base: str, correlation_id: str | None = None,
               problem_id: str | None = None) -> Stored:
        """`problem_id`: the id to create it under (a retried request's), or a new one."""
        self.rules.check_create(body)
        status = lifecycle.check_initial(body.get("status"))
        change = self._change(correlation_id)
        now = change.time
        problem_id = problem_id or str(uuid.uuid4())
        representation = deep_copy(body)
        representation.update({
            "id": problem_id,
            "href": f"{href_base}/{problem_id}",
            "status": status,
            "creationDate": now,
            "lastUpdate": now,
            "statusChangeDate": now,
        })
        representation.setdefault("@type", "ServiceProblem")
        representation.setdefault("affectedNumberOfServices", len(body.get("affectedService", [])))
        representation.setdefault("responsibleParty", dict(self.settings.responsible_party))
        missing = missing_information(representation)
        if missing:  # received, not yet actionable: ask for what is missing (an InformationRequired event)
            reason = REQUIRED_PREFIX + ", ".join(missing)
            representation["status"] = "pending"
            representation["statusChangeReason"] = reason
            representation.setdefault("trackingRecord", []).append(self._tracking(reason, now))
        self.rules.normalise_dates(representation)
        self._sign_new_tracking(representation, [], change.user)
        self.repository.insert(representation, change)
        return Stored(representation, 1)

    def get(self, problem_id: str, projection: dict | None = None) -> Stored:
        document = self.repository.get(problem_id, projection)
        if document is None:
            raise NotFound(f"No ServiceProblem with id '{problem_id}'.")
        return Stored(to_api(document), document["_version"], document)

    def _tracking(self, description: str, now: str) -> dict:
        return {"id": str(uuid.uuid4()), "description": description, "time": now,
                "systemId": self.settings.system_id, "@type": "TrackingRecord"}

    def update(self, problem_id: str, change: Callable[[dict], None], *, correlation_id: str | None = None,
               tracking: str | None = None, if_match: str | None = None,
               reason_given: Callable[[dict, dict], bool] | None = None, read: Stored | None = None,
               changed: set[str] | None = None, check_changes_only: bool = False) -> Stored:
        """The one read-modify-write of a report: `change` mutates a copy of the representation (it may raise
        an ApiError to refuse); the result is validated, lifecycle rules apply, and it is written against the
        version it was read at (re-read and re-applied when another write came first). `read`: the report as the
        caller has just read it (with its stored document): the first attempt starts from it instead of reading.
        `changed`: the top-level attributes `change` may alter, when known (only their dates are normalised again;
        with `check_changes_only`, each is checked whole).
        `check_changes_only`: the result is checked only where it differs from the stored report (a PATCH, the
        intake's appends to grown reports; ServiceProblemRules.check_result says why the answer is the same)."""
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            current = read if read is not None and read.document is not None else self.get(problem_id)
            read = None  # a second attempt reads the version that came first
            if not _matches(if_match, current.version):
                raise PreconditionFailed(f"ServiceProblem '{problem_id}' is at ETag {current.etag}, "
                                         f"not {if_match}.")
            before = current.representation
            after = deep_copy(before)
            change(after)
            self.rules.check_result(after, before if check_changes_only else None, changed or frozenset())
            # before comparing: a date restated in another form is no change
            self.rules.normalise_dates(after, changed, before)
            if after == before:
                return current
            now = self.clock()
            after["lastUpdate"] = now
            if tracking:
                after.setdefault("trackingRecord", []).append(self._tracking(tracking, now))
            supplied = after.get("status") == before.get("status") and awaiting_information(after) \
                and not missing_information(after)
            if supplied:  # the missing information arrived: the report is now actionable
                after["status"], after["statusChangeReason"] = "acknowledged", "information supplied"
            if after.get("status") != before.get("status"):
                given = supplied or (reason_given(before, after) if reason_given else
                                     after.get("statusChangeReason") != before.get("statusChangeReason"))
                lifecycle.apply_status_change(after, before["status"], now, self.settings.system_id,
                                              reason_given=given)
            written = self._change(correlation_id, now)
            self._sign_new_tracking(after, before.get("trackingRecord", []), written.user)
            version = self.repository.replace(current.document, after, written)
            if version is not None:
                return Stored(after, version)
            # Another writer won the race: re-read and apply the change to its result.
        raise PreconditionFailed(f"ServiceProblem '{problem_id}' kept changing; the change was not applied. Retry.",
                                 code="concurrentModification")

    def patch(self, problem_id: str, kind: str, body, if_match: str | None = None,
              correlation_id: str | None = None) -> Stored:
        check_keys(body)  # anywhere in the body, even under null (merge) or in a `test` value (JSON Patch)
        if isinstance(body, dict):  # a merge patch states its @type: refused before any version check
            check_type(body)
        touched = touched_attributes(kind, body)
        self.rules.check_patch_targets(touched)

        def apply(representation: dict) -> None:
            patched = json_patch(representation, body) if kind == JSON_PATCH else merge_patch(representation, body)
            if patched is not representation:  # an empty JSON Patch returns its target
                representation.clear()
                representation.update(patched)

        return self.update(problem_id, apply, correlation_id=correlation_id, if_match=if_match,
                           reason_given=lambda _before, _after: "statusChangeReason" in touched, changed=touched,
                           check_changes_only=True)

    def delete(self, problem_id: str, if_match: str | None = None, correlation_id: str | None = None) -> None:
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            current = self.get(problem_id)
            if not _matches(if_match, current.version):
                raise PreconditionFailed(f"ServiceProblem '{problem_id}' is at ETag {current.etag}, not {if_match}.")
            if self.repository.delete(current.document, self._change(correlation_id)):
                return
            # Changed meanwhile: with If-Match the next round answers 412, without it deletes the newer version.
        raise PreconditionFailed(f"ServiceProblem '{problem_id}' kept changing; it was not deleted. Retry.",
                                 code="concurrentModification")
