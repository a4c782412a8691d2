"""Domain errors and the one mapping of every failure to a TMF630 Error body."""
from __future__ import annotations

import json
import logging
from typing import Callable

from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionResponse
from pymongo.errors import ConnectionFailure
from starlette.exceptions import HTTPException

from tmf_server import metrics

log = logging.getLogger(__name__)

REASONS = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 408: "Request Timeout", 409: "Conflict", 412: "Precondition Failed",
    413: "Payload Too Large", 414: "URI Too Long", 415: "Unsupported Media Type", 422: "Unprocessable Entity",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ApiError(Exception):
    """A failure the client can act on; carries the HTTP status and the TMF Error fields."""

    status = 500
    code = "internalError"

    def __init__(self, message: str, *, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.headers = headers or {}


class BadRequest(ApiError):
    status, code = 400, "invalidRequest"


class Unauthorized(ApiError):
    """401: no valid credentials. `challenge` is the WWW-Authenticate value (RFC 6750)."""

    status, code = 401, "invalidToken"

    def __init__(self, message: str, *, challenge: str, code: str | None = None):
        super().__init__(message, code=code, headers={"WWW-Authenticate": challenge})


class Forbidden(ApiError):
    status, code = 403, "insufficientScope"


class NotFound(ApiError):
    status, code = 404, "notFound"


class RequestTimeout(ApiError):
    status, code = 408, "requestTimeout"


class Conflict(ApiError):
    status, code = 409, "conflict"


class PreconditionFailed(ApiError):
    status, code = 412, "preconditionFailed"


class PayloadTooLarge(ApiError):
    status, code = 413, "payloadTooLarge"


class UriTooLong(ApiError):
    status, code = 414, "uriTooLong"


class UnprocessableEntity(ApiError):
    status, code = 422, "unprocessableEntity"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupportedMediaType"


class ServiceUnavailable(ApiError):
    status, code = 503, "serviceUnavailable"


def error_body(status: int, code: str, message: str) -> dict:
    return {
        "code": code,
        "reason": REASONS.get(status, "Error"),
        "message": message,
        "status": str(status),
        "@type": "Error",
    }


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> ConnexionResponse:
    return ConnexionResponse(
        status_code=status,
        mimetype="application/json",
        content_type="application/json",
        body=json.dumps(error_body(status, code, message), separators=(",", ":")),
        headers=headers or {},
    )


# Connexion's problem titles name the framework's failure; these codes name it for TMF clients.
_PROBLEM_CODES = {400: "invalidRequest", 401: "missingToken", 403: "forbidden", 404: "notFound", 405: "methodNotAllowed", 413: "payloadTooLarge",
                  415: "unsupportedMediaType", 500: "internalError"}


def handle_api_error(_request, exc: ApiError) -> ConnexionResponse:
    return error_response(exc.status, exc.code, exc.message, exc.headers)


def make_http_exception_handler(allowed_methods: Callable[[str], list[str] | None]):
    """Connexion's and Starlette's HTTP errors as TMF Errors; a 405 names the methods the contract allows."""

    def handle_http_exception(request, exc: HTTPException) -> ConnexionResponse:
        status = exc.status_code
        if isinstance(exc, ProblemException):
            message = exc.detail or exc.title or REASONS.get(status, "Error")
        elif status == 404:
            message = f"No resource or operation at {request.url.path}."
        else:
            message = exc.detail if exc.detail and exc.detail != REASONS.get(status) else REASONS.get(status, "Error")
        headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() not in ("content-type", "allow")}
        if status == 401:  # Connexion's own 401s: no bearer token, or a malformed Authorization header
            headers["WWW-Authenticate"] = "Bearer"
        if status == 405:
            methods = allowed_methods(request.url.path) or []
            headers["Allow"] = ", ".join(methods)
            message = f"{request.method} is not allowed here; allowed: {', '.join(methods)}."
        return error_response(status, _PROBLEM_CODES.get(status, f"http{status}"), str(message), headers)

    return handle_http_exception


def make_unavailable_handler(retry_after: int):
    def handle_database_unavailable(_request, exc: ConnectionFailure) -> ConnexionResponse:
        metrics.database_unreachable("api")
        log.warning("database unreachable: %s", exc)
        return error_response(503, "serviceUnavailable",
                              "The database cannot be reached; retry later.",
                              {"Retry-After": str(retry_after)})
    return handle_database_unavailable


def handle_unexpected(_request, exc: Exception) -> ConnexionResponse:
    if isinstance(exc, UnicodeDecodeError):  # Connexion decodes the request body before any handler runs
        return error_response(400, "invalidRequest", f"The request body is not valid {exc.encoding.upper()}: "
                                                     f"{exc.reason} at byte {exc.start}.")
    log.error("unhandled error", exc_info=exc)
    return error_response(500, "internalError", "The server failed to handle the request.")
