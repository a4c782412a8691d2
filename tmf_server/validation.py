"""The server's JSON Schema checks: draft 4 with this module's own format checker.

jsonschema's draft 4 formats plus `uri`, on a checker of the server's own: nothing is registered on jsonschema's
global checker, so no result depends on which module happened to be imported first.
"""
from __future__ import annotations

import re

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


def schema_validator(schema: dict, validator_class=Draft4Validator):
    """A validator of `schema` (draft 4 by default) with the server's format checker."""
    return validator_class(schema, format_checker=FORMAT_CHECKER)


_COMPONENT = "#/components/schemas/"


def component_validator(spec: dict, name: str) -> Draft4Validator:
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


def first_error(validator: Draft4Validator, instance, root_name: str) -> str | None:
    """"where: what" of the most relevant error (the path inside `instance`, else `root_name`), or None if valid."""
    error = best_match(validator.iter_errors(instance))
    if error is None:
        return None
    return f"{'/'.join(str(p) for p in error.absolute_path) or root_name}: {error.message}"
