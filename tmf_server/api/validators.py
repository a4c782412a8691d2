"""Connexion validators whose messages say which parameter is wrong, and that leave to the handlers the rules
the served document marks `x-reported-by-server` (the handlers enforce the same rules with messages that name
the attribute and the rule, e.g. "id is set by the server" rather than "Additional properties are not allowed")."""
from __future__ import annotations

import re

from jsonschema import Draft4Validator

from connexion.validators import VALIDATOR_MAP, JSONRequestBodyValidator, MediaTypeDict, ParameterValidator

REPORTED_BY_SERVER = "x-reported-by-server"


def without_server_reported(schema):
    """The schema without the keywords each (sub)schema's `x-reported-by-server` list names."""
    if isinstance(schema, list):
        return [without_server_reported(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    dropped = schema.get(REPORTED_BY_SERVER, ())
    return {k: without_server_reported(v) for k, v in schema.items() if k not in dropped}


class NamedParameterValidator(ParameterValidator):
    """Connexion reports '0 is less than the minimum of 1'; this says 'limit: 0 is less than ...'."""

    @staticmethod
    def validate_parameter(parameter_type, value, param, param_name=None):
        if isinstance(param.get("schema"), dict) and REPORTED_BY_SERVER in param["schema"]:
            param = {**param, "schema": without_server_reported(param["schema"])}  # a new schema: the spec is kept
        error = ParameterValidator.validate_parameter(parameter_type, value, param, param_name)
        if error:
            sentence = str(error).split("\n\nFailed validating", 1)[0]
            return f"{parameter_type} parameter '{param['name']}': {sentence}"
        return error


class ServerReportingJSONBodyValidator(JSONRequestBodyValidator):
    """Validates a JSON body against its schema, except for the top-level keywords the handler reports."""

    def __init__(self, *, schema: dict, **kwargs) -> None:
        super().__init__(schema=without_server_reported(schema), **kwargs)


BODY_VALIDATORS = MediaTypeDict({**VALIDATOR_MAP["body"], "*/*json": ServerReportingJSONBodyValidator})


# `format: uri` (`@schemaLocation`, `href` in several schemas): jsonschema checks it only with an optional package
# this server does not install, so a request could store "" as a URI and then answer with a representation that
# breaks its own schema. An absolute URI (RFC 3986): a scheme, ':', then no spaces or control characters.
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\x00-\x20\x7f]*")


@Draft4Validator.FORMAT_CHECKER.checks("uri")
def is_uri(value) -> bool:
    return not isinstance(value, str) or _URI.fullmatch(value) is not None
