"""create_app(settings): the Connexion app, its API, error handlers and storage."""
from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
from pathlib import Path

import connexion
import yaml
from connexion.apps.flask import FlaskOperation
from connexion.decorators import FlaskDecorator
from connexion.exceptions import ProblemException
from connexion.jsonifier import Jsonifier
from connexion.middleware import ConnexionMiddleware, MiddlewarePosition
from connexion.middleware.response_validation import ResponseValidationMiddleware
from connexion.middleware.security import SecurityMiddleware
from connexion.operations import OpenAPIOperation
from connexion.datastructures import MediaTypeDict
from pymongo.errors import ConnectionFailure, PyMongoError
from starlette.exceptions import HTTPException

from tmf_server import errors, logs
from tmf_server.api.context import EXTENSION_KEY, request_user
from tmf_server.api.validators import BODY_VALIDATORS, RESPONSE_VALIDATORS, NamedParameterValidator
from tmf_server.head_requests import HeadAsGet
from tmf_server.limits import BodySizeLimit, RejectUnservableUrls, RequestGuard, RequireContentType
from tmf_server.monitoring import Monitoring, Readiness
from tmf_server.security.contract import served_document, startup_problem
from tmf_server.security.enforcement import IntakeSignatureCheck, security_map, validator_from
from tmf_server.settings import Settings
from tmf_server.wiring import build_services
from tmf_server.wsgi_bridge import BufferedWSGIBridge

log = logging.getLogger(__name__)

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi" / "tmf656-v4.yaml"
ADMIN_SPEC_PATH = SPEC_PATH.with_name("admin.yaml")  # the operators' API of event delivery
INTAKE_SPEC_PATH = SPEC_PATH.with_name("intake.yaml")  # listeners for other TM Forum systems' events


def load_spec(path: Path = SPEC_PATH) -> dict:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def state_limit(spec: dict, max_limit: int) -> dict:
    """The served document states the configured page-size maximum (TMF_MAX_LIMIT) on every `limit` parameter."""
    candidates = list((spec.get("components") or {}).get("parameters", {}).values())
    for item in spec["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict):
                candidates.extend(operation.get("parameters", ()))
    for parameter in candidates:
        if parameter.get("name") == "limit" and parameter.get("in") == "query" and "schema" in parameter:
            parameter["schema"]["maximum"] = max_limit
    return spec


def allowed_methods_of(*specs: dict):
    """Request path -> the methods the served documents declare for it (for 405 Allow headers)."""
    routes = []
    for spec in specs:
        base = spec["servers"][0]["url"].rstrip("/")
        for template, item in spec["paths"].items():
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(base + template))
            methods = [m.upper() for m in item if m in ("get", "put", "post", "delete", "patch")]
            routes.append((re.compile(f"^{pattern}/?$"), methods))

    def allowed(path: str) -> list[str] | None:
        return next((methods for pattern, methods in routes if pattern.match(path)), None)

    return allowed


class OneBodyTypeOperation(OpenAPIOperation):
    """Connexion 3.3 logs "this operation accepts multiple content types" each time it reads the body definition
    of an operation that declares several media types (the PATCH: merge patch, JSON Patch, JSON), seven times per
    request, even when it is given the request's own type. Here the choice is never ambiguous: the request's type
    when known, else the first declared (only used for parameter parsing, which no body type changes)."""

    def body_definition(self, content_type: str | None = None) -> dict:
        if not self.request_body:
            return {}
        content = MediaTypeDict(self.request_body.get("content", {}))
        return self.with_definitions(content.get(content_type or self.consumes[0], {}))


class DecoratedOnce:
    """A Flask view of one operation that Connexion's FlaskOperation would decorate on every request (a new
    decorator, `functools.wraps` three times, the handler's signature inspected, a URI parser built from the
    operation's parameters: about 5 % of the server's CPU on a read by id). The decorated handler is built once;
    the URI parser once, at the first request, when Connexion's context names the operation (the same one at
    every request of this view). Each request still gets its own request object and arguments."""

    def __init__(self, operation: FlaskOperation):
        decorator = FlaskDecorator(pythonic_params=operation.pythonic_params, jsonifier=operation.jsonifier)
        self.framework = decorator.framework
        self.decorated = decorator.decorate(operation._fn)  # noqa: SLF001 (Connexion's handler of the operation)
        self.uri_parser_of = lambda: decorator.uri_parser
        self.uri_parser = None
        functools.update_wrapper(self, operation)

    def __call__(self, *_args, **_kwargs):
        if self.uri_parser is None:
            self.uri_parser = self.uri_parser_of()
        return self.decorated(self.framework.get_request(uri_parser=self.uri_parser))


def decorate_views_once(flask_asgi_app) -> None:
    """Connexion registers the operations' views when it builds its middleware stack (at the first request or
    at startup): each is swapped for a DecoratedOnce as it is registered."""
    add_api = flask_asgi_app.add_api

    def add_api_decorated_once(specification, **kwargs):
        api = add_api(specification, **kwargs)
        views = flask_asgi_app.app.view_functions
        for endpoint, view in list(views.items()):
            if type(view) is FlaskOperation:
                views[endpoint] = DecoratedOnce(view)
        return api

    flask_asgi_app.add_api = add_api_decorated_once


