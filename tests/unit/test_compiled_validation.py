"""The compiled check (`validation.SchemaValidator`, jsonschema_rs) never accepts what jsonschema refuses, on every
schema the server validates with: each request body schema of the served documents, as the server loads and
builds them, the parameters' schemas, and the ServiceProblem / ServiceProblem_Create component validators (and
the per-attribute validators of the result check). Compared over bodies generated from the documents (schemathesis,
valid and invalid ones) and over realistic bodies with every value replaced by each of a list of known traps
(1.0 for 1, True for 1, NaN, integers beyond 64 bits, impossible or lowercase dates, leap seconds, URIs with spaces,
Unicode digits and white space against patterns, a final newline against `$`, deep nesting, missing and extra
attributes). For plain JSON (finite numbers, no lone surrogates) the two verdicts must be equal, so the compiled
check is shown to decide, not merely to refuse."""
from __future__ import annotations

import copy
import functools
import math
import operator
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.intake.support import alarm_event, degradation_event, sla_violation_event, ticket_event
from tests.support.documents import STORED_REPORT, paths
from tests.support.schemas import DOCUMENTS, body_schema, resolved, served
from tmf_server.api.validators import BODY_VALIDATORS, ServerReportingJSONBodyValidator, _parameter_validator, \
    _request_body_validator
from tmf_server.app import load_spec
from tmf_server.bench.bodies import report
from tmf_server.problems.repository import problem_catalog
from tmf_server.problems.rules import ServiceProblemRules
from tmf_server.validation import SchemaValidator, compiled_check, component_validator, schema_validator


@functools.cache
def _body_validators(name: str) -> dict[tuple[str, str, str], SchemaValidator]:
    """(path, method, media type) -> the validator the server builds for that request body."""
    return {(template, method.upper(), media_type): _request_body_validator(body_schema(name, template, method,
                                                                                        media_type))
            for template, item in resolved(name)["paths"].items() for method, operation in item.items()
            for media_type, content in operation.get("requestBody", {}).get("content", {}).items()
            if BODY_VALIDATORS.get(media_type) is ServerReportingJSONBodyValidator and "schema" in content}


@functools.cache
def _parameter_validators(name: str) -> dict[tuple[str, str, str], SchemaValidator]:
    spec = resolved(name)
    return {(template, method.upper(), parameter["name"]): _parameter_validator(parameter.get("schema", parameter))
            for template, item in spec["paths"].items() for method, operation in item.items()
            if isinstance(operation, dict) for parameter in (*item.get("parameters", ()),
                                                             *operation.get("parameters", ()))}


def _plain(value) -> bool:
    """JSON the compiled check reads as jsonschema does: no NaN or Infinity, no lone surrogate."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return re.search("[\ud800-\udfff]", value) is None
    if isinstance(value, dict):
        return all(_plain(key) and _plain(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_plain(item) for item in value)
    return True


def _same_verdict(validator: SchemaValidator, instance, where) -> bool:
    """Fails when the compiled check accepts what jsonschema refuses, or (plain JSON) when the verdicts differ.
    Returns jsonschema's verdict."""
    valid = validator.explaining.is_valid(instance)
    accepted = validator.accepted(instance)
    assert not (accepted and not valid), (where, "the compiled check accepts what jsonschema refuses", instance,
                                          [e.message for e in validator.explaining.iter_errors(instance)])
    if _plain(instance):
        assert accepted == valid, (where, "the compiled check refuses plain JSON that jsonschema accepts", instance)
    assert validator.is_valid(instance) == valid
    assert [e.message for e in validator.iter_errors(instance)] == \
        [e.message for e in validator.explaining.iter_errors(instance)]
    return valid


def _nested(depth: int):
    value = "leaf"
    for level in range(depth):
        value = {"a": value} if level % 2 else [value]
    return value


