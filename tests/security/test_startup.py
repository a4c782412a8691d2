"""Start-up: beyond loopback, the server refuses to start without authentication unless TMF_AUTH=off says so
explicitly, and refuses an incomplete jwt configuration; one clear line, a non-zero exit, before anything starts
or binds (the processes below exit before binding, so the addresses are never used)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests.support.server import PROJECT_ROOT
from tmf_server.security.contract import exposure_warning, startup_problem
from tmf_server.settings import Settings
from tmf_server.store.embedded import free_port


def serve(tmp_path, *arguments: str, **env: str) -> tuple[subprocess.CompletedProcess, int]:
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TMF_") and k != "MONGODB_URI"}
    result = subprocess.run([sys.executable, "-m", "tmf_server", "serve", "--port", str(port), *arguments],
                            cwd=PROJECT_ROOT, env={**clean, "TMF_DATA_DIR": str(tmp_path / "data"), **env},
                            capture_output=True, text=True, timeout=60)
    return result, port


def assert_refused_before_starting(tmp_path, result, port, *fragments):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tmf-server: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Embedded MongoDB-wire engine" not in result.stdout and not (tmp_path / "data").exists(), \
        "the engine was started"
    with socket.socket() as probe:  # nothing listens
        assert probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "tmf.example.com"])
def test_listening_beyond_loopback_without_tmf_auth_is_refused(tmp_path, host):
    result, port = serve(tmp_path, "--host", host)
    assert_refused_before_starting(tmp_path, result, port, f"Refusing to listen on {host}", "TMF_AUTH=jwt",
                                   "TMF_AUTH=off")


def test_an_admin_listener_beyond_loopback_is_refused_too(tmp_path):
    result, port = serve(tmp_path, "--admin-port", str(free_port()), TMF_ADMIN_HOST="0.0.0.0")
    assert_refused_before_starting(tmp_path, result, port, "Refusing to listen on 0.0.0.0")


@pytest.mark.parametrize("env, fragment", [
    ({"TMF_AUTH": "jwt"}, "missing: TMF_JWT_ISSUER, TMF_JWT_AUDIENCE"),
    ({"TMF_AUTH": "jwt", "TMF_JWT_ISSUER": "https://idp/realms/tmf", "TMF_JWT_AUDIENCE": "tmf656"},
     "one of TMF_JWKS_URL and TMF_JWKS_FILE"),
    ({"TMF_AUTH": "jwt", "TMF_JWT_ISSUER": "https://idp/realms/tmf", "TMF_JWT_AUDIENCE": "tmf656",
      "TMF_JWKS_FILE": "/no/such/jwks.json"}, "is not a readable JWKS document"),
    ({"TMF_AUTH": "yes"}, "TMF_AUTH must be 'off' or 'jwt'"),
    ({"TMF_ADMIN": "maybe"}, "TMF_ADMIN must be 'on' or 'off'"),
])
def test_a_wrong_security_configuration_is_refused(tmp_path, env, fragment):
    result, port = serve(tmp_path, **env)
    assert_refused_before_starting(tmp_path, result, port, fragment)


def test_explicit_off_is_allowed_beyond_loopback_with_a_warning():
    """Checked on the decision itself: starting it would bind a non-loopback address."""
    settings = Settings.from_env({"TMF_AUTH": "off"}, host="0.0.0.0")
    assert startup_problem(settings, ("0.0.0.0",)) is None
    assert "WARNING: TMF_AUTH=off on 0.0.0.0" in exposure_warning(settings, ("0.0.0.0",))
    loopback = Settings.from_env({})
    assert startup_problem(loopback, ("127.0.0.1",)) is None and exposure_warning(loopback, ("127.0.0.1",)) is None
    assert startup_problem(loopback, ("localhost",)) is None and startup_problem(loopback, ("::1",)) is None
