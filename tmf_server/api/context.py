"""What handlers need from the running app: the services, the settings and the request's URLs."""
from __future__ import annotations

from functools import lru_cache

import flask
from connexion import context as connexion_context
from werkzeug.urls import uri_to_iri

from tmf_server.errors import BadRequest
from tmf_server.settings import BASE_PATH
from tmf_server.wiring import Services

EXTENSION_KEY = "tmf_server"


def services() -> Services:
    return flask.current_app.extensions[EXTENSION_KEY]


def absolute_url(path: str) -> str:
    """`path` under the server's root, from the configured public URL or the request."""
    root = services().settings.public_base_url or _host_url(flask.request.scheme, flask.request.host)
    return root.rstrip("/") + path


@lru_cache(maxsize=256)
def _host_url(scheme: str, host: str) -> str:
    """What Flask's `request.host_url` is (werkzeug's get_current_url), remembered: its IRI decoding of the host
    took about 6 % of the server's CPU under creates, and a server is reached under a few hosts only."""
    return uri_to_iri(f"{scheme}://{host}/")


def api_base_url() -> str:
    """Absolute URL of the TMF656 API base path."""
    return absolute_url(BASE_PATH)


def raw_query_string() -> str:
    return flask.request.query_string.decode("latin-1")


MAX_CORRELATION_ID = 200


def correlation_id() -> str | None:
    """The client's correlation id for the events of this request, if it sent one (at most 200 characters:
    it is copied into every event of the change)."""
    name = "X-Correlation-ID" if flask.request.headers.get("X-Correlation-ID") else "X-Request-ID"
    value = (flask.request.headers.get(name) or "").strip()
    if len(value) > MAX_CORRELATION_ID:
        raise BadRequest(f"{name} is {len(value)} characters long; at most {MAX_CORRELATION_ID} are allowed.",
                         code="invalidHeader")
    return value or None


def token_info() -> dict | None:
    """What the security check learnt of the request's credentials (tmf_server/security), None without, and None
    outside a request (the server's own background work: the intake's sweep writes reports from the loop thread)."""
    try:
        return connexion_context.context.get("token_info")
    except RuntimeError:  # no operation context: not a request
        return None


def request_user() -> str | None:
    """The subject of the request's token (a signed intake notification: `webhook:<source>`)."""
    info = token_info()
    return info["sub"] if info else None


def request_owner() -> tuple[str | None, bool]:
    """(the client a subscription belongs to, whether it may act on every client's); (None, True) without
    authentication: everything is everyone's then."""
    info = token_info()
    if info is None:
        return None, True
    return info["client"], "admin" in info["scope"]