# Values each attribute and each entry is replaced by: the traps of draft 4 types, numbers JSON allows and the
# compiled library reads differently, dates and URIs at the edges of the format checker's rules, strings against
# patterns whose Python and ECMA 262 meanings differ, and containers.
TRAPS = [
    None, True, False, 0, 1, 1.0, -1, 2.0, 1.5, 1e20, 2 ** 53 + 1, 2 ** 63, 2 ** 64 + 1, -2 ** 70, 1e308,
    float("nan"), float("inf"), float("-inf"),
    "", " ", "x", "1", "\u0663", "\u0661\u0662", "x\n", "ServiceProblem\n", "QosDegradationProblem", "Foo\u0663Problem",
    "\ufeff", "\x1c", "\u200b", "\u3000", "\ud800", "id\n", "\ufeffid", "id,\x1cname", "-creationDate\n",
    "2024-02-30T00:00:00Z", "2024-01-01t00:00:00z", "2016-12-31T23:59:60Z", "2024-01-01T00:00:60Z",
    "2024-01-01T00:00:00+25:00", "2024-01-01 00:00:00Z", "2024-01-01T00:00:00", "2024-01-01T00:00:00.123456789Z",
    "2024-01-01T00:00:00\u0663Z", "2026-11-20T18:00:00Z\n",
    "http://a b", "http://example.com/x", "urn:x", "x:", "1http://x", "http://x\x7f", "https://h/\u00e9", "https://h\n",
    [], [1], [None], [{}], [1.0], {}, {"id": 1}, {"id": "x", "name": 1}, {"id": 1.0}, _nested(40),
]


def _variants(instance):
    """`instance` with each value replaced by each trap, each attribute removed, and an unknown attribute added
    to each object."""
    for path in paths(instance):
        parent = functools.reduce(operator.getitem, path[:-1], instance) if path else None
        for trap in TRAPS:
            if not path:
                yield trap
                continue
            variant = copy.deepcopy(instance)
            functools.reduce(operator.getitem, path[:-1], variant)[path[-1]] = trap
            yield variant
        target = functools.reduce(operator.getitem, path, instance)
        if isinstance(parent, dict):
            variant = copy.deepcopy(instance)
            del functools.reduce(operator.getitem, path[:-1], variant)[path[-1]]
            yield variant
        if isinstance(target, dict):
            variant = copy.deepcopy(instance)
            functools.reduce(operator.getitem, path, variant)["unknownAttribute"] = 1
            yield variant


REPRESENTATION = {**STORED_REPORT, "@type": "QosDegradationProblem",
                  "@schemaLocation": "https://example.com/qos.json"}
CREATE = {key: value for key, value in REPRESENTATION.items()
          if key not in {"id", "href", "creationDate", "lastUpdate", "statusChangeDate", "trackingRecord"}}
INTAKE_BODIES = {
    "/troubleTicketEvent": ticket_event(customer_id="C1", product_id="P1", event_id="e1", ticket_id="T1"),
    "/alarmEvent": alarm_event(alarm_id="A1", customer_id="C1", service_id="S1", event_id="e2", alarmed_object="o"),
    "/slaViolationEvent": sla_violation_event(customer_id="C1", service_id="S1", event_id="e3"),
    "/event": degradation_event(customer_id="C1", service_id="S1", event_id="e4"),
}


def _examples(name: str, key: tuple[str, str, str]) -> list:
    template, method, media_type = key
    if name == "intake":
        return [INTAKE_BODIES[template]] if template in INTAKE_BODIES else []
    if (template, method) == ("/serviceProblem", "POST"):
        return [report(1, "a"), report(2, "b", complete=False), {**report(3, "c"), "@type": "QosDegradationProblem",
                                                                  "@schemaLocation": "https://e/x.json"}]
    if template == "/serviceProblem/{id}" and media_type == "application/json-patch+json":
        return [[{"op": "replace", "path": "/priority", "value": 2}, {"op": "move", "from": "/note", "path": "/note"}]]
    if template == "/serviceProblem/{id}":
        return [{"priority": 2, "description": "x", "note": None, "@type": "QosDegradationProblem",
                 "responsibleParty": {"id": "q"}}]
    if template == "/hub":
        return [{"callback": "https://listener.example.com/hook", "query": "eventType=ServiceProblemCreateEvent",
                 "secret": "s"}]
    if template in ("/problemAcknowledgement", "/problemUnacknowledgement"):
        return [{"problem": [{"id": "p1", "href": "http://h/p1"}],
                 "trackingRecord": {"description": "d", "time": "2026-11-30T08:04:22.181Z"}}]
    if template in ("/problemGroup", "/problemUngroup"):
        return [{"parentProblem": {"id": "p1", "href": "http://h/p1"}, "childProblem": [{"id": "p2"}]}]
    return []


def _served_bodies():
    return [(name, key) for name in DOCUMENTS for key in _body_validators(name)]


