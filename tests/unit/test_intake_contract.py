"""openapi/intake.yaml states every rule of a single attribute that the intake's marshmallow schemas enforce
(tmf_server/intake/schemas.py), so that a notification the document allows is not refused for one attribute:
each attribute the server types is declared at the same place with the same type, the document requires exactly
what cannot be understood without (eventId, eventType, the resource object and its id) and nothing else, resource
identifiers are not blank, date-times have the format. No process needed."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from marshmallow import fields

from tmf_server.intake import schemas

INTAKE_SPEC = Path(__file__).resolve().parents[2] / "openapi" / "intake.yaml"
COMPONENTS = yaml.safe_load(INTAKE_SPEC.read_text(encoding="utf-8"))["components"]["schemas"]
LISTENERS = {"troubleTicket": "TroubleTicketEvent", "alarm": "AlarmEvent", "slaViolation": "SlaViolationEvent",
             "event": "QosDegradationEvent"}
RESOURCES = {"troubleTicket": "troubleTicket", "alarm": "alarm", "slaViolation": "slaViolation",
             "event": "qosDegradation"}
# docs/intake.md: what a notification cannot be understood without (a 400); everything else is optional.
CORE = {f"{source}.{path}" for source, resource in RESOURCES.items()
        for path in ("eventId", "eventType", "event", f"event.{resource}")} | \
    {f"{source}.event.{resource}.id" for source, resource in RESOURCES.items() if source != "event"}


def _resolve(schema: dict) -> dict:
    while "$ref" in schema:
        schema = COMPONENTS[schema["$ref"].rsplit("/", 1)[-1]]
    if "allOf" in schema:
        merged = {"type": "object", "properties": {}, "required": []}
        for part in map(_resolve, schema["allOf"]):
            merged["properties"].update(part.get("properties", {}))
            merged["required"] += part.get("required", [])
        return merged
    return schema


def _string_branch(schema: dict) -> dict:
    """The string schema of an attribute (an Identifier is a string or an integer)."""
    if "oneOf" in schema:
        return next(_resolve(s) for s in schema["oneOf"] if _resolve(s).get("type") == "string")
    return schema


def _attributes(schema_class, declared: dict, path: str):
    """(path, marshmallow field, declared schema, required in the document) for every typed attribute."""
    declared = _resolve(declared)
    properties = declared.get("properties", {})
    for name, field in schema_class._declared_fields.items():
        key = field.data_key or name
        where = f"{path}.{key}"
        schema = _resolve(properties[key]) if key in properties else None
        yield where, field, schema, key in declared.get("required", [])
        if schema is None:
            continue
        if isinstance(field, fields.Nested):
            yield from _attributes(field.nested, schema, where)
        elif isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
            yield from _attributes(field.inner.nested, schema.get("items", {}), where + "[]")


ATTRIBUTES = [attribute for source, name in LISTENERS.items()
              for attribute in _attributes(schemas.SCHEMAS[source], {"$ref": f"#/components/schemas/{name}"}, source)]


@pytest.mark.parametrize("path,field,schema,required", ATTRIBUTES, ids=[a[0] for a in ATTRIBUTES])
def test_every_attribute_the_intake_types_is_declared_with_its_rule(path, field, schema, required):
    assert schema is not None, f"{path} is typed by the server but not declared in openapi/intake.yaml"
    assert required == (path in CORE), \
        f"{path}: the document must require exactly what the intake cannot understand a notification without"
    if path in CORE:
        assert field.required, f"{path}: the server must require what the document requires"
    if isinstance(field, fields.List):
        assert schema.get("type") == "array", path
    elif isinstance(field, fields.Nested):
        assert schema.get("type") == "object", path
    elif isinstance(field, schemas.RefId):
        assert schema.get("type") == "string", f"{path}: a reference's id is a string, as the documents declare"
    elif isinstance(field, schemas.Identifier):
        text = _string_branch(schema)
        assert text.get("minLength") == 1 and text.get("pattern") == schemas.NON_BLANK, \
            f"{path}: an identifier must not be blank (schema Id)"
        assert "pattern" in text.get("x-reported-by-server", ()), f"{path}: the server reports a blank identifier"
    elif isinstance(field, schemas.DateTime):
        assert schema == {**schema, "type": "string", "format": "date-time"}, path
    elif isinstance(field, schemas.Measure):
        assert sorted(_resolve(s)["type"] for s in schema["oneOf"]) == ["number", "string"], path
    elif isinstance(field, fields.String):
        assert schema.get("type") == "string" or "enum" in schema, path
    elif isinstance(field, fields.Raw):
        assert "type" not in schema, f"{path}: any value"
    else:
        pytest.fail(f"{path}: a field type this test does not know: {type(field).__name__}")


def test_the_non_blank_pattern_is_what_str_strip_calls_white_space():
    """NON_BLANK lists the characters str.isspace() knows, explicitly, so that no regex dialect reads \\s
    differently: a string matches it exactly when strip() leaves something."""
    pattern = re.compile(schemas.NON_BLANK)
    differ = [hex(code) for code in range(0x110000) if (pattern.search(chr(code)) is None) != chr(code).isspace()]
    assert differ == []


@pytest.mark.parametrize("text,expected", [
    ("120", 120), (" 1.5e3 ", 1500), ("-0.25", -0.25), ("1e999", None), ("nan", None), ("Infinity", None),
    ("1_000", None), ("12 Mbit/s", None),
])
def test_only_finite_decimal_text_is_read_as_a_number(text, expected):
    assert schemas.number(text) == expected


@pytest.mark.parametrize("text", ["2026-11-20T18:00:00Z", "2026-11-20t18:00:00.123456789z", "2026-11-20T18:00:00Z\n",
                                  "0001-01-01T00:00:00-01:00", "9999-12-31T23:59:59+01:00"])
def test_every_rfc3339_date_time_in_the_stored_range_is_read(text):
    assert schemas.DateTime().deserialize(text).tzinfo is not None


@pytest.mark.parametrize("text", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00"])
def test_a_date_time_outside_the_stored_range_in_utc_is_refused_naming_the_rule(text):
    with pytest.raises(Exception, match="outside the years 0001 to 9999 in UTC"):
        schemas.DateTime().deserialize(text)
