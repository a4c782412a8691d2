"""Schemathesis against a live server: every operation of the three served documents, schema-driven fuzzing of
bodies, parameters, headers and media types, and stateful sequences, with every check, positive_data_acceptance
included: a schema-valid request must be accepted. Any 5xx, undeclared status, body, header or content type fails
the test, and so does a 400 to a schema-valid request, except the refusals listed in ACCEPTED_REFUSALS below.

Every document is fuzzed twice: with authentication off, and with TMF_AUTH=jwt, a real identity provider on loopback
and a token holding every declared scope (the security layer is then in the stack, and schemathesis's
`ignored_auth` check sends requests without the token).

Settings of the run live here, in one place (examples per operation, seed); generation is deterministic unless
TMF_CONTRACT_SEED is set, so a failure reproduces. Rules the
documents can state, they state (openapi/AMENDMENTS.md items 3, 6, 7, 10, 15, 17), so schemathesis generates no
request that breaks them; openapi/intake.yaml states every rule of a single attribute the intake enforces
(tests/unit/test_intake_contract.py compares it with the intake's schemas). What no schema can state is allowed
here, narrowly, each entry with its reason:
- POSITIVE_DATA_ACCEPTANCE_STATUSES: schemathesis's default list (2xx, 3xx, 401, 403, 404, 409, 429, 5xx: an
  unknown id, the lifecycle, ...) plus 412, If-Match naming another version; all are state-dependent.
- ACCEPTED_REFUSALS: a 400 (or 422) to a schema-valid request passes only if the TMF Error `code` (and message) is
  listed for that operation; tests/contract/schemathesis_hooks.py applies the list. Any other 400 or 422 fails.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.security.idp import IdentityProvider
from tests.support.server import ServerProcess

EXAMPLES_PER_OPERATION = 25
# No seed by default: generation is derandomised (--generation-deterministic), so every run sends the same
# requests and a failure reproduces. TMF_CONTRACT_SEED=N explores other requests, reproducibly for that N.
SEED = os.environ.get("TMF_CONTRACT_SEED")


POSITIVE_DATA_ACCEPTANCE_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "412", "429", "5xx"]
# (operation regex, status, TMF Error code, message regex, why no schema can state it)
ACCEPTED_REFUSALS = [
    (".*", 400, "invalidAttributeName", "",
     "attribute names starting with '$' or containing '.' or NUL, anywhere in open content (AMENDMENTS item 17)"),
    (".*", 400, "invalidValue", "64-bit integers",
     "integers beyond 64 bits, anywhere in open content (AMENDMENTS item 17)"),
    (".*", 400, "invalidValue", "NUL character", "the NUL character in any text of a body (AMENDMENTS item 17)"),
    ("POST /hub", 400, "invalidCallback", "cannot be resolved", "a callback host that DNS does not resolve (item 10)"),
    ("POST /hub", 400, "callbackNotAllowed", "", "a loopback or private callback address, per configuration (item 10)"),
    (r"PATCH /serviceProblem/\{id\}", 400, "invalidPatch", "does not exist in the resource",
     "a JSON Patch location missing from the stored report (state-dependent)"),
    ("POST .*", 422, "idempotencyKeyReused", "already used with another request body",
     "an Idempotency-Key an earlier request of the run used with another body (state-dependent: schemathesis draws "
     "the same short keys, such as '0', for different bodies; item 21)"),
]
DOCUMENTS = {
    "tmf656": "/tmf-api/serviceProblemManagement/v4",
    "admin": "/admin",
    "intake": "/intake",
}
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")


@pytest.fixture(scope="module", params=["auth-off", "auth-jwt"])
def fuzzed_server(request, tmp_path_factory):
    """(the server, the headers of every request): authentication off (the default), and TMF_AUTH=jwt with a real
    identity provider on loopback and a token holding every scope the served documents declare, so that the
    security layer is fuzzed too and schemathesis's `ignored_auth` check sends requests without the token."""
    if request.param == "auth-off":
        process = ServerProcess(tmp_path_factory.mktemp("schemathesis")).start()
        yield process, []
        process.stop()
        return
    idp = IdentityProvider().up()
    process = ServerProcess(tmp_path_factory.mktemp("schemathesis-jwt"), env=idp.server_env()).start()
    try:
        token = idp.token(sorted(_declared_scopes(process)), lifetime=3600)
        # Authentication is on and the token opens it: else every answer could be a 401, which the run accepts.
        probe = process.base_url + "/serviceProblem?limit=1"
        assert requests.get(probe, timeout=30).status_code == 401
        assert requests.get(probe, headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code == 200
        yield process, ["--header", f"Authorization: Bearer {token}"]
    finally:
        process.stop()
        idp.down()


def _declared_scopes(process: ServerProcess) -> set[str]:
    scopes = set()
    for path in DOCUMENTS.values():
        document = requests.get(f"{process.root_url}{path}/openapi.json", timeout=30).json()
        for scheme in document.get("components", {}).get("securitySchemes", {}).values():
            for flow in scheme.get("flows", {}).values():
                scopes.update(flow.get("scopes", {}))
    assert scopes, "the served documents declare no scope"
    return scopes


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("schemathesis-config") / "schemathesis.toml"
    path.write_text("[checks.positive_data_acceptance]\n"
                    f"expected-statuses = {json.dumps(POSITIVE_DATA_ACCEPTANCE_STATUSES)}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_server_keeps_its_contract_under_generated_requests(fuzzed_server, config_file, document):
    fuzzed_server, headers = fuzzed_server
    base = fuzzed_server.root_url + DOCUMENTS[document]
    command = [str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(config_file),
               "run", f"{base}/openapi.json", "--url", base, *headers,
               "--checks", "all", "--max-examples", str(EXAMPLES_PER_OPERATION),
               *(["--seed", SEED] if SEED else ["--generation-deterministic"]), "--suppress-health-check", "all",
               "--request-timeout", "30"]
    refusals = [{"operation": op, "status": status, "code": code, "message": message}
                for op, status, code, message, _why in ACCEPTED_REFUSALS]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS), "CONTRACT_ACCEPTED_REFUSALS": json.dumps(refusals)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, (result.stdout[-6000:] + result.stderr[-2000:]
                                    + "\nserver log:\n" + fuzzed_server.log()[-3000:])
