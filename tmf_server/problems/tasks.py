"""TMF656 task resources: acknowledge, unacknowledge, group and ungroup ServiceProblems, all or nothing.

A task names several reports. Every one is read and checked first (unknown ids: 404 naming them all; a status
or a link that does not allow the task: 409) and only then changed, one report at a time, through the one
write path (`ServiceProblemService.update`), so each change is validated, follows the lifecycle and carries its
own events. There are no multi-document transactions (docs/mongodb.md): when a later write fails because a
concurrent change made it impossible, the writes already made are rolled back through the same path (their
previous attributes written back, which emits events of its own) and the task answers 409. A rollback restores
a report only if the attributes the task wrote are still as it wrote them; a report changed again meanwhile is
left alone and named in the 409 message.

Tasks are not stored: the answer carries an id and an href, but there is nothing to GET.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from tmf_server.bodies import check_keys
from tmf_server.errors import ApiError, BadRequest, Conflict, NotFound
from tmf_server.problems.lifecycle import FINAL_STATUSES
from tmf_server.problems.service import ServiceProblemService, Stored

log = logging.getLogger(__name__)

ABSENT = object()  # an attribute the representation does not have

ACKNOWLEDGEMENT = "problemAcknowledgement"
UNACKNOWLEDGEMENT = "problemUnacknowledgement"
GROUP = "problemGroup"
UNGROUP = "problemUngroup"

_COMMON = frozenset({"@baseType", "@schemaLocation", "@type"})
# Attributes a client may send, per task (the official *_Create schemas, less the server's output lists).
ACCEPTED = {
    ACKNOWLEDGEMENT: _COMMON | {"problem", "trackingRecord"},
    UNACKNOWLEDGEMENT: _COMMON | {"problem", "trackingRecord"},
    GROUP: _COMMON | {"parentProblem", "childProblem"},
    UNGROUP: _COMMON | {"parentProblem", "childProblem"},
}
SERVER_OWNED = {
    ACKNOWLEDGEMENT: frozenset({"id", "href", "ackProblem"}),
    UNACKNOWLEDGEMENT: frozenset({"id", "href", "unackProblem"}),
    GROUP: frozenset({"id", "href"}),
    UNGROUP: frozenset({"id", "href"}),
}
TYPES = {ACKNOWLEDGEMENT: "ProblemAcknowledgement", UNACKNOWLEDGEMENT: "ProblemUnacknowledgement",
         GROUP: "ProblemGroup", UNGROUP: "ProblemUngroup"}

MAX_LINK_WALK = 1000  # reports visited at most when looking for a cycle (links are few; this bounds bad data)


def _names(items: Iterable[str]) -> str:
    return ", ".join(f"'{item}'" for item in items)


def _ids(refs) -> list[str]:
    return [ref["id"] for ref in refs or () if isinstance(ref, dict) and "id" in ref]


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def ref_of(representation: dict) -> dict:
    return {"id": representation["id"], "href": representation["href"]}


def _value(representation: dict, name: str):
    return representation.get(name, ABSENT)


def _assign(representation: dict, name: str, value) -> None:
    if value is ABSENT:
        representation.pop(name, None)
    else:
        representation[name] = value


@dataclass
class Applied:
    """A write the task made: what the attributes were before it and what it left them as (for a rollback)."""

    problem_id: str
    before: dict
    after: dict


class _Writer:
    """Applies a task's changes one report at a time, remembering each, and undoes them if a later one fails."""

    def __init__(self, problems: ServiceProblemService, task: str, task_id: str, correlation_id: str):
        self.problems = problems
        self.task = task
        self.task_id = task_id
        self.correlation_id = correlation_id
        self.applied: list[Applied] = []

    def write(self, problem_id: str, attributes: tuple[str, ...], change: Callable[[dict], None],
              tracking: str | None = None) -> dict:
        seen: dict = {}

        def apply(representation: dict) -> None:
            seen.clear()  # a retry after a concurrent write sees the newer version
            seen.update({name: _value(representation, name) for name in attributes})
            change(representation)

        try:
            stored: Stored = self.problems.update(problem_id, apply, correlation_id=self.correlation_id,
                                                  tracking=tracking)
        except ApiError as exc:
            raise self._conflict(problem_id, exc, self.rollback()) from exc
        except Exception:
            self.rollback()  # database unreachable or a bug: 503/500 after a best-effort rollback
            raise
        after = {name: _value(stored.representation, name) for name in attributes}
        if after != seen:
            self.applied.append(Applied(problem_id, dict(seen), after))
        return stored.representation

    def _conflict(self, problem_id: str, exc: ApiError, not_restored: list[str]) -> Conflict:
        applied = len(self.applied)
        if not applied:
            undone = " Nothing was changed."
        elif not_restored:
            undone = (f" The changes already made were rolled back, except on {_names(not_restored)}, "
                      f"which changed again meanwhile.")
        else:
            undone = (f" The {applied} change{'s' if applied != 1 else ''} already made "
                      f"{'were' if applied != 1 else 'was'} rolled back.")
        code = exc.code if isinstance(exc, Conflict) else "concurrentModification"
        return Conflict(f"{self.task} could not change ServiceProblem '{problem_id}': "
                        f"{exc.message.rstrip('.')}.{undone}", code=code)

    def rollback(self) -> list[str]:
        """Writes back the previous attributes of every applied change, newest first; returns those it could not."""
        not_restored = []
        for applied in reversed(self.applied):
            def restore(representation: dict, applied=applied) -> None:
                if any(_value(representation, name) != value for name, value in applied.after.items()):
                    raise Conflict("changed again since the task wrote it")
                for name, value in applied.before.items():
                    _assign(representation, name, value)

            try:
                self.problems.update(applied.problem_id, restore, correlation_id=self.correlation_id,
                                     tracking=f"rolled back: {self.task} {self.task_id} failed")
            except Exception as exc:  # noqa: BLE001 (one failed rollback must not stop the others)
                log.warning("%s %s: rollback of ServiceProblem %s failed: %s", self.task, self.task_id,
                            applied.problem_id, exc)
                not_restored.append(applied.problem_id)
        return list(reversed(not_restored))


