"""Rules on a ServiceProblem representation that the OpenAPI document cannot express."""
from __future__ import annotations

import re

from tmf_server.bodies import check_keys
from tmf_server.dates import canonical_datetime, parse_datetime
from tmf_server.errors import BadRequest
from tmf_server.query.catalog import AttributeCatalog
from tmf_server.validation import component_validator, first_error, schema_validator

SERVER_OWNED_DATES = frozenset({"creationDate", "lastUpdate", "statusChangeDate", "resolutionDate"})
IDENTITY = frozenset({"id", "href"})
# ServiceProblem_Update leaves these out: they are set once, at creation.
NOT_PATCHABLE = IDENTITY | {"firstAlert", "originatingSystem", "trackingRecord"} | SERVER_OWNED_DATES
# A client may not set these when creating: the server writes identity, dates and the audit trail.
NOT_CREATABLE = IDENTITY | SERVER_OWNED_DATES | {"trackingRecord"}
# `@type` is ServiceProblem or the name of a subclass of it, ending in Problem (e.g. QosDegradationProblem).
_PROBLEM_TYPE = re.compile(r"[A-Z][A-Za-z0-9]*Problem")
# Links between problems have two sides; only the group and ungroup tasks write both together.
GROUP_LINKS = frozenset({"parentProblem", "underlyingProblem"})
# Keywords that say nothing about validity: a schema made only of these, `type`, and `properties` (an object) or
# `items` (an array) is valid for a value exactly when each property (item) is valid for its own schema.
_ANNOTATIONS = frozenset({"description", "example", "title", "components"})
_ABSENT = object()


def _describe(names) -> str:
    return ", ".join(sorted(names))


def _check_no_group_links(names: set[str]) -> None:
    links = names & GROUP_LINKS
    if links:
        raise BadRequest(f"{_describe(links)}: links between problems are made by POST /problemGroup and removed by "
                         f"POST /problemUngroup, which change both problems together.", code="groupLink")


class ServiceProblemRules:
    """Validates whole representations against the served schema and the server's own rules."""

    def __init__(self, spec: dict, catalog: AttributeCatalog):
        self.catalog = catalog
        # Mandatory at creation, plus status, which the server always sets: attributes can change, not vanish.
        self.required = (*spec["components"]["schemas"]["ServiceProblem_Create"].get("required", ()), "status")
        self._validator = component_validator(spec, "ServiceProblem")
        self._parts = _PartValidators.of(self._validator.schema)
        self._date_paths = catalog.date_time_paths()

    def check_create(self, body: dict) -> None:
        check_keys(body)
        self.check_known(body)
        check_type(body)
        owned = NOT_CREATABLE & set(body)
        if owned:
            raise BadRequest(f"{_describe(owned)} {'is' if len(owned) == 1 else 'are'} set by the server; "
                             f"leave {'it' if len(owned) == 1 else 'them'} out of the request.",
                             code="serverOwnedAttribute")
        _check_no_group_links(set(body))

    def check_patch_targets(self, touched: set[str]) -> None:
        forbidden = touched & NOT_PATCHABLE
        if forbidden:
            raise BadRequest(f"{_describe(forbidden)} cannot be patched.", code="notPatchable")
        _check_no_group_links(touched)
        self.check_known(touched)  # also `{"x": null}`, which never reaches the patched representation

    def check_known(self, representation: dict) -> None:
        unknown = set(representation) - self.catalog.top_level
        if unknown:
            raise BadRequest(f"{_describe(unknown)} {'is not an attribute' if len(unknown) == 1 else 'are not attributes'}"
                             f" of ServiceProblem.", code="unknownAttribute")

    def check_result(self, representation: dict, stored: dict | None = None,
                     changed: frozenset[str] | set[str] = frozenset()) -> None:
        """A patched representation must still be a valid, complete ServiceProblem.

        `stored`: the representation it was changed from, as stored (and so checked when it was written). Then only
        what differs from it is checked: the attributes named in `changed` (a PATCH's targets: checked whole even
        where `==` finds them equal, as `True` and `1` are) and those whose value differs, and in a list only the
        entries it did not have (an append to a grown report checks the entries appended, not the whole report:
        validating the whole report was about a tenth of the server's CPU per PATCH, and grew with the report).
        Validity is decided attribute by attribute and entry by entry (_PartValidators), so the answer is the
        whole check's; when that finds anything wrong, the whole check runs and gives its error, word for word."""
        if stored is not None and self._parts is not None and self._changes_valid(representation, stored, changed):
            return
        check_keys(representation)
        self.check_known(representation)
        check_type(representation)
        missing = [name for name in self.required if name not in representation]
        if missing:
            raise BadRequest(f"{_describe(missing)} {'is' if len(missing) == 1 else 'are'} mandatory and cannot be removed.",
                             code="mandatoryAttribute")
        error = first_error(self._validator, representation, "(resource)")
        if error is not None:
            raise BadRequest(f"After the patch, {error}.", code="invalidValue")

    def _changes_valid(self, representation: dict, stored: dict, named: frozenset[str] | set[str]) -> bool:
        """Whether `representation` passes every check of check_result, given that `stored` did."""
        changed = _changed_parts(representation, stored, named)
        try:
            for name, added in changed.items():
                check_keys(representation[name] if added is None else added, name)
            self.check_known(representation)
            check_type(representation)
        except BadRequest:
            return False
        if any(name not in representation for name in self.required):
            return False
        return all(self._parts.valid(name, representation[name], added) for name, added in changed.items())

    def normalise_dates(self, representation: dict, changed: set[str] | None = None,
                        stored: dict | None = None) -> None:
        """Stores every date-time in one form (UTC, ms, Z) so that filters compare them correctly; `changed`: only
        in these top-level attributes (the others are as stored, in that form already); else, with `stored` (the
        representation it was changed from, as stored), only in what differs from it: the attributes whose value
        differs, and in a list the entries it did not have (an append to a grown report rewrote a hundred dates
        of its kept events and tracking records, 7 % of the server's CPU per correlated notification)."""
        if changed is not None or stored is None:
            for path in self._date_paths:
                if changed is None or path[0] in changed:
                    _rewrite(representation, path)
            return
        parts = _changed_parts(representation, stored, frozenset())
        for path in self._date_paths:
            if path[0] not in parts:
                continue
            added = parts[path[0]]
            if added is None or len(path) == 1:
                _rewrite(representation, path)
            else:
                for entry in added:
                    _rewrite(entry, path[1:], ".".join(path))


