"""Connexion validators whose messages say which parameter is wrong, and that leave to the handlers the rules
the served document marks `x-reported-by-server` (the handlers enforce the same rules with messages that name
the attribute and the rule, e.g. "id is set by the server" rather than "Additional properties are not allowed").
They check with the server's format checker (tmf_server/validation.py).
"""
from __future__ import annotations

import sys
import threading

from jsonschema import ValidationError
from connexion.json_schema import Draft4RequestValidator, Draft4ResponseValidator
from connexion.exceptions import BadRequestProblem
from connexion.utils import is_null, is_nullable
from connexion.validators import (VALIDATOR_MAP, JSONRequestBodyValidator, JSONResponseBodyValidator, MediaTypeDict,
                                  ParameterValidator)

from tmf_server.errors import BadRequest
from tmf_server.validation import schema_validator

REPORTED_BY_SERVER = "x-reported-by-server"
# A request schema marked so is answered with every problem found, not the first (the intake's listeners: a sender
# fixes its notification in one round).
REPORT_EVERY_ERROR = "x-report-every-error"


def without_server_reported(schema):
    """The schema without the keywords each (sub)schema's `x-reported-by-server` list names."""
    if isinstance(schema, list):
        return [without_server_reported(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    dropped = schema.get(REPORTED_BY_SERVER, ())
    return {k: without_server_reported(v) for k, v in schema.items() if k not in dropped}


class _BuiltOnce:
    """Connexion builds a validator per request; the schemas it passes are the same objects every time (those of
    the loaded document), so what is derived from one is built once and kept with the schema it came from."""

    def __init__(self, build):
        self._build = build
        self._built: dict[int, tuple[object, object]] = {}
        self._lock = threading.Lock()

    def __call__(self, schema):
        found = self._built.get(id(schema))
        if found is not None and found[0] is schema:
            return found[1]
        value = self._build(schema)
        with self._lock:
            self._built[id(schema)] = (schema, value)  # the schema is kept, so its id is never reused
        return value


_parameter_validator = _BuiltOnce(lambda schema: schema_validator(without_server_reported(schema)))
_request_body_validator = _BuiltOnce(
    lambda schema: schema_validator(without_server_reported(schema), Draft4RequestValidator))
_response_body_validator = _BuiltOnce(lambda schema: schema_validator(schema, Draft4ResponseValidator))


class NamedParameterValidator(ParameterValidator):
    """Connexion reports '0 is less than the minimum of 1'; this says 'limit: 0 is less than ...'."""

    @staticmethod
    def validate_parameter(parameter_type, value, param, param_name=None):
        if is_nullable(param) and is_null(value):
            return None
        if value is None:
            return f"Missing {parameter_type} parameter '{param['name']}'" if param.get("required") else None
        try:
            _parameter_validator(param.get("schema", param)).validate(value)
        except ValidationError as error:
            sentence = str(error).split("\n\nFailed validating", 1)[0]
            return f"{parameter_type} parameter '{param['name']}': {sentence}"
        return None


def _where(error: ValidationError) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p))
                   for i, p in enumerate(error.absolute_path)) or "(body)"


class ServerReportingJSONBodyValidator(JSONRequestBodyValidator):
    """Validates a JSON body against its schema, except for the keywords the handler reports."""

    @property
    def _validator(self):
        return _request_body_validator(self._schema)

    def _validate(self, body):
        if body is None or not self._schema.get(REPORT_EVERY_ERROR):
            return super()._validate(body)
        problems = sorted({f"{_where(e)}: {e.message}" for e in self._validator.iter_errors(body)})
        if problems:
            raise BadRequestProblem(detail="Invalid notification: " + "; ".join(problems))
        return body

    async def _parse(self, stream, scope):
        try:
            return await super()._parse(stream, scope)
        except UnicodeDecodeError:
            raise  # answered as a body that is not UTF-8 (errors.handle_unexpected)
        except ValueError:  # Python refuses to convert integers of more than 4,300 digits
            raise BadRequest(f"The request body holds a number of more than "
                             f"{sys.get_int_max_str_digits():,} digits; the store keeps 64-bit integers.",
                             code="invalidValue") from None


class FormatCheckingJSONResponseValidator(JSONResponseBodyValidator):
    """Response validation (TMF_VALIDATE_RESPONSES) with the server's format checker, built once per schema."""

    @property
    def validator(self):
        return _response_body_validator(self._schema)


BODY_VALIDATORS = MediaTypeDict({**VALIDATOR_MAP["body"], "*/*json": ServerReportingJSONBodyValidator})
RESPONSE_VALIDATORS = MediaTypeDict({**VALIDATOR_MAP["response"], "*/*json": FormatCheckingJSONResponseValidator})
