"""The database going away, coming back, a crash and a restart: data survives, errors stay TMF Errors."""
from pathlib import Path

import pymongo
import pytest

from tests.support.client import Api, report
from tests.support.polling import wait_for
from tests.support.server import ServerProcess
from tmf_server.store.embedded import EmbeddedEngine


@pytest.fixture()
def external_engine(tmp_path):
    engine = EmbeddedEngine(tmp_path / "engine").start()
    yield engine
    engine.stop()


@pytest.fixture()
def server_on_engine(tmp_path, external_engine, contract):
    process = ServerProcess(tmp_path / "server", env={"MONGODB_URI": external_engine.uri,
                                                      "TMF_DB_TIMEOUT_MS": "500", "TMF_RETRY_AFTER": "7"}).start()
    yield process, Api(process.base_url, contract)
    process.stop()


def test_unreachable_database_is_503_with_retry_after_then_recovers(server_on_engine, external_engine):
    _process, api = server_on_engine
    created = api.created()
    port, data_dir = external_engine.port, external_engine.data_dir
    external_engine.stop()

    for response in (api.get(created["id"]), api.list(), api.create(report()),
                     api.patch(created["id"], {"name": "x"}), api.delete(created["id"])):
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "7"
        assert response.json()["code"] == "serviceUnavailable"

    restarted = EmbeddedEngine(data_dir, port=port).start()
    external_engine.process, external_engine.port = restarted.process, restarted.port  # the fixture stops it
    recovered = wait_for(lambda: (r := api.get(created["id"])).status_code == 200 and r)
    assert recovered.json() == created
    assert api.total() == 1  # the request made while the database was down wrote nothing


def test_a_document_the_server_cannot_read_is_a_tmf_500(server_on_engine, external_engine):
    _process, api = server_on_engine
    client = pymongo.MongoClient(external_engine.uri)
    client["tmf656"]["serviceProblem"].insert_one({"_id": "written-by-another-tool", "status": "acknowledged"})
    response = api.get("written-by-another-tool")
    assert response.status_code == 500
    assert response.json()["code"] == "internalError"
    assert "Traceback" not in response.text and "KeyError" not in response.text
    client.close()


def engine_pid(data_dir: Path) -> int | None:
    """The live embedded engine process serving `data_dir`, found by its command line."""
    marker = str(data_dir / "tmf656.db").encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"nx-27017" in command and marker in command and pid_alive(int(entry.name)):
            return int(entry.name)
    return None


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_data_survives_a_killed_and_restarted_server(tmp_path, contract):
    first = ServerProcess(tmp_path).start()
    api = Api(first.base_url, contract)
    created = api.created()
    patched = api.patch(created["id"], {"status": "inProgress"}).json()
    engine = engine_pid(tmp_path)
    assert engine is not None
    first.kill()
    # The embedded engine ends with the server that started it, even after SIGKILL.
    wait_for(lambda: not pid_alive(engine))

    second = ServerProcess(tmp_path, port=first.port).start()
    try:
        assert engine_pid(tmp_path) not in (None, engine)
        response = api.get(created["id"])
        assert response.status_code == 200
        assert response.json() == patched
        assert api.total() == 1
    finally:
        second.stop()
    wait_for(lambda: engine_pid(tmp_path) is None)