def _changed_parts(representation: dict, stored: dict, named) -> dict[str, list | None]:
    """The attributes of `representation` to check again, each with the list entries `stored` did not have, or
    None when the whole value is to be checked: those `named`, and those whose value differs from the stored one."""
    changed: dict[str, list | None] = {}
    for name, value in representation.items():
        before = stored.get(name, _ABSENT)
        if name in named:
            changed[name] = None
        elif before is _ABSENT or before != value or type(before) is not type(value):  # == finds True and 1 equal
            changed[name] = _added(value, before) if isinstance(value, list) and isinstance(before, list) else None
    return changed


def _added(value: list, before: list) -> list:
    """The entries of `value` that are not entries of `before` kept in their order (an append, and the entries a
    bounded list dropped, leave the others in order): walks both lists once. An entry moved counts as added."""
    added, position = [], 0
    for entry in value:
        found = position
        while found < len(before) and before[found] != entry:
            found += 1
        if found < len(before):
            position = found + 1
        else:
            added.append(entry)
    return added


class _PartValidators:
    """Validators of the attributes of a schema that validates attribute by attribute (an object schema with only
    `type`, `properties` and annotations), and of the entries of its list attributes that validate entry by entry
    (`type: array`, `items` and annotations); each with the schema's components, for the references left."""

    def __init__(self, components: dict, properties: dict):
        self.whole = {name: schema_validator({"components": components, **schema})
                      for name, schema in properties.items()}
        self.entries = {name: schema_validator({"components": components, **schema["items"]})
                        for name, schema in properties.items()
                        if set(schema) - _ANNOTATIONS == {"type", "items"} and schema["type"] == "array"
                        and isinstance(schema["items"], dict)}

    @classmethod
    def of(cls, schema: dict) -> "_PartValidators | None":
        if set(schema) - _ANNOTATIONS != {"type", "properties"} or schema["type"] != "object":
            return None  # validity is not attribute by attribute: every change is checked whole
        return cls(schema.get("components", {}), schema["properties"])

    def valid(self, name: str, value, added: list | None) -> bool:
        """Whether the attribute `name` with `value` is valid, where only the `added` entries of a list are new
        (None: the whole value is). An attribute the schema does not declare is valid (no additionalProperties)."""
        if added is not None and name in self.entries:
            entry = self.entries[name]
            return all(entry.is_valid(item) for item in added)
        validator = self.whole.get(name)
        return validator is None or validator.is_valid(value)


def _rewrite(node, path: tuple[str, ...], full: str = "") -> None:
    full = full or ".".join(path)
    if isinstance(node, list):
        for item in node:
            _rewrite(item, path, full)
        return
    if not isinstance(node, dict) or path[0] not in node:
        return
    if len(path) == 1:
        value = node[path[0]]
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value)
            except ValueError:
                return  # the schema check reports it
            try:
                node[path[0]] = canonical_datetime(parsed)
            except ValueError as exc:
                raise BadRequest(f"{full}: {exc}", code="invalidValue") from None
        return
    _rewrite(node[path[0]], path[1:], full)


def check_type(representation: dict) -> None:
    value = representation.get("@type")
    if value is not None and not (isinstance(value, str) and _PROBLEM_TYPE.fullmatch(value)):
        raise BadRequest(f"@type must be ServiceProblem or the name of a subclass ending in Problem "
                         f"(e.g. QosDegradationProblem), not {str(value)[:60]!r}.", code="invalidType")
