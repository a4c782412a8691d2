"""The server's JSON Schema checks: draft 4 with this module's own format checker.

jsonschema's draft 4 formats plus `uri`, on a checker of the server's own: nothing is registered on jsonschema's
global checker, so no result depends on which module happened to be imported first.

Whether a value is valid is first asked of a compiled check (jsonschema_rs: 20 to 50 times faster on the server's bodies), built from
the same schema rewritten so that its verdict is jsonschema's (`_CompiledForm`); jsonschema itself decides, and
explains, only what the compiled check refuses, so every error message and its order is jsonschema's. A schema
using anything whose meaning was not shown to be the same in both is checked by jsonschema alone.
"""
from __future__ import annotations

import functools
import math
import re
from urllib.parse import unquote

import jsonschema_rs
from connexion.json_schema import Draft4RequestValidator
from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import best_match

# `format: uri` (`@schemaLocation`, `href` in several schemas): jsonschema checks it only with an optional package
# this server does not install, so a request could store "" as a URI and then answer with a representation that
# breaks its own schema. An absolute URI (RFC 3986): a scheme, ':', then no spaces or control characters.
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\x00-\x20\x7f]*")


def is_uri(value) -> bool:
    return not isinstance(value, str) or _URI.fullmatch(value) is not None


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())
    checker.checkers = {**Draft4Validator.FORMAT_CHECKER.checkers, "uri": (is_uri, ())}
    return checker


FORMAT_CHECKER = _format_checker()


def schema_validator(schema: dict, validator_class=Draft4Validator) -> "SchemaValidator":
    """A validator of `schema` (draft 4 by default) with the server's format checker."""
    return SchemaValidator(schema, validator_class)


class SchemaValidator:
    """jsonschema's verdicts and errors, with "valid" answered by a compiled check where the schema allows one.

    The compiled check only ever says "valid" sooner: when it refuses (or cannot read the value), jsonschema
    decides and explains, so messages, paths and the order of errors are exactly jsonschema's. Its "valid" is
    trusted because it cannot accept what jsonschema refuses: see _CompiledForm, and tests/unit/
    test_compiled_validation.py, which compares both over every served request body schema.

    Values are JSON values as json.loads or pymongo give them (dict with str keys, list, str, int, float, bool,
    None); a tuple would be read as an array by the compiled check and is not an array to jsonschema."""

    def __init__(self, schema: dict, validator_class=Draft4Validator):
        self.schema = schema
        self.explaining = validator_class(schema, format_checker=FORMAT_CHECKER)
        self.compiled = compiled_check(schema, validator_class)

    def accepted(self, instance) -> bool:
        """Whether the compiled check accepts `instance` (False: jsonschema decides)."""
        if self.compiled is None:
            return False
        try:
            return self.compiled.is_valid(instance)
        except Exception:  # noqa: BLE001 (a value it cannot read: a lone surrogate, a type JSON does not have)
            return False

    def is_valid(self, instance) -> bool:
        return self.accepted(instance) or self.explaining.is_valid(instance)

    def iter_errors(self, instance):
        return iter(()) if self.accepted(instance) else self.explaining.iter_errors(instance)

    def validate(self, instance) -> None:
        """Raises jsonschema's first ValidationError, as jsonschema's `validate` does."""
        if not self.accepted(instance):
            self.explaining.validate(instance)


# Validator classes whose keywords _CompiledForm knows: draft 4, and Connexion's request form of it, where `type`
# and `enum` also accept null in a schema marked `nullable` (or `x-nullable: true`).
_NULLABLE_BY_CLASS = {Draft4Validator: False, Draft4RequestValidator: True}


def compiled_check(schema: dict, validator_class=Draft4Validator):
    """A jsonschema_rs validator that accepts exactly what `validator_class` with the server's format checker
    accepts, or None when the schema uses something not shown to mean the same in both (jsonschema alone)."""
    nullable = _NULLABLE_BY_CLASS.get(validator_class)
    if nullable is None:
        return None
    try:
        form = _CompiledForm(schema, nullable)
        return jsonschema_rs.Draft4Validator(
            form.document, validate_formats=True, keywords={_PYTHON_PATTERN: _PythonPattern},
            formats={name: functools.partial(FORMAT_CHECKER.conforms, format=name) for name in form.formats})
    except Exception:  # noqa: BLE001 (_Unsupported, or a schema the compiled library refuses: jsonschema alone)
        return None


