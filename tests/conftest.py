"""Shared fixtures: one real server process (embedded engine) for the API tests."""
from __future__ import annotations

import pytest

from tests.support.client import Api
from tests.support.contract import Contract
from tests.support.listener import Listener
from tests.support.server import ServerProcess
from tmf_server.store.embedded import EmbeddedEngine


@pytest.fixture(scope="session")
def contract() -> Contract:
    return Contract()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    process = ServerProcess(tmp_path_factory.mktemp("server"),
                            env={"TMF_MAX_BODY_BYTES": "65536", "TMF_CALLBACK_ALLOW": "loopback"}).start()
    yield process
    process.stop()


@pytest.fixture()
def api(server, contract) -> Api:
    return Api(server.base_url, contract)


@pytest.fixture()
def listener_factory():
    """Real webhook receivers on loopback; all stopped afterwards."""
    started: list[Listener] = []

    def make(responder=None, *, up: bool = True, **options) -> Listener:
        listener = Listener(responder, **options)
        started.append(listener)
        return listener.up() if up else listener

    yield make
    for listener in started:
        listener.down()


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """An embedded engine for the tests of one module that talk to storage directly."""
    running = EmbeddedEngine(tmp_path_factory.mktemp("engine")).start()
    yield running
    # Bounded: the engine sometimes ignores SIGTERM for the whole default 10 s (docs/mongodb.md, "Event delivery").
    running.stop(timeout=3)
