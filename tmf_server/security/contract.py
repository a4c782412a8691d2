"""What the served documents say about security, and whether the configuration may start.

The documents in openapi/ declare the `oauth2` scheme, a scope on every operation and the 401/403 answers. With
TMF_AUTH=jwt they are served as written (Connexion enforces exactly what they declare); with TMF_AUTH=off all of
that is taken out, so the served documents say what the server then does: no authentication."""
from __future__ import annotations

import ipaddress
import json
from pathlib import Path

from tmf_server.settings import Settings

SCHEME = "oauth2"
WEBHOOK_SCHEME = "webhookSignature"
AUTH_ANSWERS = ("401", "403")
AUTH_RESPONSES = ("Unauthorized", "Forbidden")
METHODS = ("get", "put", "post", "delete", "patch")


def _operations(document: dict):
    for item in document["paths"].values():
        for method, operation in item.items():
            if method in METHODS:
                yield operation


def served_document(document: dict, settings: Settings) -> dict:
    """The document as served under `settings` (changed in place and returned)."""
    components = document.setdefault("components", {})
    if not settings.auth_enabled:
        document.pop("security", None)
        components.pop("securitySchemes", None)
        for name in AUTH_RESPONSES:
            components.get("responses", {}).pop(name, None)
        for operation in _operations(document):
            operation.pop("security", None)
            for status in AUTH_ANSWERS:  # responses may be shared (YAML anchors): pop tolerates a second visit
                operation.get("responses", {}).pop(status, None)
        return document
    schemes = components.get("securitySchemes", {})
    if settings.oauth_token_url and SCHEME in schemes:
        schemes[SCHEME]["flows"]["clientCredentials"]["tokenUrl"] = settings.oauth_token_url
    if WEBHOOK_SCHEME in schemes and not settings.intake_webhook_secrets:
        del schemes[WEBHOOK_SCHEME]  # no source may sign: tokens only
        for operation in _operations(document):
            if "security" in operation:
                operation["security"] = [req for req in operation["security"] if WEBHOOK_SCHEME not in req]
    return document


def required_scopes(document: dict) -> dict[tuple[str, str], list[str]]:
    """(METHOD, path template) -> the scopes its `oauth2` requirement names (for tests and the docs)."""
    found = {}
    for template, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                for requirement in operation.get("security", ()):
                    if SCHEME in requirement:
                        found[(method.upper(), template)] = list(requirement[SCHEME])
    return found


def is_loopback(host: str) -> bool:
    if host.strip().rstrip(".").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def startup_problem(settings: Settings, hosts: tuple[str, ...]) -> str | None:
    """One line saying why the server must not start as configured, or None. `hosts` are the listen addresses."""
    if settings.auth not in ("off", "jwt"):
        return f"TMF_AUTH must be 'off' or 'jwt', not {settings.auth!r}."
    if settings.admin not in ("on", "off"):
        return f"TMF_ADMIN must be 'on' or 'off', not {settings.admin!r}."
    if settings.auth_enabled:
        missing = [name for name, value in (("TMF_JWT_ISSUER", settings.jwt_issuer),
                                            ("TMF_JWT_AUDIENCE", settings.jwt_audience)) if not value]
        if missing or bool(settings.jwks_url) == bool(settings.jwks_file):
            return ("TMF_AUTH=jwt needs TMF_JWT_ISSUER, TMF_JWT_AUDIENCE and one of TMF_JWKS_URL and TMF_JWKS_FILE"
                    + (f" (missing: {', '.join(missing)})." if missing else "."))
        if settings.jwks_file:
            try:
                keys = json.loads(Path(settings.jwks_file).read_text(encoding="utf-8")).get("keys")
            except (OSError, ValueError, AttributeError) as exc:
                return f"TMF_JWKS_FILE {settings.jwks_file} is not a readable JWKS document: {exc}."
            if not keys:
                return f"TMF_JWKS_FILE {settings.jwks_file} holds no keys."
        return None
    exposed = [host for host in hosts if not is_loopback(host)]
    if exposed and not settings.auth_explicit:
        return (f"Refusing to listen on {', '.join(exposed)} without authentication: set TMF_AUTH=jwt (see "
                f"docs/security.md), or TMF_AUTH=off to let anyone who reaches the port use the API.")
    return None


def exposure_warning(settings: Settings, hosts: tuple[str, ...]) -> str | None:
    exposed = [host for host in hosts if not is_loopback(host)]
    if exposed and not settings.auth_enabled:
        return (f"WARNING: TMF_AUTH=off on {', '.join(exposed)}: anyone who can reach the port can read, change "
                f"and delete every report and subscription.")
    return None
