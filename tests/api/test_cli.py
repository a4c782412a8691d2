"""`tmf-server serve` with several worker processes sharing one embedded engine."""
from tests.support.client import Api
from tests.support.polling import wait_for
from tests.support.server import ServerProcess


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
