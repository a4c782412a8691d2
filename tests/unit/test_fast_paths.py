"""The cheaper paths taken for speed give exactly what the general ones give: stored documents presented without
marshmallow's generic load (`store.documents.to_api`), component schemas validated with their references
written out (`validation.component_validator`): the same errors, messages, paths and order as the `$ref` form;
a patched report checked only in what it changed (`ServiceProblemRules.check_result` with
`stored`): the same refusals as the whole report's check; and the body's nesting depth counted by bytes until it
could matter (`limits._NestingDepth`)."""
from __future__ import annotations

import copy
import functools
import operator
import random

import pytest
from marshmallow import ValidationError

from tests.support.documents import STORED_REPORT, paths
from tmf_server.app import load_spec
from tmf_server.errors import BadRequest
from tmf_server.limits import _NestingDepth
from tmf_server.problems.repository import problem_catalog
from tmf_server.problems.rules import ServiceProblemRules
from tmf_server.store.documents import StoredResource, to_api
from tmf_server.validation import component_validator, first_error, schema_validator

STORED = {
    "_id": "p1", "status": "acknowledged", "href": "http://h/p1", "priority": 1, "@type": "ServiceProblem",
    "Zeta": 1, "alpha": [1, {"_inner": "kept: only top-level internal fields are dropped"}], "": "empty name",
    "_version": 3, "_statusByDate": "acknowledged|1", "_form": 4, "_": "underscore only",
}


@pytest.mark.parametrize("document", [
    STORED,
    {"_id": "p2"},
    {"_id": "p3", "href": "h", "_version": 1},
    {"_id": "", "b": 1, "a": 2, "B": 3, "@a": 4},
    {"href": "h", "_id": "p4", "note": None},
])
def test_to_api_equals_the_schema_load(document):
    expected = StoredResource().load(copy.deepcopy(document))
    presented = to_api(document)
    assert presented == expected
    assert list(presented) == list(expected)  # id, href, then the attributes in order


@pytest.mark.parametrize("document", [
    {"_id": b"bytes-id", "href": "h"},  # converted by the schema
    {"_id": "p5", "id": "stray", "status": "x"},  # a stray id key: the schema's rule decides
])
def test_to_api_leaves_unusual_documents_to_the_schema(document):
    assert to_api(document) == StoredResource().load(copy.deepcopy(document))


@pytest.mark.parametrize("document", [{"status": "no id"}, {"_id": None}, {"_id": 7}])
def test_to_api_refuses_what_the_schema_refuses(document):
    with pytest.raises(ValidationError) as expected:
        StoredResource().load(copy.deepcopy(document))
    with pytest.raises(ValidationError) as refused:
        to_api(document)
    assert refused.value.messages == expected.value.messages


REPRESENTATION = STORED_REPORT
REPLACEMENTS = [None, 1, -1, 1.5, "", "x", "not a date", "2026-13-01T00:00:00Z", "a b", [], {}, [1], [{}],
                [{"id": 1}], {"id": 2}, True, 10 ** 30]


def _variants(schema: dict):
    """The representation with each of its values (and each declared attribute) replaced by each replacement."""
    targets = [*list(paths(REPRESENTATION))[1:], *((name,) for name in schema.get("properties", {})), ("unknown",)]
    for path in targets:
        for replacement in REPLACEMENTS:
            variant = copy.deepcopy(REPRESENTATION)
            functools.reduce(operator.getitem, path[:-1], variant)[path[-1]] = replacement
            yield variant


