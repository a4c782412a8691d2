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


def component_validator(spec: dict, name: str) -> Draft4Validator:
    """A validator of one schema of an OpenAPI document's components."""
    return schema_validator({"components": spec["components"], "$ref": f"#/components/schemas/{name}"})


def first_error(validator: Draft4Validator, instance, root_name: str) -> str | None:
    """"where: what" of the most relevant error (the path inside `instance`, else `root_name`), or None if valid."""
    error = best_match(validator.iter_errors(instance))
    if error is None:
        return None
    return f"{'/'.join(str(p) for p in error.absolute_path) or root_name}: {error.message}"