class _Unsupported(Exception):
    """The schema uses something whose meaning in jsonschema_rs was not shown to be jsonschema's."""


_PYTHON_PATTERN = "x-python-pattern"
_TYPES = frozenset({"array", "boolean", "integer", "null", "number", "object", "string"})
# Non-finite floats (Python's JSON parser reads NaN, Infinity and 1e999) are the one JSON value jsonschema_rs holds
# differently: no `type` accepts them (not even `number`) and `maximum` ignores them. Every compiled check also
# requires this schema, which refuses them anywhere, so that jsonschema decides every value holding one.
_FINITE_JSON = {"type": sorted(_TYPES - {"integer"}), "additionalProperties": {"$ref": "#/definitions/json"},
                "items": {"$ref": "#/definitions/json"}}
# Draft 4 keywords whose meaning is the same in both, for JSON values (strings are Unicode, so lengths count the
# same code points; numbers compare exactly in both, integers of any size included; draft 4 `integer` is an int,
# not 1.0, not True, in both; `required`, `properties`, `additionalProperties` compare names exactly). `pattern`
# and `format` are given to the compiled check as Python: the same `re.search` and the same format checker.
# jsonschema's other draft 4 keywords (multipleOf: float arithmetic; uniqueItems: equality of containers;
# patternProperties, dependencies) make a schema jsonschema's alone; any other key is an annotation to both.
_SUBSCHEMA = frozenset({"not"})
_SUBSCHEMA_OR_BOOLEAN = frozenset({"additionalProperties", "additionalItems"})
_SUBSCHEMA_LIST = frozenset({"allOf", "anyOf", "oneOf"})
_COUNT = frozenset({"minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties"})
_BOUND = frozenset({"minimum", "maximum"})
_EXCLUSIVE = frozenset({"exclusiveMinimum", "exclusiveMaximum"})


