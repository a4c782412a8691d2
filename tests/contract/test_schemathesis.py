"""Schemathesis against a live server: every operation of the three served documents, schema-driven fuzzing of
bodies, parameters, headers and media types, and stateful sequences. Any 5xx, undeclared status, body, header or
content type fails the test. Settings of the run live here, in one place; generation is deterministic, so a
failure reproduces.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import ServerProcess

EXAMPLES_PER_OPERATION = 25
# positive_data_acceptance is left out: the server refuses some schema-valid bodies by documented rules the
# official schemas cannot express (server-owned attributes and unknown attributes on create, the lifecycle,
# the callback policy; openapi/AMENDMENTS.md rows 3, 7 and 10). Every other check runs.
EXCLUDED_CHECKS = "positive_data_acceptance"
DOCUMENTS = {
    "tmf656": "/tmf-api/serviceProblemManagement/v4",
    "admin": "/admin",
    "intake": "/intake",
}


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory):
    process = ServerProcess(tmp_path_factory.mktemp("schemathesis")).start()
    yield process
    process.stop()


@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_server_keeps_its_contract_under_generated_requests(fuzzed_server, document):
    base = fuzzed_server.root_url + DOCUMENTS[document]
    command = [str(Path(sys.executable).with_name("schemathesis")), "run", f"{base}/openapi.json", "--url", base,
               "--checks", "all", "--exclude-checks", EXCLUDED_CHECKS, "--max-examples", str(EXAMPLES_PER_OPERATION),
               "--generation-deterministic", "--suppress-health-check", "all",
               "--request-timeout", "30"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.stdout[-6000:] + result.stderr[-2000:]
                                    + "\nserver log:\n" + fuzzed_server.log()[-3000:])