def test_every_request_body_schema_and_the_write_path_checks_are_compiled():
    """The fast path is in use where it matters: a schema falling back to jsonschema alone would still be correct,
    but slow, and would go unnoticed."""
    for name, key in _served_bodies():
        assert _body_validators(name)[key].compiled is not None, (name, key)
    assert ("/serviceProblem", "POST", "application/json") in _body_validators("tmf656")
    assert ("/troubleTicketEvent", "POST", "application/json") in _body_validators("intake")
    spec = load_spec()
    for component in ("ServiceProblem", "ServiceProblem_Create"):
        assert component_validator(spec, component).compiled is not None
    parts = ServiceProblemRules(spec, problem_catalog(spec))._parts
    assert all(v.compiled is not None for v in (*parts.whole.values(), *parts.entries.values()))


@pytest.mark.parametrize(("name", "key"), _served_bodies(), ids=lambda value: str(value))
def test_request_bodies_with_traps_get_jsonschemas_verdict(name, key):
    validator = _body_validators(name)[key]
    examples = _examples(name, key)
    verdicts = [_same_verdict(validator, variant, (name, key)) for example in examples
                for variant in _variants(example)]
    if examples:
        assert all(_same_verdict(validator, example, key) for example in examples if key[1] == "POST"
                   and key[0] in ("/serviceProblem", *INTAKE_BODIES))  # the realistic bodies are valid
        assert verdicts.count(False) > 20 and verdicts.count(True) > 5  # the variants exercise both verdicts


@pytest.mark.parametrize("component", ["ServiceProblem", "ServiceProblem_Create"])
def test_component_validators_with_traps_get_jsonschemas_verdict(component):
    """The result check of creates, patches and intake appends (ServiceProblem, whole and per attribute) and the
    intake's check of what it converts (ServiceProblem_Create)."""
    spec = load_spec()
    validator = component_validator(spec, component)
    example = REPRESENTATION if component == "ServiceProblem" else CREATE
    assert _same_verdict(validator, example, component)
    verdicts = [_same_verdict(validator, variant, component) for variant in _variants(example)]
    assert verdicts.count(False) > 100 and verdicts.count(True) > 20
    if component == "ServiceProblem":
        parts = ServiceProblemRules(spec, problem_catalog(spec))._parts
        for attribute, value in REPRESENTATION.items():
            for variant in _variants({attribute: value}):
                if isinstance(variant, dict) and attribute in variant:
                    if attribute in parts.whole:
                        _same_verdict(parts.whole[attribute], variant[attribute], attribute)
                    if attribute in parts.entries and isinstance(variant[attribute], list):
                        for entry in variant[attribute]:
                            _same_verdict(parts.entries[attribute], entry, attribute)


def test_parameters_get_jsonschemas_verdict():
    """Query and path parameters (values as Connexion converts them: strings, integers): `fields` and `sort`
    have patterns with `\\s` and `$`, `offset` a maximum of 2**63 - 1."""
    checked = 0
    for name in DOCUMENTS:
        for key, validator in _parameter_validators(name).items():
            assert validator.compiled is not None, (name, key)
            for trap in [*TRAPS, "id,name", " id , -name ", "none", "creationDate", "+priority,-creationDate",
                         "id,\u00a0name", "id,\ufeffname", "id\u2028", 2 ** 63 - 1, 2 ** 63, 1000, 1001]:
                _same_verdict(validator, trap, (name, key))
                checked += 1
    assert checked > 500


def _generated_cases(name: str):
    schema = schemathesis.openapi.from_dict(served(name))
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.body:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                yield pytest.param(name, operation, mode, id=f"{name}-{operation.method}-{operation.path}-{mode.value}")


@pytest.mark.parametrize(("name", "operation", "mode"),
                         [case for name in DOCUMENTS for case in _generated_cases(name)])
