"""The conformance kit authenticates like a client: a given token (--token) or the client-credentials flow against a
real token endpoint; it checks that an anonymous request is refused when the target declares security, and no
credential reaches its output or reports."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

KIT = [str(Path(sys.executable).with_name("tmf-server")), "conformance"]
SCOPES = "serviceProblem:read serviceProblem:write hub:read hub:write"
SECRET = "s3cr3t-of-the-conformance-client"


def run_kit(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([*KIT, *arguments, "--no-progress"], capture_output=True, text=True, timeout=300)


def outputs(result: subprocess.CompletedProcess, *reports: Path) -> str:
    return result.stdout + result.stderr + "".join(path.read_text() for path in reports)


def test_client_credentials_flow_passes_every_check_and_keeps_the_credentials_out(secured, idp, tmp_path):
    idp.register_client("conformance-kit", SECRET, SCOPES)
    json_path, html_path = tmp_path / "report.json", tmp_path / "report.html"
    result = run_kit(secured.base_url, "--token-url", idp.token_url, "--client-id", "conformance-kit",
                     "--client-secret", SECRET, "--scope", SCOPES, "--json", str(json_path), "--html", str(html_path))
    assert result.returncode == 0, result.stdout + result.stderr + secured.log()
    report = json.loads(json_path.read_text())
    results = {check["id"]: check["result"] for check in report["checks"]}
    assert results["anonymous-refused"] == "passed" and set(results.values()) == {"passed"} and len(results) == 19
    requests_made = [r for r in idp.token_requests if r.get("client_id") == "conformance-kit"]
    assert len(requests_made) == 1 and requests_made[0]["grant_type"] == "client_credentials"
    assert requests_made[0]["client_secret"] == SECRET and requests_made[0]["scope"] == SCOPES
    written = outputs(result, json_path, html_path)
    assert SECRET not in written
    assert "eyJ" not in written, "a JWT reached the output or a report"


def test_a_given_token_is_sent_and_never_reported(secured, idp, tmp_path):
    token = idp.token(SCOPES)
    json_path = tmp_path / "report.json"
    result = run_kit(secured.base_url, "--token", token, "--check", "create", "--check", "unknown-id",
                     "--json", str(json_path))
    assert result.returncode == 0, result.stdout + result.stderr
    results = {c["id"]: c["result"] for c in json.loads(json_path.read_text())["checks"]}
    assert results == {"anonymous-refused": "passed", "create": "passed", "unknown-id": "passed"}
    assert token not in outputs(result, json_path) and token.split(".")[2] not in outputs(result, json_path)


def test_a_failing_check_shows_its_request_with_the_authorization_redacted(secured, idp, tmp_path):
    """A token without the write scope: create fails, and the report shows the request behind it, redacted."""
    token = idp.token("serviceProblem:read")
    json_path = tmp_path / "report.json"
    result = run_kit(secured.base_url, "--token", token, "--check", "create", "--json", str(json_path))
    assert result.returncode == 1
    report = json.loads(json_path.read_text())
    failed = next(c for c in report["checks"] if c["id"] == "create")
    assert failed["result"] == "failed" and failed["failedExchange"]["request"]["headers"]["Authorization"] == "[redacted]"
    assert token not in outputs(result, json_path)


def test_a_refused_client_is_one_line_without_the_secret(secured, idp):
    result = run_kit(secured.base_url, "--token-url", idp.token_url, "--client-id", "conformance-kit",
                     "--client-secret", "wrong-" + SECRET)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"tmf-server conformance: no access token: the token endpoint {idp.token_url} answered 401 "
        f"(invalid_client) and no access token"]
    assert SECRET not in result.stdout + result.stderr


def test_against_a_server_declaring_no_security_the_anonymous_check_is_skipped(server, idp, tmp_path):
    json_path = tmp_path / "report.json"
    result = run_kit(server.base_url, "--token", idp.token(SCOPES), "--check", "create", "--json", str(json_path))
    assert result.returncode == 0, result.stdout + result.stderr
    results = {c["id"]: c["result"] for c in json.loads(json_path.read_text())["checks"]}
    assert results == {"anonymous-refused": "skipped", "create": "passed"}
