"""Fixtures of the security tests: a real identity provider and a server that trusts it, one of each per module."""
from __future__ import annotations

import pytest

from tests.security.idp import IdentityProvider
from tests.support.server import ServerProcess


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def idp():
    provider = IdentityProvider().up()
    yield provider
    provider.down()


@pytest.fixture(scope="module")
def secured(idp, tmp_path_factory, request):
    """A server with TMF_AUTH=jwt trusting `idp`; a module may set SERVER_ENV for more settings."""
    env = idp.server_env(TMF_CALLBACK_ALLOW="loopback", **getattr(request.module, "SERVER_ENV", {}))
    process = ServerProcess(tmp_path_factory.mktemp("secured"), env=env).start()
    yield process
    process.stop()
