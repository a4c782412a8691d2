"""Offline installations: keys from a JWKS file (TMF_JWKS_FILE), no identity provider reachable; role-style
providers: scopes read from the claims TMF_JWT_SCOPE_CLAIMS names (Keycloak realm and client roles), here with an
EC key (ES256); and a JWKS URL that does not answer yet: 503 with Retry-After until it does."""
from __future__ import annotations

import json
import time

import pytest
import requests

from tests.security.conftest import bearer
from tests.security.idp import IdentityProvider, ec_key, public_jwk
from tests.support.assertions import assert_tmf_error
from tests.support.client import report
from tests.support.server import ServerProcess

SCOPE_CLAIMS = "realm_access.roles,resource_access.tmf656-server.roles"


@pytest.fixture(scope="module")
def offline_idp():
    """Keys and tokens only: its HTTP server is never started, so the server can fetch nothing."""
    provider = IdentityProvider()
    provider.add_key("ec-1", ec_key())
    return provider


@pytest.fixture(scope="module")
def file_server(offline_idp, tmp_path_factory):
    folder = tmp_path_factory.mktemp("jwks-file")
    jwks = folder / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public_jwk(offline_idp.keys["ec-1"], "ec-1")]}))
    env = {"TMF_AUTH": "jwt", "TMF_JWT_ISSUER": offline_idp.issuer, "TMF_JWT_AUDIENCE": "tmf656-server",
           "TMF_JWKS_FILE": str(jwks), "TMF_JWT_SCOPE_CLAIMS": SCOPE_CLAIMS}
    process = ServerProcess(folder / "server", env=env).start()
    yield process
    process.stop()


def keycloak_token(idp, realm_roles=(), client_roles=(), **claims) -> str:
    """The shape of a Keycloak access token: roles in realm_access and resource_access, azp, OIDC scopes."""
    return idp.token("profile email", kid="ec-1", client_id=None, azp="crm-portal",
                     realm_access={"roles": ["offline_access", *realm_roles]},
                     resource_access={"tmf656-server": {"roles": list(client_roles)}}, **claims)


def test_realm_roles_grant_what_they_name(file_server, offline_idp):
    reader = bearer(keycloak_token(offline_idp, realm_roles=["serviceProblem:read"]))
    assert requests.get(file_server.base_url + "/serviceProblem?limit=1", headers=reader, timeout=10).status_code == 200
    assert_tmf_error(requests.post(file_server.base_url + "/serviceProblem", json=report(), headers=reader,
                                   timeout=10), 403, "serviceProblem:write")


def test_client_roles_grant_what_they_name(file_server, offline_idp):
    writer = bearer(keycloak_token(offline_idp, client_roles=["serviceProblem:write"]))
    created = requests.post(file_server.base_url + "/serviceProblem", json=report(), headers=writer, timeout=10)
    assert created.status_code == 201, created.text


def test_the_scope_claim_counts_only_when_named(file_server, offline_idp):
    """With TMF_JWT_SCOPE_CLAIMS set, `scope` is not read: an API scope there grants nothing."""
    token = offline_idp.token("serviceProblem:read", kid="ec-1")
    assert_tmf_error(requests.get(file_server.base_url + "/serviceProblem", headers=bearer(token), timeout=10), 403)


def test_a_key_missing_from_the_file_is_refused_without_fetching(file_server, offline_idp):
    token = offline_idp.token("", kid="key-1", realm_access={"roles": ["serviceProblem:read"]})  # an RSA key
    response = requests.get(file_server.base_url + "/serviceProblem", headers=bearer(token), timeout=10)
    assert_tmf_error(response, 401, "does not publish")
    assert offline_idp.jwks_fetches == 0


def test_an_rs256_header_on_the_ec_key_is_refused(file_server, offline_idp):
    """The algorithm must fit the key the kid names."""
    import base64

    token = keycloak_token(offline_idp, realm_roles=["serviceProblem:read"])
    header, payload, signature = token.split(".")
    forged = base64.urlsafe_b64encode(json.dumps({"alg": "RS256", "kid": "ec-1"}).encode()).rstrip(b"=").decode()
    response = requests.get(file_server.base_url + "/serviceProblem",
                            headers=bearer(f"{forged}.{payload}.{signature}"), timeout=10)
    assert_tmf_error(response, 401, "does not fit")


@pytest.fixture(scope="module")
def late_idp():
    provider = IdentityProvider()  # not up yet: its JWKS URL refuses connections
    yield provider
    provider.down()


@pytest.fixture(scope="module")
def waiting_server(late_idp, tmp_path_factory):
    env = {**late_idp.server_env(), "TMF_JWKS_MIN_REFRESH": "0.5", "TMF_RETRY_AFTER": "7"}
    process = ServerProcess(tmp_path_factory.mktemp("late-idp"), env=env).start()
    yield process
    process.stop()


def test_an_unreachable_jwks_url_is_503_until_the_provider_answers(waiting_server, late_idp):
    url = waiting_server.base_url + "/serviceProblem?limit=1"
    response = requests.get(url, headers=bearer(late_idp.token("serviceProblem:read")), timeout=10)
    assert_tmf_error(response, 503, "retry later")
    assert response.headers["Retry-After"] == "7"
    late_idp.up()
    for _attempt in range(300):  # the refetch waits TMF_JWKS_MIN_REFRESH (0.5 s) after the failed one
        response = requests.get(url, headers=bearer(late_idp.token("serviceProblem:read")), timeout=10)
        if response.status_code == 200:
            break
        assert response.status_code == 503, response.text
        time.sleep(0.1)
    assert response.status_code == 200, response.text
