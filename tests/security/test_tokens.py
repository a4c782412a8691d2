"""Token validation against a real identity provider: every way a token can be wrong is a 401 naming what is wrong
(and never the token); keys rotate through the JWKS URL, refetched on an unknown kid at most once per interval."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
import requests
from cryptography.hazmat.primitives import serialization

from tests.security.conftest import bearer
from tests.security.idp import rsa_key
from tests.support.assertions import assert_tmf_error

MIN_REFRESH = 1.0  # seconds between JWKS fetches on unknown kids (TMF_JWKS_MIN_REFRESH)
SERVER_ENV = {"TMF_JWKS_MIN_REFRESH": str(MIN_REFRESH)}
READ = "serviceProblem:read"
USED_TOKENS: list[str] = []


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict, claims: dict, sign=lambda _signing_input: b"") -> str:
    """A JWT assembled by hand, for what PyJWT refuses to produce (alg none, HS256 keyed with a public key)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


def valid_claims(idp) -> dict:
    now = int(time.time())
    return {"iss": idp.issuer, "aud": "tmf656-server", "sub": "mallory", "exp": now + 300, "scope": READ}


def get(secured, token: str | None, raw_authorization: str | None = None) -> requests.Response:
    if token is not None:
        USED_TOKENS.append(token)
    headers = {"Authorization": raw_authorization} if raw_authorization else bearer(token) if token else {}
    return requests.get(secured.base_url + "/serviceProblem?limit=1", headers=headers, timeout=10)


def refused(response: requests.Response, *fragments: str) -> None:
    assert_tmf_error(response, 401, *fragments)
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"'), response.headers


def test_a_valid_token_is_accepted(secured, idp):
    assert get(secured, idp.token(READ)).status_code == 200


def test_a_token_expired_longer_ago_than_the_clock_skew_is_refused(secured, idp):
    refused(get(secured, idp.token(READ, lifetime=-600)), "expired")


def test_a_token_expired_within_the_clock_skew_is_accepted(secured, idp):
    assert get(secured, idp.token(READ, lifetime=-20)).status_code == 200  # skew: 60 s


def test_a_token_not_valid_yet_is_refused(secured, idp):
    refused(get(secured, idp.token(READ, not_before=600)), "not valid yet")


@pytest.mark.parametrize("claims, fragment", [
    ({"iss": "http://127.0.0.1:1/realms/other"}, "another issuer"),
    ({"aud": "some-other-api"}, "another audience"),
    ({"exp": None}, "'exp'"),
    ({"sub": None}, "'sub'"),
])
def test_a_token_with_a_wrong_or_missing_claim_is_refused(secured, idp, claims, fragment):
    refused(get(secured, idp.token(READ, **claims)), fragment)


def test_an_unsigned_token_is_refused(secured, idp):
    token = handmade({"alg": "none", "typ": "JWT", "kid": "key-1"}, valid_claims(idp))
    refused(get(secured, token), "'none' is not accepted")


def test_hs256_keyed_with_the_public_key_is_refused(secured, idp):
    """Algorithm confusion: the published RSA key used as an HMAC secret must not verify anything."""
    public_pem = idp.keys["key-1"].public_key().public_bytes(serialization.Encoding.PEM,
                                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    token = handmade({"alg": "HS256", "typ": "JWT", "kid": "key-1"}, valid_claims(idp),
                     lambda data: hmac.new(public_pem, data, hashlib.sha256).digest())
    refused(get(secured, token), "'HS256' is not accepted")


def test_a_token_signed_by_another_key_under_a_published_kid_is_refused(secured, idp):
    refused(get(secured, idp.token(READ, key=rsa_key(), kid="key-1")), "signature is not valid")


def test_a_tampered_token_is_refused(secured, idp):
    header, payload, signature = idp.token(READ).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "serviceProblem:read serviceProblem:write admin"
    refused(get(secured, f"{header}.{b64(json.dumps(claims).encode())}.{signature}"), "signature is not valid")


@pytest.mark.parametrize("authorization", ["Bearer", "Basic dXNlcjpwYXNz", "Bearer not-a-jwt"])
def test_a_malformed_or_foreign_authorization_is_401_with_a_bearer_challenge(secured, authorization):
    response = get(secured, None, authorization)
    assert_tmf_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_rotated_key_is_learnt_from_the_jwks_and_unknown_kids_refetch_at_most_once_per_interval(secured, idp):
    assert get(secured, idp.token(READ)).status_code == 200
    time.sleep(MIN_REFRESH + 0.2)  # the last fetch is older than the interval: an unknown kid may refetch
    fetches = idp.jwks_fetches
    idp.add_key("key-2")
    assert get(secured, idp.token(READ, kid="key-2")).status_code == 200
    assert idp.jwks_fetches == fetches + 1, "the new key was learnt with one fetch"
    assert get(secured, idp.token(READ, kid="key-1")).status_code == 200, "the older key is still published"
    assert idp.jwks_fetches == fetches + 1, "a known kid fetches nothing"

    began, fetches = time.monotonic(), idp.jwks_fetches
    for attempt in range(20):  # made-up kids, as an attacker would send
        refused(get(secured, idp.token(READ, kid=f"made-up-{attempt}", key=rsa_key())), "does not publish")
    elapsed = time.monotonic() - began
    assert idp.jwks_fetches - fetches <= elapsed / MIN_REFRESH + 1, (idp.jwks_fetches - fetches, elapsed)

    idp.add_key("key-3", publish=False)  # signed with a key the issuer does not publish
    refused(get(secured, idp.token(READ, kid="key-3")), "does not publish")


def test_no_token_appears_in_the_server_log(secured):
    log = secured.log_path.read_text(errors="replace")
    assert USED_TOKENS, "the tests above sent tokens"
    for token in USED_TOKENS:
        signature = token.split(".")[-1]
        assert token not in log and (not signature or signature[:16] not in log)