def middlewares_for(settings: Settings) -> list:
    """Connexion's middlewares without the two that only pass requests on when their feature is off: security
    without TMF_AUTH (the served documents then declare none) and response validation without
    TMF_VALIDATE_RESPONSES."""
    unused = set()
    if not settings.auth_enabled:
        unused.add(SecurityMiddleware)
    if not settings.validate_responses:
        unused.add(ResponseValidationMiddleware)
    return [middleware for middleware in ConnexionMiddleware.default_middlewares if middleware not in unused]


API_LISTENER, ADMIN_LISTENER = "api", "admin"


def create_app(settings: Settings, listener: str = API_LISTENER) -> connexion.FlaskApp:
    """The app of one listener: "api" serves the TMF656 and intake documents (and the admin one unless it is off
    or has its own port); "admin" serves only the admin document and delivers no events."""
    if not settings.mongodb_uri:
        raise ValueError("create_app needs settings.mongodb_uri; `tmf-server serve` starts the embedded engine")
    problem = startup_problem(settings, ())  # an incomplete jwt configuration would check less than it says
    if problem:
        raise ValueError(problem)
    spec = load_spec()
    services = build_services(settings, spec, dispatcher=settings.dispatcher_enabled and listener == API_LISTENER,
                              actor=request_user if settings.auth_enabled else None)
    dispatcher = services.dispatcher
    try:
        services.problem_repository.bring_up_to_date()
    except PyMongoError as exc:
        log.warning("stored documents not brought up to date, database unreachable: %s", exc)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        if dispatcher:
            dispatcher.start()
        try:
            yield
        finally:
            if dispatcher:  # in a thread: attempts in flight may take up to the delivery timeout
                await asyncio.to_thread(dispatcher.stop, settings.delivery_timeout + 5)
            bridge.shutdown()
            services.close()

    app = connexion.FlaskApp(__name__, specification_dir=str(SPEC_PATH.parent), lifespan=lifespan,
                             jsonifier=Jsonifier(json, separators=(",", ":")), middlewares=middlewares_for(settings))
    # Flask under the ASGI server with one thread hand-off per request instead of a2wsgi's several
    # (tmf_server/wsgi_bridge.py); Connexion keeps its WSGI bridge in this attribute of the FlaskApp.
    bridge = BufferedWSGIBridge(app.app.wsgi_app)
    app._middleware_app.asgi_app = bridge
    decorate_views_once(app._middleware_app)
    if listener == ADMIN_LISTENER:
        documents = [load_spec(ADMIN_SPEC_PATH)]
    else:
        documents = [spec, load_spec(INTAKE_SPEC_PATH)]
        if settings.admin_with_api:
            documents.insert(1, load_spec(ADMIN_SPEC_PATH))
    security = security_map(settings, validator_from(settings)) if settings.auth_enabled else None
    for document in documents:
        state_limit(served_document(document, settings), settings.max_limit)
        app.add_api(document, validate_responses=settings.validate_responses, strict_validation=False,
                    validator_map={"parameter": NamedParameterValidator, "body": BODY_VALIDATORS,
                                   "response": RESPONSE_VALIDATORS}, security_map=security)
        app.middleware.apis[-1].specification.operation_cls = OneBodyTypeOperation
    app.app.extensions[EXTENSION_KEY] = services
    readiness = Readiness(services.ping, settings.db_timeout_ms / 1000, dispatcher)
    app.add_middleware(Monitoring, position=MiddlewarePosition.BEFORE_EXCEPTION, readiness=readiness,
                       store_gauges=services.store_gauges)
    app.add_middleware(BodySizeLimit, position=MiddlewarePosition.BEFORE_VALIDATION, max_bytes=settings.max_body_bytes)
    if settings.auth_enabled and settings.intake_webhook_secrets:  # after the size limit: it reads the body
        app.add_middleware(IntakeSignatureCheck, position=MiddlewarePosition.BEFORE_VALIDATION,
                           secrets=settings.intake_webhook_secrets)
    app.add_middleware(RequireContentType, position=MiddlewarePosition.BEFORE_VALIDATION)
    app.add_middleware(RejectUnservableUrls, position=MiddlewarePosition.BEFORE_ROUTING,
                       max_url_bytes=settings.max_url_bytes)
    app.add_middleware(RequestGuard, position=MiddlewarePosition.BEFORE_ROUTING, max_in_flight=settings.max_in_flight,
                       body_timeout=settings.body_timeout, retry_after=settings.retry_after_seconds)
    app.add_middleware(HeadAsGet, position=MiddlewarePosition.BEFORE_EXCEPTION)

    app.add_error_handler(errors.ApiError, errors.handle_api_error)
    http_errors = errors.make_http_exception_handler(allowed_methods_of(*documents))
    app.add_error_handler(ProblemException, http_errors)
    app.add_error_handler(HTTPException, http_errors)
    app.add_error_handler(ConnectionFailure, errors.make_unavailable_handler(settings.retry_after_seconds))
    app.add_error_handler(Exception, errors.handle_unexpected)
    return app


def app_from_env() -> connexion.FlaskApp:
    """Factory for uvicorn workers: settings come from the environment the CLI prepared."""
    settings = Settings.from_env()
    logs.configure(settings.log_level, settings.log_format)
    return create_app(settings)


def admin_app_from_env() -> connexion.FlaskApp:
    """Factory of the admin listener (`--admin-port`)."""
    settings = Settings.from_env()
    logs.configure(settings.log_level, settings.log_format)
    return create_app(settings, ADMIN_LISTENER)
