"""ServiceProblem use cases: create, read, list, patch, delete."""
from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from tmf_server.errors import NotFound, PreconditionFailed
from tmf_server.problems import lifecycle
from tmf_server.problems.patching import JSON_PATCH, json_patch, merge_patch, touched_attributes
from tmf_server.problems.representation import to_api, to_document
from tmf_server.problems.repository import ServiceProblemRepository
from tmf_server.problems.rules import ServiceProblemRules, check_keys
from tmf_server.query.filters import canonical_datetime
from tmf_server.query.listing import ListQuery
from tmf_server.settings import Settings

MAX_WRITE_ATTEMPTS = 50


def utc_now() -> str:
    return canonical_datetime(datetime.now(timezone.utc))


@dataclass
class Stored:
    """A representation with the version it was read or written at."""

    representation: dict
    version: int

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


@dataclass
class Page:
    items: list[dict]
    total: int


def _matches(if_match: str | None, version: int) -> bool:
    if if_match is None:
        return True
    tags = [t.strip().removeprefix("W/").strip('"') for t in if_match.split(",")]
    return "*" in tags or str(version) in tags


class ServiceProblemService:
    def __init__(self, repository: ServiceProblemRepository, rules: ServiceProblemRules, settings: Settings,
                 clock: Callable[[], str] = utc_now):
        self.repository = repository
        self.rules = rules
        self.settings = settings
        self.clock = clock

    def create(self, body: dict, href_base: str) -> Stored:
        self.rules.check_create(body)
        status = lifecycle.check_initial(body.get("status"))
        now = self.clock()
        problem_id = str(uuid.uuid4())
        representation = copy.deepcopy(body)
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
        self.rules.normalise_dates(representation)
        self.repository.insert(to_document(representation, version=1))
        return Stored(representation, 1)

    def get(self, problem_id: str, projection: dict | None = None) -> Stored:
        document = self.repository.get(problem_id, projection)
        if document is None:
            raise NotFound(f"No ServiceProblem with id '{problem_id}'.")
        return Stored(to_api(document), document["_version"])

    def list(self, query: ListQuery) -> Page:
        documents = self.repository.find(query.filter, query.sort, query.offset, query.limit, query.projection)
        return Page([to_api(d) for d in documents], self.repository.count(query.filter))

    def patch(self, problem_id: str, kind: str, body, if_match: str | None = None) -> Stored:
        check_keys(body)  # anywhere in the body, even under null (merge) or in a `test` value (JSON Patch)
        touched = touched_attributes(kind, body)
        self.rules.check_patch_targets(touched)
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            current = self.get(problem_id)
            if not _matches(if_match, current.version):
                raise PreconditionFailed(f"ServiceProblem '{problem_id}' is at ETag {current.etag}, "
                                         f"not {if_match}.")
            before = current.representation
            after = json_patch(before, body) if kind == JSON_PATCH else merge_patch(before, body)
            self.rules.check_result(after)
            self.rules.normalise_dates(after)  # before comparing: a date restated in another form is no change
            if after == before:
                return current
            now = self.clock()
            after["lastUpdate"] = now
            if after.get("status") != before.get("status"):
                lifecycle.apply_status_change(after, before["status"], now, self.settings.system_id,
                                              reason_given="statusChangeReason" in touched)
            version = current.version + 1
            if self.repository.replace(to_document(after, version), expected_version=current.version):
                return Stored(after, version)
            # Another writer won the race: re-read and apply the patch to its result.
        raise PreconditionFailed(f"ServiceProblem '{problem_id}' kept changing; the patch was not applied. Retry.",
                                 code="concurrentModification")

    def delete(self, problem_id: str, if_match: str | None = None) -> None:
        current = self.get(problem_id, {"_version": 1})
        if not _matches(if_match, current.version):
            raise PreconditionFailed(f"ServiceProblem '{problem_id}' is at ETag {current.etag}, not {if_match}.")
        if not self.repository.delete(problem_id, current.version if if_match else None):
            if if_match:
                raise PreconditionFailed(f"ServiceProblem '{problem_id}' changed while it was being deleted.")
            raise NotFound(f"No ServiceProblem with id '{problem_id}'.")
