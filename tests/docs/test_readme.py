"""README.md cannot drift: every ```sh block runs, in order, in one shell, against a real server started as
`TMF_CALLBACK_ALLOW=loopback make run` starts it (its own free port and data folder), and prints what the README
promises. Blocks fenced ```text are not run (they need what a fresh `make run` does not have)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import PROJECT_ROOT, ServerProcess
from tmf_server import __version__
from tmf_server.store.embedded import free_port

README = PROJECT_ROOT / "README.md"
MARK = "@@@ README block"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

# For each sh block, in README order: a fragment of its first line, then patterns its output must contain, in order.
PROMISES = [
    ("# Where the server answers", [re.escape(f'{{"status":"up","version":"{__version__}"}}')]),
    ("# Create a report", [r"HTTP/1.1 201 Created", rf"location: http://127\.0\.0\.1:\d+/tmf-api/serviceProblemManagement/v4/serviceProblem/{UUID}",
                           r'etag: "1"', r'"status":"acknowledged"', r'"affectedNumberOfServices":1']),
    ("# Read it", [rf'^\{{"id":"{UUID}","href":"[^"]+","priority":2,"status":"acknowledged"\}}$',
                   r"HTTP/1.1 200 OK", r"x-total-count: 1", r"x-result-count: 1",
                   r'"description":"Broadband throughput far below the contracted rate every evening"\}\]$']),
    ("# Change it", [r"HTTP/1.1 200 OK", r'etag: "2"', r'"status":"inProgress"', r"HTTP/1.1 200 OK", r'etag: "3"',
                     r'"customer called again"', r'"code":"preconditionFailed".*is at ETag \\"3\\", not \\"2\\"\.","status":"412"',
                     re.escape('''"message":"Status cannot change from 'inProgress' to 'closed'; allowed from '''
                               ''''inProgress': cancelled, held, pending, resolved.","status":"409"''')]),
    ("# A report that does not say", [r'"status":"pending"', re.escape('"statusChangeReason":"information required: characteristic[name=degradationStart]"'),
                                      r'"status":"acknowledged"', r'"statusChangeReason":"information supplied"',
                                      r"HTTP/1.1 204 No Content", rf'"message":"No ServiceProblem with id \'{UUID}\'\.","status":"404"']),
    ("# A TMF621 trouble ticket", [r"HTTP/1.1 201 Created", r'"outcome":"created"', r'"serviceProblem":\{"id":"' + UUID,
                                   r'"outcome":"duplicate"', r"^\[\]$"]),
    ("# A listener on this machine", [r"HTTP/1.1 201 Created", rf"location: .*/hub/{UUID}",
                                      rf"ServiceProblemCreateEvent problem={UUID} status=acknowledged webhook-id=\S+ signature=verified",
                                      rf"ServiceProblemStateChangeEvent problem={UUID} status=inProgress webhook-id=\S+ signature=verified",
                                      r'"eventType":"ServiceProblemCreateEvent"\},\{.*"eventType":"ServiceProblemStateChangeEvent"\}\]',
                                      r"^x-total-count: 2\s*$", r"HTTP/1.1 204 No Content"]),
    ("# Requests so far", [r'^tmf_http_requests_total\{method="POST",operation="createServiceProblem",status="201"\} 3\.0$',
                           r'^tmf_deliveries_total\{outcome="delivered"\} 2\.0$']),
    ('"$BIN/tmf-server" conformance', [r"^CONFORMANT: 18 passed, 0 failed, 0 skipped in [0-9.]+ s$"]),
    ("curl -s -o /dev/null -w '%{http_code}", [r"^200$"]),
]


def sh_blocks(text: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```$", text, flags=re.S | re.M)


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory):
    process = ServerProcess(tmp_path_factory.mktemp("readme"), env={"TMF_CALLBACK_ALLOW": "loopback"}).start()
    yield process
    process.stop()


def test_every_sh_block_runs_in_order_and_answers_as_promised(fresh_server):
    blocks = sh_blocks(README.read_text())
    assert len(blocks) == len(PROMISES), [b.splitlines()[0] for b in blocks]
    script = "set -eu\n" + "".join(f"printf '\\n{MARK} {i}\\n'\n{block}\n" for i, block in enumerate(blocks))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMF_") and k != "MONGODB_URI"}
    env.update({"BASE": fresh_server.root_url, "BIN": str(Path(sys.executable).parent),
                "LISTEN_PORT": str(free_port())})
    result = subprocess.run(["bash", "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    outputs = re.split(rf"^{MARK} \d+\n", result.stdout, flags=re.M)[1:]
    assert result.returncode == 0, f"a README block failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert len(outputs) == len(blocks)
    for block, output, (first_line, patterns) in zip(blocks, outputs, PROMISES):
        assert first_line in block.splitlines()[0], (first_line, block.splitlines()[0])
        position = 0
        output = output.replace("\r", "")
        for pattern in patterns:
            found = re.compile(pattern, re.M).search(output, position)
            assert found, f"block {first_line!r}: {pattern!r} not found (in order) in:\n{output}"
            position = found.end()


def test_readme_names_every_environment_variable_the_settings_read():
    source = (PROJECT_ROOT / "tmf_server" / "settings.py").read_text()
    variables = set(re.findall(r'"((?:TMF_[A-Z_]+)|MONGODB_URI)"', source))
    assert len(variables) > 20
    table = README.read_text().split("## Configuration (environment variables)")[1].split("\n## ")[0]
    assert sorted(v for v in variables if f"`{v}`" not in table) == []
