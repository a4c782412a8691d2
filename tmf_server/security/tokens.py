"""OAuth 2.0 JWT access tokens, validated locally with PyJWT: the issuer's keys (a JWKS URL or file), the signature
with an asymmetric algorithm that fits the key, `iss`, `aud`, `exp`/`nbf` with a small clock skew, and the scopes."""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
from jwt import PyJWK

log = logging.getLogger(__name__)

# The algorithms each key type may verify. Symmetric algorithms (HS*) and `none` are never accepted: a public
# key used as an HMAC secret (algorithm confusion) or an unsigned token would otherwise pass.
ALGORITHMS_BY_KEY_TYPE = {
    "RSA": frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}),
    "EC": frozenset({"ES256", "ES384", "ES512"}),
    "OKP": frozenset({"EdDSA"}),
}
ACCEPTED_ALGORITHMS = frozenset().union(*ALGORITHMS_BY_KEY_TYPE.values())


class TokenRefused(Exception):
    """The token is not valid; the message says why, without the token."""


class KeysUnavailable(Exception):
    """The issuer's keys could not be read (JWKS URL unreachable or invalid)."""


def parse_jwks(document: dict) -> dict[str | None, PyJWK]:
    """kid -> key for the signing keys of a JWKS document PyJWT can use (others are skipped)."""
    keys: dict[str | None, PyJWK] = {}
    for entry in document.get("keys", ()):
        if entry.get("use", "sig") != "sig" or entry.get("kty") not in ALGORITHMS_BY_KEY_TYPE:
            continue
        try:
            keys[entry.get("kid")] = PyJWK.from_dict(entry)
        except jwt.PyJWTError as exc:
            log.warning("JWKS key %r skipped: %s", entry.get("kid"), exc)
    return keys


class KeySet:
    """The issuer's signing keys. From a file: read once. From a URL: fetched when first needed, and again when a
    token names a kid not in the set (key rotation), but no more often than every `min_refresh` seconds, so that
    tokens with made-up kids cannot make the server hammer the identity provider."""

    def __init__(self, *, url: str | None = None, file: Path | None = None, min_refresh: float = 30.0,
                 timeout: float = 5.0, clock=time.monotonic):
        if bool(url) == bool(file):
            raise ValueError("a key set needs exactly one of a JWKS URL and a JWKS file")
        self.url, self.min_refresh, self.timeout, self.clock = url, min_refresh, timeout, clock
        self._lock = threading.Lock()
        self._fetched_at: float | None = None
        self._keys: dict[str | None, PyJWK] = {}
        if file:
            self._keys = parse_jwks(json.loads(Path(file).read_text(encoding="utf-8")))
        self.fetches = 0

    def _due(self) -> bool:
        return self.url is not None and (self._fetched_at is None or self.clock() - self._fetched_at >= self.min_refresh)

    def _refresh(self) -> None:
        with self._lock:
            if not self._due():  # another thread refreshed meanwhile
                return
            self._fetched_at = self.clock()
            self.fetches += 1
            try:
                response = httpx.get(self.url, timeout=self.timeout, follow_redirects=False)
                response.raise_for_status()
                self._keys = parse_jwks(response.json())
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("JWKS not fetched from %s: %s", self.url, exc)
                if not self._keys:
                    raise KeysUnavailable(f"the identity provider's keys cannot be read ({type(exc).__name__})") \
                        from None

    def needs_fetch(self, kid: str | None) -> bool:
        """Whether finding `kid` would fetch the JWKS (a network call: the caller may run it off the event loop)."""
        return self._lookup(kid) is None and self._due()

    def _lookup(self, kid: str | None) -> PyJWK | None:
        keys = self._keys
        if kid is None and len(keys) == 1:
            return next(iter(keys.values()))
        return keys.get(kid)

    def key(self, kid: str | None) -> PyJWK | None:
        found = self._lookup(kid)
        if found is None and self._due():
            self._refresh()
            found = self._lookup(kid)
        if found is None and not self._keys and self.url:  # the last fetch failed and none ever succeeded
            raise KeysUnavailable("the identity provider's keys could not be read yet")
        return found


@dataclass(frozen=True)
class Principal:
    """Who made a request: the token's subject, its client (client_id / azp, else the subject) and its scopes."""

    subject: str
    client: str
    scopes: frozenset[str]

    def token_info(self) -> dict:
        """The form Connexion keeps in the request context (`sub` becomes its `user`)."""
        return {"sub": self.subject, "client": self.client, "scope": sorted(self.scopes)}


def claim(claims: dict, path: str):
    value = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def scopes_of(claims: dict, paths: tuple[str, ...]) -> frozenset[str]:
    """Scopes from the claims at `paths`: a space-separated string (`scope`) or a list (`scp`, Keycloak roles)."""
    found: set[str] = set()
    for path in paths:
        value = claim(claims, path)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(item for item in value if isinstance(item, str))
    return frozenset(found)


class TokenValidator:
    def __init__(self, keys: KeySet, *, issuer: str, audience: str, scope_claims: tuple[str, ...],
                 leeway: float = 60.0):
        self.keys, self.issuer, self.audience = keys, issuer, audience
        self.scope_claims, self.leeway = scope_claims, leeway

    def header(self, token: str) -> dict:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRefused("The token is not a well-formed JWT.") from None
        algorithm = header.get("alg")
        if algorithm not in ACCEPTED_ALGORITHMS:
            raise TokenRefused(f"The token's algorithm {str(algorithm)[:20]!r} is not accepted; "
                               f"tokens must be signed with an asymmetric algorithm.")
        return header

    def validate(self, token: str, header: dict | None = None) -> Principal:
        header = header or self.header(token)
        algorithm = header["alg"]
        key = self.keys.key(header.get("kid"))
        if key is None:
            raise TokenRefused("The token is signed with a key the issuer does not publish.")
        if algorithm not in ALGORITHMS_BY_KEY_TYPE.get(key.key_type, ()):
            raise TokenRefused(f"The token's algorithm {algorithm} does not fit the issuer's {key.key_type} key.")
        try:
            claims = jwt.decode(token, key.key, algorithms=[algorithm], audience=self.audience, issuer=self.issuer,
                                leeway=self.leeway, options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.ExpiredSignatureError:
            raise TokenRefused("The token has expired.") from None
        except jwt.ImmatureSignatureError:
            raise TokenRefused("The token is not valid yet (nbf or iat in the future).") from None
        except jwt.InvalidIssuerError:
            raise TokenRefused("The token was issued by another issuer.") from None
        except jwt.InvalidAudienceError:
            raise TokenRefused("The token is meant for another audience.") from None
        except jwt.InvalidSignatureError:
            raise TokenRefused("The token's signature is not valid.") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRefused(f"The token has no '{exc.claim}' claim.") from None
        except jwt.PyJWTError:
            raise TokenRefused("The token is not valid.") from None
        subject = str(claims["sub"])
        client = claims.get("client_id") or claims.get("azp") or subject
        return Principal(subject, str(client), scopes_of(claims, self.scope_claims))
