"""The request's user outside a request: the intake's sweep writes reports from the dispatcher's loop thread, where
no request (and no token) exists; with TMF_AUTH=jwt, ServiceProblemService asks for the user on every write."""
from __future__ import annotations

import threading

from tmf_server.api.context import request_user, token_info


def test_outside_a_request_there_is_no_token_and_no_user():
    found = []
    thread = threading.Thread(target=lambda: found.append((token_info(), request_user())))
    thread.start()
    thread.join(10)
    assert found == [(None, None)]