@pytest.mark.parametrize("name", ["ServiceProblem", "ServiceProblem_Create", "ServiceProblem_Update"])
def test_written_out_references_validate_as_the_references_do(name):
    spec = load_spec()
    referenced = schema_validator({"components": spec["components"], "$ref": f"#/components/schemas/{name}"})
    written_out = component_validator(spec, name)
    assert "$ref" not in str({k: v for k, v in written_out.schema.items() if k != "components"})
    refused = 0
    for variant in _variants(spec["components"]["schemas"][name]):
        expected = [(e.message, list(e.absolute_path)) for e in referenced.iter_errors(variant)]
        assert [(e.message, list(e.absolute_path)) for e in written_out.iter_errors(variant)] == expected
        assert first_error(written_out, variant, "(resource)") == first_error(referenced, variant, "(resource)")
        refused += bool(expected)
    assert refused > 100  # the variants do exercise the errors


def _refusal(check) -> tuple[str, str] | None:
    try:
        check()
    except BadRequest as refused:
        return refused.code, refused.message
    return None


def test_checking_only_the_changed_attributes_refuses_what_the_whole_check_refuses():
    """A PATCH's result is checked against the stored report it changes: the same verdict, code and message as
    the whole check, over every variant of every attribute."""
    spec = load_spec()
    rules = ServiceProblemRules(spec, problem_catalog(spec))
    assert rules.check_result(REPRESENTATION) is None and rules.check_result(REPRESENTATION, REPRESENTATION) is None
    refused = 0
    for variant in _variants(spec["components"]["schemas"]["ServiceProblem"]):
        # What a PATCH names: each attribute it sets, also where == finds old and new equal (True and 1).
        named = {name for name in {*variant, *REPRESENTATION} if variant.get(name, KeyError) !=
                 REPRESENTATION.get(name, KeyError) or type(variant.get(name)) is not type(REPRESENTATION.get(name))}
        whole = _refusal(lambda: rules.check_result(variant))
        assert _refusal(lambda: rules.check_result(variant, REPRESENTATION, named)) == whole, (named, whole)
        # A patch that names more attributes than it changes is checked the same way.
        assert _refusal(lambda: rules.check_result(variant, REPRESENTATION, named | {"description", "absent"})) == whole
        refused += whole is not None
    assert refused > 100  # the variants do exercise the refusals


def test_a_recursive_reference_stays_a_reference():
    spec = {"components": {"schemas": {
        "Node": {"type": "object", "properties": {"name": {"type": "string"},
                                                  "child": {"$ref": "#/components/schemas/Node"}}}}}}
    validator = component_validator(spec, "Node")
    assert validator.schema["properties"]["child"] == {"$ref": "#/components/schemas/Node"}  # resolved as before
    assert first_error(validator, {"child": {"child": {"child": {"name": 1}}}}, "(resource)") == \
        "child/child/child/name: 1 is not of type 'string'"
    assert first_error(validator, {"child": {"child": {"name": "deep"}}}, "(resource)") is None


def _too_deep_at(pieces: list[bytes], limit: int) -> int | None:
    """The index of the piece in which the text gets nested deeper than `limit` (brackets in strings do not
    count), or None: the plain character-by-character reading."""
    depth, in_string, escaped = 0, False, False
    for index, piece in enumerate(pieces):
        for char in piece.decode("latin-1"):
            if in_string:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == '"':
                    in_string = False
            elif char == '"':
                in_string = True
            elif char in "[{":
                depth += 1
                if depth > limit:
                    return index
            elif char in "]}":
                depth -= 1
    return None


def test_nesting_depth_refuses_at_the_piece_the_plain_reading_does():
    rng = random.Random(656)
    refused = 0
    for _ in range(5000):
        limit = rng.randint(0, 8)
        text = bytes(rng.choice(b'[]{}"\\ab,:') for _ in range(rng.randint(0, 60)))
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(0, 4))))
        pieces = [text[start:end] for start, end in zip([0, *cuts], [*cuts, len(text)])]
        nesting = _NestingDepth(limit)
        answers = [nesting.feed(piece) for piece in pieces]
        expected = _too_deep_at(pieces, limit)
        assert (answers.index(False) if False in answers else None) == expected, (pieces, limit)
        refused += expected is not None
    assert refused > 500  # both outcomes are exercised