class _CompiledForm:
    """The schema for jsonschema_rs: every subschema reached from the root (through `$ref`s too) with only the
    keywords jsonschema validates with, each checked to mean the same in both; `pattern` as _PythonPattern;
    `nullable` written as a `null` type and a null enum value where the validator class reads it; every reference
    renamed into `definitions` (a reference's siblings are ignored in draft 4 by both, and dropped here). The root
    is `{"allOf": [schema, _FINITE_JSON]}`. Raises _Unsupported."""

    def __init__(self, schema: dict, nullable: bool):
        self._root = schema
        self._nullable = nullable
        self._names: dict[str, str] = {}
        self._pending: list[str] = []
        self.formats: set[str] = set()
        root = self._reference("#")
        definitions = {"json": _FINITE_JSON}
        while self._pending:
            pointer = self._pending.pop()
            definitions[self._names[pointer]] = self._schema(self._resolve(pointer), frozenset())
        self.document = {"allOf": [root, {"$ref": "#/definitions/json"}], "definitions": definitions}

    def _resolve(self, pointer: str):
        node = self._root
        fragment = unquote(pointer[1:]).lstrip("/")
        for part in fragment.split("/") if fragment else ():
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                raise _Unsupported(f"unresolvable reference {pointer}")
        return node

    def _reference(self, pointer) -> dict:
        if not isinstance(pointer, str) or not pointer.startswith("#"):
            raise _Unsupported(f"reference {pointer!r} outside the document")
        if pointer not in self._names:
            self._names[pointer] = f"s{len(self._names)}"
            self._pending.append(pointer)
        return {"$ref": f"#/definitions/{self._names[pointer]}"}

    def _schema(self, node, inside: frozenset[int]) -> dict:
        if not isinstance(node, dict):
            raise _Unsupported(f"a schema that is not an object: {node!r}")
        if id(node) in inside:
            raise _Unsupported("a schema that contains itself")  # a resolved recursive reference
        if "$ref" in node:
            return self._reference(node["$ref"])
        if isinstance(node.get("id"), str):
            raise _Unsupported("draft 4 `id` changes the base of references")
        inside = inside | {id(node)}
        out = {}
        for key, value in node.items():
            if key not in Draft4Validator.VALIDATORS:
                continue  # an annotation to both
            out[key] = self._keyword(key, value, inside)
        if self._nullable and (node.get("x-nullable") is True or node.get("nullable")):
            if "type" in out:
                out["type"] = [*out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        if "pattern" in out:
            out[_PYTHON_PATTERN] = out.pop("pattern")
        return out

    def _keyword(self, key: str, value, inside: frozenset[int]):
        if key in _SUBSCHEMA:
            return self._schema(value, inside)
        if key in _SUBSCHEMA_OR_BOOLEAN:
            return value if isinstance(value, bool) else self._schema(value, inside)
        if key in _SUBSCHEMA_LIST and isinstance(value, list) and value:
            return [self._schema(item, inside) for item in value]
        if key == "items":
            return [self._schema(item, inside) for item in value] if isinstance(value, list) \
                else self._schema(value, inside)
        if key == "properties" and isinstance(value, dict):
            return {_name(name): self._schema(item, inside) for name, item in value.items()}
        if key == "type":
            names = [value] if isinstance(value, str) else value
            if isinstance(names, list) and names and all(name in _TYPES for name in names):
                return list(names)
        elif key == "enum":
            if isinstance(value, list) and value and all(
                    item is None or isinstance(item, (str, bool)) or _is_int(item) for item in value):
                return list(value)
        elif key == "required":
            if isinstance(value, list) and value and all(isinstance(name, str) for name in value):
                return [_name(name) for name in value]
        elif key in _COUNT:
            if _is_int(value) and value >= 0:
                return value
        elif key in _BOUND:
            if _is_int(value) or (isinstance(value, float) and math.isfinite(value)):
                return value
        elif key in _EXCLUSIVE:
            if isinstance(value, bool):
                return value
        elif key == "pattern":
            if isinstance(value, str):
                re.compile(value)  # jsonschema would fail on it at the first string: so does the build
                return value
        elif key == "format":
            if isinstance(value, str) and _format_ignores_other_types(value):
                self.formats.add(value)
                return value
        raise _Unsupported(f"{key}: {value!r}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _name(name) -> str:
    """A property name both libraries compare as the same text (a lone surrogate cannot be given to the compiled
    check, and U+FFFD is what lossy conversions make of one)."""
    if not isinstance(name, str) or "\ufffd" in name or re.search("[\ud800-\udfff]", name):
        raise _Unsupported(f"property name {name!r}")
    return name


@functools.cache
def _format_ignores_other_types(name: str) -> bool:
    """jsonschema asks the format checker about values of every type, jsonschema_rs only about strings: the same
    verdict when the checker passes every value that is not a string (as each of jsonschema's and `uri` do)."""
    return all(FORMAT_CHECKER.conforms(value, name) for value in (0, -1.5, 10 ** 30, True, False, None, [], {}, ["x"],
                                                                   {"a": "x"}))


class _PythonPattern:
    """`pattern` as jsonschema checks it: Python's `re.search`, not the compiled library's regular expressions
    (ECMA 262: its `\\s` matches U+FEFF, `$` does not match before a final newline, ...)."""

    def __init__(self, _parent_schema, value: str, _schema_path):
        self._search = re.compile(value).search

    def validate(self, instance) -> None:
        if isinstance(instance, str) and self._search(instance) is None:
            raise ValueError("does not match the pattern")


_COMPONENT = "#/components/schemas/"


def component_validator(spec: dict, name: str) -> SchemaValidator:
    """A validator of one schema of an OpenAPI document's components, with the references to other components
    written out in place: jsonschema resolves a `$ref` at every step of every validation (a patched ServiceProblem
    took about twice as long with them). Draft 4 ignores a `$ref`'s siblings, and so does the written-out form;
    a reference that would recurse stays a `$ref`, resolved in the document's components."""
    schemas = spec["components"]["schemas"]
    return schema_validator({"components": spec["components"], **_inlined(schemas[name], schemas, (name,))})


def _inlined(node, schemas: dict, expanding: tuple[str, ...]):
    if isinstance(node, list):
        return [_inlined(item, schemas, expanding) for item in node]
    if not isinstance(node, dict):
        return node
    reference = node.get("$ref")
    if isinstance(reference, str) and reference.startswith(_COMPONENT):
        name = reference[len(_COMPONENT):]
        if name in schemas and name not in expanding:
            return _inlined(schemas[name], schemas, (*expanding, name))
        return node
    return {key: _inlined(value, schemas, expanding) for key, value in node.items()}


def first_error(validator: SchemaValidator, instance, root_name: str) -> str | None:
    """"where: what" of the most relevant error (the path inside `instance`, else `root_name`), or None if valid."""
    if validator.accepted(instance):
        return None
    error = best_match(validator.explaining.iter_errors(instance))
    if error is None:
        return None
    return f"{'/'.join(str(p) for p in error.absolute_path) or root_name}: {error.message}"
