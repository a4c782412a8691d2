"""The official TMF656 v4.0.0 definitions, as the kit's measure of a valid resource, event or error."""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from jsonschema import Draft4Validator, FormatChecker

OFFICIAL_DOCUMENT = (Path(__file__).resolve().parent.parent.parent / "openapi" / "official"
                     / "TMF656-ServiceProblem-v4.0.0.swagger.json")
# Attributes any TMF resource may carry for polymorphism and extension (TMF630 Part 2).
EXTENSION_ATTRIBUTES = frozenset({"@type", "@baseType", "@schemaLocation"})


@cache
def definitions() -> dict:
    return json.loads(OFFICIAL_DOCUMENT.read_text())["definitions"]


@cache
def _validator(name: str) -> Draft4Validator:
    # Swagger 2 refs are "#/definitions/X": a schema carrying the definitions resolves them as they are.
    return Draft4Validator({"$ref": f"#/definitions/{name}", "definitions": definitions()},
                           format_checker=FormatChecker())


def violations(name: str, instance) -> list[str]:
    """What in `instance` breaks the official definition `name`, one line each, by attribute path."""
    found = []
    for error in sorted(_validator(name).iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        where = "/".join(str(part) for part in error.absolute_path) or "(the body)"
        found.append(f"{where}: {error.message}")
    return found


def undefined_attributes(name: str, instance: dict) -> list[str]:
    """First-level attributes `name` does not define. A resource that names its own schema in @schemaLocation
    (TMF630 polymorphism) may carry more."""
    if not isinstance(instance, dict) or instance.get("@schemaLocation"):
        return []
    known = set(definitions()[name]["properties"]) | EXTENSION_ATTRIBUTES
    return sorted(set(instance) - known)


def required(name: str) -> list[str]:
    return list(definitions()[name].get("required", []))


def attributes(name: str) -> set[str]:
    return set(definitions()[name]["properties"])
