"""`tmf-server serve` with several worker processes sharing one embedded engine; start-up failures; --version."""
import os
import platform
import re
import socket
import subprocess
import sys
import time

import requests

from tests.support.client import Api
from tests.support.polling import wait_for
from tests.support.server import PROJECT_ROOT, ServerProcess
from tmf_server import __version__
from tmf_server.events.signing import sign
from tmf_server.store.embedded import free_port


def test_several_workers_serve_one_store(tmp_path, contract):
    process = ServerProcess(tmp_path, env={"TMF_WORKERS": "2"}).start()
    try:
        api = Api(process.base_url, contract)
        created = [api.created()["id"] for _ in range(10)]
        # Every worker sees every write: each fresh connection may land on either process.
        for problem_id in created:
            response = api.request("GET", f"/serviceProblem/{problem_id}", headers={"Connection": "close"})
            assert response.status_code == 200
        assert api.total() == 10
        wait_for(lambda: process.log().count("Started server process") == 2)
    finally:
        process.stop()


# -- start-up: one line and a non-zero exit for what an operator must fix ------------------------------------


def run_cli(*arguments: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TMF_") and k != "MONGODB_URI"}
    return subprocess.run([sys.executable, "-m", "tmf_server", *arguments], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**clean, **(env or {})})


def assert_one_line_failure(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tmf-server: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "TMF656 API:" not in result.stdout  # the URLs are printed only by a server that can serve
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"tmf-server {__version__} (Python {platform.python_version()})"


def test_port_in_use_is_one_line_and_starts_nothing(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--port", str(port), "--data-dir", str(tmp_path))
    assert_one_line_failure(result, f"port {port} on 127.0.0.1 is already in use")
    assert not (tmp_path / "engine.pid").exists()  # no engine was started


def test_data_directory_served_by_another_server_names_its_pid(tmp_path):
    first = ServerProcess(tmp_path).start()
    try:
        result = run_cli("serve", "--port", str(free_port()), "--data-dir", str(tmp_path))
        assert_one_line_failure(result, f"is already served by another tmf-server (pid {first.process.pid};",
                                str(tmp_path))
        assert requests.get(first.base_url + "/serviceProblem", timeout=30).status_code == 200  # untouched
    finally:
        first.stop()


def test_unreachable_database_at_start_is_one_line(tmp_path):
    nobody = f"mongodb://user:secret@127.0.0.1:{free_port()}/"
    env = {"MONGODB_URI": nobody, "TMF_DB_TIMEOUT_MS": "300"}
    result = run_cli("serve", "--port", str(free_port()), env=env)
    assert_one_line_failure(result, "does not answer", "mongodb://***@127.0.0.1")
    assert "secret" not in result.stderr
    assert_one_line_failure(run_cli("worker", env=env), "does not answer")


def test_invalid_settings_are_one_line():
    assert_one_line_failure(run_cli("serve", env={"TMF_LOG_FORMAT": "xml"}), "TMF_LOG_FORMAT must be text or json")
    assert_one_line_failure(run_cli("serve", env={"TMF_PORT": "eighty"}), "TMF_PORT must be an integer")
    assert_one_line_failure(run_cli("serve", env={"TMF_HEADER_TIMEOUT": "0"}),
                            "TMF_HEADER_TIMEOUT must be a positive number of seconds up to 31536000, not '0'")
    assert_one_line_failure(run_cli("serve", env={"TMF_BODY_TIMEOUT": "-1"}),
                            "TMF_BODY_TIMEOUT must be a positive number of seconds up to 31536000, not '-1'")


def test_a_setting_out_of_range_starts_nothing(tmp_path):
    """Every numeric setting's range is checked before anything starts (tests/unit/test_settings_ranges.py has
    them all): no engine, no data directory, neither port bound."""
    port, engine_port, data = free_port(), free_port(), tmp_path / "data"
    result = run_cli("serve", "--port", str(port), "--data-dir", str(data),
                     env={"TMF_ENGINE_PORT": str(engine_port), "TMF_LEASE_SECONDS": "0"})
    assert_one_line_failure(result)
    assert result.stderr.strip() == ("tmf-server: invalid setting: TMF_LEASE_SECONDS must be a number of seconds "
                                     "from 0.001 to 31536000, not '0'")
    assert not data.exists()
    assert [pid for pid in _pids() if str(data).encode() in _command_line(pid)] == []
    for unused in (port, engine_port):
        with socket.socket() as client, socket.socket() as server:
            assert client.connect_ex(("127.0.0.1", unused)) != 0  # nothing listens
            server.bind(("127.0.0.1", unused))  # and nothing holds it


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _command_line(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read()
    except OSError:  # ended meanwhile
        return b""


def test_serve_help_lists_every_environment_variable():
    source = (PROJECT_ROOT / "tmf_server" / "settings.py").read_text()
    variables = set(re.findall(r'"((?:TMF_[A-Z_]+)|MONGODB_URI)"', source))
    assert len(variables) > 20
    shown = run_cli("serve", "--help").stdout
    assert sorted(v for v in variables if v not in shown) == []


def test_listen_prints_notifications_and_refuses_a_bad_signature():
    port = free_port()
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TMF_")}
    listener = subprocess.Popen([sys.executable, "-m", "tmf_server", "listen", "--port", str(port), "--secret", secret,
                                 "--count", "2", "--timeout", "60"], cwd=PROJECT_ROOT, env=clean,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        body = '{"eventType":"ServiceProblemCreateEvent","event":{"serviceProblem":{"id":"P1","status":"pending"}}}'
        stamp = str(int(time.time()))
        good = {"webhook-id": "m1", "webhook-timestamp": stamp, "webhook-signature": sign(secret, "m1", int(stamp), body)}
        bad = {**good, "webhook-id": "m2"}  # signed for m1: a forgery for m2
        url = f"http://127.0.0.1:{port}/listener"
        answers = wait_for(lambda: _post_or_none(url, body, good), message="the listener")
        assert answers.status_code == 204
        assert requests.post(url, data=body, headers=bad, timeout=30).status_code == 401
        out, _err = listener.communicate(timeout=60)
    finally:
        if listener.poll() is None:
            listener.kill()
    assert listener.returncode == 0
    assert out.splitlines() == ["ServiceProblemCreateEvent problem=P1 status=pending webhook-id=m1 signature=verified",
                                "ServiceProblemCreateEvent problem=P1 status=pending webhook-id=m2 signature=INVALID"]


def _post_or_none(url, body, headers):
    try:
        return requests.post(url, data=body, headers=headers, timeout=30)
    except requests.ConnectionError:
        return None


def test_listen_gives_up_after_its_timeout():
    result = run_cli("listen", "--port", str(free_port()), "--count", "1", "--timeout", "0.5")
    assert result.returncode == 1 and "fewer than 1 notifications within 0.5 s" in result.stderr
