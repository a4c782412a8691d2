"""One real server process for the intake tests, with fast event delivery to loopback listeners."""
from __future__ import annotations

import pytest

from tests.intake.support import Intake, IntakeContract
from tests.support.client import Api
from tests.support.server import ServerProcess

FAST = {"TMF_CALLBACK_ALLOW": "loopback", "TMF_DELIVERY_SCHEDULE": "0.1,0.2,0.4", "TMF_DISPATCH_POLL": "0.05"}


@pytest.fixture(scope="session")
def intake_server(tmp_path_factory):
    process = ServerProcess(tmp_path_factory.mktemp("intake"), env=FAST).start()
    yield process
    process.stop()


@pytest.fixture()
def intake(intake_server) -> Intake:
    return Intake(intake_server.root_url, IntakeContract())


@pytest.fixture()
def tmf(intake_server, contract) -> Api:
    """The TMF656 API of the same server (every answer checked against openapi/tmf656-v4.yaml)."""
    return Api(intake_server.base_url, contract)
