"""The admin API apart: on its own loopback listener (TMF_ADMIN_PORT / --admin-port) and not on the API's, needing
the admin scope there too; or not served at all (TMF_ADMIN=off)."""
from __future__ import annotations

import pytest
import requests

from tests.security.conftest import bearer
from tests.support.assertions import assert_tmf_error
from tests.support.server import ServerProcess
from tmf_server.store.embedded import free_port

ADMIN_PORT = free_port()
SERVER_ENV = {"TMF_ADMIN_PORT": str(ADMIN_PORT)}
ADMIN = f"http://127.0.0.1:{ADMIN_PORT}/admin"


def test_the_admin_api_answers_on_its_own_listener_only(secured, idp):
    operator = bearer(idp.token("admin"))
    response = requests.get(ADMIN + "/delivery", headers=operator, timeout=10)
    assert response.status_code == 200 and isinstance(response.json(), list), response.text
    assert_tmf_error(requests.get(secured.root_url + "/admin/delivery", headers=operator, timeout=10), 404)
    assert requests.get(secured.root_url + "/admin/openapi.json", timeout=10).status_code == 404
    # and the admin listener serves nothing else
    problems = requests.get(f"http://127.0.0.1:{ADMIN_PORT}/tmf-api/serviceProblemManagement/v4/serviceProblem",
                            headers=bearer(idp.token("serviceProblem:read")), timeout=10)
    assert_tmf_error(problems, 404)
    assert f"Admin API:   http://127.0.0.1:{ADMIN_PORT}/admin/delivery" in secured.log()


def test_the_admin_listener_needs_the_admin_scope(secured, idp):
    anonymous = requests.get(ADMIN + "/delivery", timeout=10)
    assert_tmf_error(anonymous, 401)
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    everything_else = "serviceProblem:read serviceProblem:write hub:read hub:write intake:read intake:write"
    assert_tmf_error(requests.get(ADMIN + "/delivery", headers=bearer(idp.token(everything_else)), timeout=10),
                     403, "admin")
    assert_tmf_error(requests.post(ADMIN + "/delivery/redrive?subscriptionId=x",
                                   headers=bearer(idp.token(everything_else)), timeout=10), 403, "admin")


@pytest.fixture(scope="module")
def without_admin(tmp_path_factory):
    process = ServerProcess(tmp_path_factory.mktemp("no-admin"), env={"TMF_ADMIN": "off"}).start()
    yield process
    process.stop()


def test_admin_off_serves_it_nowhere(without_admin):
    for path in ("/admin/delivery", "/admin/delivery/x", "/admin/openapi.json", "/admin/ui/"):
        assert requests.get(without_admin.root_url + path, timeout=10).status_code == 404, path
    assert_tmf_error(requests.post(without_admin.root_url + "/admin/delivery/redrive?subscriptionId=x", timeout=10),
                     404)
    assert requests.get(without_admin.base_url + "/serviceProblem?limit=1", timeout=10).status_code == 200