def test_generated_bodies_get_jsonschemas_verdict(name, operation, mode):
    """Bodies schemathesis draws from the served document (valid ones, and ones made invalid on purpose), each
    also with its values replaced by a few traps."""
    validators = _body_validators(name)
    checked = []

    @settings(max_examples=8, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(operation.as_strategy(generation_mode=mode))
    def check(case):
        key = (operation.path, operation.method.upper(), case.media_type)
        if key not in validators or not isinstance(case.body, (dict, list)):
            return
        validator = validators[key]
        _same_verdict(validator, case.body, key)
        for index, path in enumerate(list(paths(case.body))[1:40]):
            trap = TRAPS[(index * 7 + len(checked)) % len(TRAPS)]
            variant = copy.deepcopy(case.body)
            functools.reduce(operator.getitem, path[:-1], variant)[path[-1]] = trap
            _same_verdict(validator, variant, key)
        checked.append(key)

    check()
    assert checked, "no body was generated for this operation"


@pytest.mark.parametrize(("schema", "instance", "valid"), [
    ({"type": "integer"}, 1.0, False),  # draft 4: 1.0 is a number, not an integer
    ({"type": "integer"}, True, False),
    ({"type": "number"}, False, False),
    ({"type": "integer", "maximum": 2 ** 63 - 1}, 2 ** 63, False),
    ({"maximum": 5}, float("inf"), False),  # jsonschema_rs alone would accept this
    ({"not": {"type": "number"}}, float("nan"), False),  # and this
    ({"type": "number"}, float("nan"), True),  # refused by the compiled check, accepted by jsonschema
    ({"pattern": "^\\s$"}, "\ufeff", False),  # ECMA 262 \s matches U+FEFF, Python's does not
    ({"pattern": "^a$"}, "a\n", True),  # Python's $ matches before a final newline
    ({"pattern": "^\\d$"}, "\u0663", True),  # Python's \d is any Unicode digit
    ({"format": "date-time"}, "2024-01-01t00:00:00z", True),  # as the server's format checker says
    ({"format": "date-time"}, "2024-02-30T00:00:00Z", False),
    ({"format": "uri"}, "http://a b", False),
    ({"format": "uri"}, 5, True),
    ({"type": "string"}, "\ud800", True),  # the compiled check cannot read it: jsonschema decides
    ({"type": "array"}, [1, [2, {"a": float("inf")}]], True),
    ({"maxLength": 1}, "\U0001d11e", True),  # one code point (two UTF-16 units)
    ({"maxLength": 1}, "e\u0301", False),  # two code points
    ({"enum": [1]}, True, False),
    ({"enum": [1]}, 1.0, True),
    ({"$ref": "#/definitions/any", "type": "string", "definitions": {"any": {}}}, 1, True),  # siblings ignored
    ({"required": ["a"], "additionalProperties": False, "properties": {"a": {}}}, {"a": 1, "\ud800": 1}, False),
])
def test_known_traps(schema, instance, valid):
    validator = schema_validator(schema)
    assert validator.compiled is not None
    assert _same_verdict(validator, instance, schema) is valid


def test_nullable_is_read_as_connexion_reads_it_in_request_bodies():
    from connexion.json_schema import Draft4RequestValidator
    schema = {"type": "object", "properties": {
        "a": {"type": "string", "nullable": True}, "b": {"type": "string", "x-nullable": True},
        "c": {"type": "string", "x-nullable": "yes"}, "d": {"enum": ["x"], "nullable": True}, "e": {"type": "string"}}}
    request = schema_validator(schema, Draft4RequestValidator)
    plain = schema_validator(schema)
    assert request.compiled is not None and plain.compiled is not None
    for attribute, valid in {"a": True, "b": True, "c": False, "d": True, "e": False}.items():
        assert _same_verdict(request, {attribute: None}, attribute) is valid
        assert _same_verdict(plain, {attribute: None}, attribute) is (attribute == "d" and False)


@pytest.mark.parametrize("schema", [
    {"uniqueItems": True}, {"multipleOf": 0.1}, {"patternProperties": {"a": {}}}, {"dependencies": {"a": ["b"]}},
    {"properties": {"a": {"id": "http://x/", "type": "string"}}}, {"$ref": "http://example.com/schema.json"},
    {"enum": [1.5]}, {"type": "strin"}, {"pattern": "("}, {"items": True},
])
def test_what_is_not_shown_to_mean_the_same_is_left_to_jsonschema(schema):
    assert compiled_check(schema) is None
    assert schema_validator(schema).compiled is None


def test_a_schema_that_contains_itself_is_left_to_jsonschema():
    node = {"type": "object", "properties": {}}
    node["properties"]["child"] = node  # what resolving a recursive $ref in place makes
    assert compiled_check(node) is None
    recursive = {"components": {"schemas": {"Node": {"type": "object", "properties": {
        "child": {"$ref": "#/components/schemas/Node"}, "name": {"type": "string"}}}}},
        "$ref": "#/components/schemas/Node"}
    validator = schema_validator(recursive)
    assert validator.compiled is not None  # a reference is compiled as a reference
    assert not _same_verdict(validator, {"child": {"child": {"name": 1}}}, "recursive")
    assert _same_verdict(validator, {"child": {"child": {"name": "x"}}}, "recursive")