class ProblemTasks:
    """The four TMF656 task operations over ServiceProblems."""

    def __init__(self, problems: ServiceProblemService):
        self.problems = problems

    # ---- the tasks ---------------------------------------------------------------------------------------------

    def acknowledge(self, body: dict, href_base: str, correlation_id: str | None = None) -> dict:
        """pending -> acknowledged; one already acknowledged is left as it is and still listed (idempotent)."""
        return self._status_task(ACKNOWLEDGEMENT, body, href_base, correlation_id, source="pending",
                                 target="acknowledged", output="ackProblem", verb="acknowledged", idempotent=True)

    def unacknowledge(self, body: dict, href_base: str, correlation_id: str | None = None) -> dict:
        """acknowledged -> pending (TMF656's roll-back to Submitted; v4 has no such status); any other status: 409."""
        return self._status_task(UNACKNOWLEDGEMENT, body, href_base, correlation_id, source="acknowledged",
                                 target="pending", output="unackProblem", verb="unacknowledged", idempotent=False)

    def group(self, body: dict, href_base: str, correlation_id: str | None = None) -> dict:
        task_id, parent_id, child_ids, found = self._start_link_task(GROUP, body)
        self._group(task_id, parent_id, child_ids, found, correlation_id)
        return self._answer(GROUP, task_id, body, href_base)

    def group_under(self, parent_id: str, child_ids: list[str], correlation_id: str | None = None) -> str:
        """The domain call of the ProblemGroup task (for the server's own grouping, e.g. the intake's): the same
        checks and all-or-nothing writes, without a request body. Returns the task's id."""
        task_id = str(uuid.uuid4())
        child_ids = _unique(child_ids)
        self._group(task_id, parent_id, child_ids, self._read_all([parent_id, *child_ids]), correlation_id)
        return task_id

    def _group(self, task_id: str, parent_id: str, child_ids: list[str], found: dict[str, dict],
               correlation_id: str | None) -> None:
        task = GROUP
        parent = found[parent_id]
        children = [found[c] for c in child_ids]

        if parent_id in child_ids:
            raise Conflict(f"ServiceProblem '{parent_id}' cannot be grouped under itself; nothing was changed.",
                           code="invalidGrouping")
        final = [p for p in [parent, *children] if p["status"] in FINAL_STATUSES]
        if final:
            raise Conflict("A ServiceProblem in a final status cannot be grouped: "
                           + ", ".join(f"'{p['id']}' is {p['status']}" for p in final) + "; nothing was changed.",
                           code="invalidStatus")
        elsewhere = [(c["id"], other) for c in children for other in _ids(c.get("parentProblem")) if other != parent_id]
        if elsewhere:
            raise Conflict("Already grouped under another parent: "
                           + ", ".join(f"'{c}' under '{other}'" for c, other in elsewhere)
                           + f"; ungroup {'it' if len(elsewhere) == 1 else 'them'} first. Nothing was changed.",
                           code="alreadyGrouped")
        cyclic = self._cycle(parent, children)
        if cyclic:
            raise Conflict(f"Grouping would make a cycle: ServiceProblem '{parent_id}' is a descendant of "
                           f"{_names(cyclic)}; nothing was changed.", code="groupingCycle")

        writer = _Writer(self.problems, task, task_id, correlation_id or task_id)
        parent_ref = ref_of(parent)
        for child_id in child_ids:
            def link_child(representation: dict) -> None:
                if representation["status"] in FINAL_STATUSES:
                    raise Conflict(f"it is now {representation['status']}, a final status", code="invalidStatus")
                parents = _ids(representation.get("parentProblem"))
                if set(parents) == {parent_id}:
                    return  # already grouped under this parent
                if parents:
                    raise Conflict(f"it is now grouped under {_names(parents)}", code="alreadyGrouped")
                if parent_id in _ids(representation.get("underlyingProblem")):
                    raise Conflict(f"'{parent_id}' is now one of its underlying problems", code="groupingCycle")
                representation["parentProblem"] = [parent_ref]

            writer.write(child_id, ("parentProblem",), link_child,
                         tracking=f"grouped under ServiceProblem {parent_id} ({task} {task_id})")

        child_refs = [ref_of(c) for c in children]

        def link_parent(representation: dict) -> None:
            if representation["status"] in FINAL_STATUSES:
                raise Conflict(f"it is now {representation['status']}, a final status", code="invalidStatus")
            cyclic_now = self._ancestors_among(representation, set(child_ids))
            if cyclic_now:
                raise Conflict(f"it is now a descendant of {_names(cyclic_now)}", code="groupingCycle")
            present = set(_ids(representation.get("underlyingProblem")))
            added = [ref for ref in child_refs if ref["id"] not in present]
            if added:
                representation["underlyingProblem"] = [*representation.get("underlyingProblem", []), *added]

        writer.write(parent_id, ("underlyingProblem",), link_parent,
                     tracking=f"underlying problems grouped under it: {', '.join(child_ids)} ({task} {task_id})")

    def ungroup(self, body: dict, href_base: str, correlation_id: str | None = None) -> dict:
        task = UNGROUP
        task_id, parent_id, child_ids, found = self._start_link_task(task, body)
        parent = found[parent_id]
        underlying = set(_ids(parent.get("underlyingProblem")))
        strangers = [c for c in child_ids
                     if parent_id not in _ids(found[c].get("parentProblem")) and c not in underlying]
        if strangers:
            raise Conflict(f"Not grouped under ServiceProblem '{parent_id}': {_names(strangers)}; nothing was changed.",
                           code="notGrouped")

        writer = _Writer(self.problems, task, task_id, correlation_id or task_id)
        for child_id in child_ids:
            def unlink_child(representation: dict) -> None:
                _remove_refs(representation, "parentProblem", {parent_id})

            writer.write(child_id, ("parentProblem",), unlink_child,
                         tracking=f"ungrouped from ServiceProblem {parent_id} ({task} {task_id})")

        def unlink_parent(representation: dict) -> None:
            _remove_refs(representation, "underlyingProblem", set(child_ids))

        writer.write(parent_id, ("underlyingProblem",), unlink_parent,
                     tracking=f"underlying problems ungrouped from it: {', '.join(child_ids)} ({task} {task_id})")
        return self._answer(task, task_id, body, href_base)

    # ---- shared steps ------------------------------------------------------------------------------------------

    def _status_task(self, task: str, body: dict, href_base: str, correlation_id: str | None, *,
                     source: str, target: str, output: str, verb: str, idempotent: bool) -> dict:
        task_id = self._start(task, body)
        problem_ids = _unique(_ids(body["problem"]))
        found = self._read_all(problem_ids)
        allowed = {source, target} if idempotent else {source}
        refused = [p for p in found.values() if p["status"] not in allowed]
        if refused:
            also = f" (or already '{target}')" if idempotent else ""
            raise Conflict(f"Only a ServiceProblem in status '{source}'{also} can be {verb}: "
                           + ", ".join(f"'{p['id']}' is {p['status']}" for p in refused) + "; nothing was changed.",
                           code="invalidStatus")

        reason = f"{task} {task_id}"
        description = (body.get("trackingRecord") or {}).get("description")
        if isinstance(description, str) and description.strip():
            reason += f": {description.strip()}"
        writer = _Writer(self.problems, task, task_id, correlation_id or task_id)
        refs = []
        for problem_id in problem_ids:
            def move(representation: dict) -> None:
                status = representation["status"]
                if status == target and idempotent:
                    return  # already there (acknowledging twice changes nothing)
                if status != source:
                    raise Conflict(f"its status is now '{status}'", code="invalidStatus")
                representation["status"] = target
                representation["statusChangeReason"] = reason

            refs.append(ref_of(writer.write(problem_id, ("status", "statusChangeReason"), move)))
        return {**self._answer(task, task_id, body, href_base), output: refs}

    def _start(self, task: str, body: dict) -> str:
        """Checks the body's attributes; returns the new task's id."""
        check_keys(body)
        owned = SERVER_OWNED[task] & set(body)
        if owned:
            raise BadRequest(f"{', '.join(sorted(owned))} {'is' if len(owned) == 1 else 'are'} set by the server; "
                             f"leave {'it' if len(owned) == 1 else 'them'} out of the request.",
                             code="serverOwnedAttribute")
        unknown = set(body) - ACCEPTED[task]
        if unknown:
            what = "is not an attribute" if len(unknown) == 1 else "are not attributes"
            raise BadRequest(f"{', '.join(sorted(unknown))} {what} of {TYPES[task]}.", code="unknownAttribute")
        return str(uuid.uuid4())

    def _start_link_task(self, task: str, body: dict) -> tuple[str, str, list[str], dict[str, dict]]:
        """Group and ungroup: the task id, the parent's id, the children's ids (each once) and every report read."""
        task_id = self._start(task, body)
        parent_id = body["parentProblem"]["id"]
        child_ids = _unique(_ids(body["childProblem"]))
        return task_id, parent_id, child_ids, self._read_all([parent_id, *child_ids])

    def _read_all(self, problem_ids: list[str]) -> dict[str, dict]:
        """Every listed report, or a 404 naming all the unknown ids."""
        found, unknown = {}, []
        for problem_id in _unique(problem_ids):
            try:
                found[problem_id] = self.problems.get(problem_id).representation
            except NotFound:
                unknown.append(problem_id)
        if unknown:
            raise NotFound(f"No ServiceProblem with id {_names(unknown)}; nothing was changed.")
        return found

    def _read(self, problem_id: str) -> dict | None:
        try:
            return self.problems.get(problem_id).representation
        except NotFound:
            return None  # a dangling link: nothing beyond it

    def _linked(self, problem: dict, link: str) -> Iterator[str]:
        """The ids reached from `problem` following `link` (parentProblem: up; underlyingProblem: down), each once,
        reading each report only when the walk goes on past it."""
        seen, frontier = {problem["id"]}, _ids(problem.get(link))
        while frontier and len(seen) < MAX_LINK_WALK:
            problem_id = frontier.pop()
            if problem_id in seen:
                continue
            seen.add(problem_id)
            yield problem_id
            found = self._read(problem_id)
            if found is not None:
                frontier.extend(_ids(found.get(link)))

    def _ancestors_among(self, problem: dict, candidates: set[str]) -> list[str]:
        """The candidates found walking up from `problem` through parentProblem."""
        return [problem_id for problem_id in self._linked(problem, "parentProblem") if problem_id in candidates]

    def _cycle(self, parent: dict, children: list[dict]) -> list[str]:
        """The children that the parent descends from (up through parentProblem, down through underlyingProblem)."""
        child_ids = [c["id"] for c in children]
        cyclic = set(self._ancestors_among(parent, set(child_ids)))
        for child in children:
            if child["id"] not in cyclic and parent["id"] in self._linked(child, "underlyingProblem"):
                cyclic.add(child["id"])
        return [c for c in child_ids if c in cyclic]

    @staticmethod
    def _answer(task: str, task_id: str, body: dict, href_base: str) -> dict:
        answer = {"id": task_id, "href": f"{href_base}/{task}/{task_id}", **body}
        answer.setdefault("@type", TYPES[task])
        return answer


def _remove_refs(representation: dict, name: str, ids: set[str]) -> None:
    kept = [ref for ref in representation.get(name, []) if not (isinstance(ref, dict) and ref.get("id") in ids)]
    if kept:
        representation[name] = kept
    else:
        representation.pop(name, None)
