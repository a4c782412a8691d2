"""How the served documents' `security` is enforced: Connexion's security handlers (passed as its `security_map`)
validate the bearer token and its scopes, and the intake's Standard Webhooks signatures. Only the operations of
the served documents are covered; paths outside them (health, metrics, Swagger UI) are not.

The token never reaches a log, an error message or an event: messages say what is wrong with it, not what it is."""
from __future__ import annotations

import asyncio
import hmac
import time

from connexion.security import ApiKeySecurityHandler, OAuthSecurityHandler

from tmf_server.errors import Forbidden, ServiceUnavailable, Unauthorized
from tmf_server.events.signing import sign
from tmf_server.security.tokens import KeySet, KeysUnavailable, TokenRefused, TokenValidator
from tmf_server.settings import Settings

# The intake listener path's last segment -> the source whose signing secret applies (TMF_INTAKE_WEBHOOK_SECRETS).
INTAKE_SOURCES = {"troubleTicketEvent": "troubleTicket", "alarmEvent": "alarm", "slaViolationEvent": "slaViolation",
                  "event": "event"}
# token_info key naming the intake source whose signature the request claims (checked once the body is read).
SIGNED_SOURCE = "signedSource"
SIGNATURE_TOLERANCE_SECONDS = 300  # Standard Webhooks: a timestamp further off is a replay or a wrong clock


def _invalid(message: str) -> Unauthorized:
    return Unauthorized(message, challenge=f'Bearer error="invalid_token", error_description="{message}"')


def validator_from(settings: Settings) -> TokenValidator:
    keys = KeySet(url=settings.jwks_url, file=settings.jwks_file, min_refresh=settings.jwks_min_refresh_seconds)
    return TokenValidator(keys, issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                          scope_claims=settings.jwt_scope_claims, leeway=settings.jwt_leeway_seconds)


def security_map(settings: Settings, validator: TokenValidator) -> dict:
    """Connexion security handler classes for the served documents' `oauth2` and `webhookSignature` schemes."""

    async def token_info(token: str) -> dict:
        try:
            header = validator.header(token)
            if validator.keys.needs_fetch(header.get("kid")):  # a network call: off the event loop
                principal = await asyncio.to_thread(validator.validate, token, header)
            else:
                principal = validator.validate(token, header)
        except TokenRefused as exc:
            raise _invalid(str(exc)) from None
        except KeysUnavailable as exc:
            raise ServiceUnavailable(f"Tokens cannot be checked now: {exc}; retry later.",
                                     headers={"Retry-After": str(settings.retry_after_seconds)}) from None
        return principal.token_info()

    def require_scopes(required_scopes, token_scopes) -> bool:
        missing = sorted(set(required_scopes) - set(token_scopes))
        if missing:
            needed = " ".join(required_scopes)
            raise Forbidden(f"This operation needs the scope {needed}; the token lacks {', '.join(missing)}.",
                            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{needed}"'})
        return True

    def signed_source(api_key: str, request) -> dict:
        source = INTAKE_SOURCES.get(request.url.path.rstrip("/").rsplit("/", 1)[-1])
        if source is None or source not in settings.intake_webhook_secrets:
            raise Unauthorized("No signing secret is configured for this listener; send a bearer token.",
                               challenge="Bearer", code="invalidSignature")
        if not request.headers.get("webhook-id") or not request.headers.get("webhook-timestamp"):
            raise Unauthorized("A signed notification needs webhook-id and webhook-timestamp headers.",
                               challenge="Bearer", code="invalidSignature")
        client = f"webhook:{source}"
        return {"sub": client, "client": client, "scope": [], SIGNED_SOURCE: source}

    class JwtAccessTokens(OAuthSecurityHandler):
        def get_tokeninfo_func(self, security_definition):
            return token_info

        @classmethod
        def get_scope_validate_func(cls, security_definition):
            return require_scopes

    class IntakeSignatures(ApiKeySecurityHandler):
        def _resolve_func(self, security_scheme):
            return signed_source

    return {"oauth2": JwtAccessTokens, "apiKey": IntakeSignatures}


def signature_valid(secret: str, headers: dict, body: bytes, now: float) -> bool:
    """A Standard Webhooks signature check: any `v1,` signature of the header over `{id}.{timestamp}.{body}`."""
    webhook_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > SIGNATURE_TOLERANCE_SECONDS:
        return False
    try:
        expected = sign(secret, webhook_id, int(timestamp), body.decode("utf-8"))
    except UnicodeDecodeError:
        return False
    offered = headers.get("webhook-signature", "").split()
    return any(hmac.compare_digest(candidate, expected) for candidate in offered)


class IntakeSignatureCheck:
    """ASGI middleware after the security check: a request the `webhookSignature` scheme let through (its token_info
    names the source) must carry a valid signature of its exact body; otherwise a 401. Other requests pass."""

    def __init__(self, app, secrets: dict, clock=time.time):
        self.app, self.secrets, self.clock = app, secrets, clock

    async def __call__(self, scope, receive, send):
        info = scope.get("extensions", {}).get("connexion_context", {}).get("token_info") \
            if scope["type"] == "http" else None
        source = info.get(SIGNED_SOURCE) if isinstance(info, dict) else None
        if source is None:
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        if not signature_valid(self.secrets[source], headers, body, self.clock()):
            raise Unauthorized("The notification's webhook-signature does not match its body, id and timestamp "
                               f"(or the timestamp is more than {SIGNATURE_TOLERANCE_SECONDS} s off).",
                               challenge="Bearer", code="invalidSignature")
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
