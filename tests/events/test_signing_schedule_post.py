"""Signatures, the retry schedule and a single HTTP attempt, without a database."""
from __future__ import annotations

import base64
import hashlib
import hmac
import random
import re
import socket
import threading
import time
from email.utils import formatdate

import pytest

from tests.support.polling import wait_for
from tmf_server.events.sender import DRAIN_BYTES, EXCERPT_BYTES, MAX_HEAD_BYTES, Sender
from tmf_server.events.schedule import next_delay, parse_retry_after
from tmf_server.events.signing import sign, signing_key

SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)


# -- signatures ------------------------------------------------------------------------------------------

def test_signature_matches_the_standard_webhooks_reference_vector():
    # The test vector of the Standard Webhooks reference libraries.
    assert sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                '{"test": 2432232314}') == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_secret_without_the_whsec_prefix_is_used_as_utf8_bytes():
    expected = base64.b64encode(hmac.new("sécret".encode(), b"id.1.{}", hashlib.sha256).digest()).decode()
    assert sign("sécret", "id", 1, "{}") == "v1," + expected
    assert signing_key("whsec_" + base64.b64encode(b"\x00\x01key").decode()) == b"\x00\x01key"


def test_a_whsec_secret_that_is_not_base64_is_refused():
    with pytest.raises(ValueError, match="not valid base64"):
        signing_key("whsec_not*base64")


# -- schedule ----------------------------------------------------------------------------------------------

def test_each_failure_waits_its_scheduled_delay_with_ten_percent_jitter_then_parks():
    rng = random.Random(7)
    for failures, base in enumerate(SCHEDULE, start=1):
        delays = [next_delay(failures, SCHEDULE, rng=rng) for _ in range(200)]
        assert all(0.9 * base <= d <= 1.1 * base for d in delays)
        assert max(delays) - min(delays) > 0.1 * base  # jittered, not constant
    assert next_delay(len(SCHEDULE) + 1, SCHEDULE) is None  # after the last attempt: park
    assert next_delay(1, (0,)) == 0  # never negative


def test_retry_after_wins_when_later_and_is_capped():
    assert next_delay(1, SCHEDULE, retry_after=120) == 120
    assert 4.5 <= next_delay(1, SCHEDULE, retry_after=1) <= 5.5  # the schedule is later
    assert next_delay(1, SCHEDULE, retry_after=10 ** 9, max_retry_after=3600) == 3600
    assert next_delay(len(SCHEDULE) + 1, SCHEDULE, retry_after=5) is None


def test_retry_after_is_read_as_seconds_or_http_date():
    now = time.time()
    assert parse_retry_after("30", now) == 30
    assert 59 <= parse_retry_after(formatdate(now + 60, usegmt=True), now) <= 61
    assert parse_retry_after(formatdate(now - 60, usegmt=True), now) == 0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("-5", now) is None


# -- one HTTP attempt ----------------------------------------------------------------------------------

HEADERS = {"webhook-id": "e1", "webhook-timestamp": "1"}


def post(url: str, body: str, timeout: float, allow: tuple[str, ...]):
    """One attempt from a fresh Sender (no connection kept from another test)."""
    sender = Sender(timeout, allow)
    try:
        return sender.post(url, body, HEADERS)
    finally:
        sender.close()


def test_a_2xx_is_delivered(listener_factory):
    receiver = listener_factory()
    result = post(receiver.url, '{"a": 1}', 2.0, ("loopback",))
    assert result.delivered and result.status == 204 and result.error is None
    [request] = receiver.received()
    assert request.body == b'{"a": 1}' and request.headers["content-type"] == "application/json"


def test_a_failed_response_is_a_value_with_its_retry_after(listener_factory):
    receiver = listener_factory(lambda _r, _n: (503, {"Retry-After": "7"}))
    result = post(receiver.url, "{}", 2.0, ("loopback",))
    assert not result.delivered and result.status == 503 and result.retry_after == "7"
    assert result.error.startswith("HTTP 503") and result.response == "ok"


def test_redirects_are_not_followed(listener_factory):
    receiver = listener_factory(lambda _r, _n: (302, {"Location": "http://127.0.0.1:1/elsewhere"}))
    result = post(receiver.url, "{}", 2.0, ("loopback",))
    assert not result.delivered and result.status == 302 and len(receiver.received()) == 1


def test_a_receiver_that_is_not_listening_is_an_error_value(listener_factory):
    receiver = listener_factory(up=False)
    result = post(receiver.url, "{}", 2.0, ("loopback",))
    assert result.status is None and "refused" in result.error.lower()


def test_the_callback_policy_is_checked_at_delivery_time(listener_factory):
    receiver = listener_factory()
    result = post(receiver.url, "{}", 2.0, ())  # loopback not allowed
    assert result.status is None and result.error.startswith("callback refused:") and "loopback" in result.error
    assert receiver.arrivals == 0


def test_the_timeout_bounds_the_whole_attempt(listener_factory):
    receiver = listener_factory()
    receiver.hold.clear()  # the receiver accepts the request and never answers
    started = time.monotonic()
    result = post(receiver.url, "{}", 0.5, ("loopback",))
    assert result.status is None and result.error == "timed out after 0.5 s"
    assert time.monotonic() - started < 5  # bounded by the timeout, not by the receiver


def test_connections_are_kept_alive_and_reused(listener_factory):
    receiver = listener_factory(keep_alive=True)
    sender = Sender(2.0, ("loopback",))
    try:
        results = [sender.post(receiver.url, "{}", {**HEADERS, "webhook-id": f"e{i}"}) for i in range(5)]
    finally:
        sender.close()
    assert all(r.delivered for r in results)
    assert len({r.client for r in receiver.received()}) == 1  # one connection carried all five


def test_a_connection_the_listener_closed_while_idle_is_replaced_and_the_request_sent_once(listener_factory):
    # The listener closes each connection after one answer without saying so (no `Connection: close`):
    # the next attempt finds the kept connection dead and sends on a new one, once.
    receiver = listener_factory(keep_alive=True, close_after=1)
    sender = Sender(2.0, ("loopback",))
    try:
        results = [sender.post(receiver.url, "{}", {**HEADERS, "webhook-id": f"e{i}"}) for i in range(4)]
    finally:
        sender.close()
    assert [r.status for r in results] == [204] * 4
    assert [r.webhook_id for r in receiver.received()] == ["e0", "e1", "e2", "e3"]
    assert len({r.client for r in receiver.received()}) == 4


def test_a_connection_that_timed_out_is_not_reused(listener_factory):
    receiver = listener_factory(keep_alive=True)
    sender = Sender(0.5, ("loopback",))
    try:
        receiver.hold.clear()
        assert sender.post(receiver.url, "{}", HEADERS).error == "timed out after 0.5 s"
        receiver.hold.set()
        after = sender.post(receiver.url, "{}", {**HEADERS, "webhook-id": "e2"})
    finally:
        sender.close()
    assert after.delivered
    # The held request is recorded when the listener lets it go, possibly after the second one.
    wait_for(lambda: len(receiver.received()) == 2, 10, message="both requests recorded")
    by_id = {r.webhook_id: r for r in receiver.received()}
    assert by_id["e2"].client != by_id["e1"].client


# -- how answers are framed: a listener that writes scripted bytes -------------------------------------------

class ScriptedListener:
    """A real TCP listener on loopback that reads each request (head and Content-Length body) and writes the
    next scripted answer, byte for byte; `close` after an answer ends the connection. Notes each request's
    connection, so reuse can be asserted."""

    def __init__(self, answers: list[tuple[bytes, bool]]):
        self.answers = list(answers)
        self.requests: list[tuple[int, bytes]] = []  # (connection number, request head and body)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}/hook?x=1"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        number = 0
        while self.answers:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            number += 1
            with connection:
                buffer = b""
                while self.answers:
                    while b"\r\n\r\n" not in buffer:
                        data = connection.recv(65536)
                        if not data:
                            break
                        buffer += data
                    if b"\r\n\r\n" not in buffer:
                        break
                    head, _, buffer = buffer.partition(b"\r\n\r\n")
                    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
                    while len(buffer) < length:
                        buffer += connection.recv(65536)
                    self.requests.append((number, head + b"\r\n\r\n" + buffer[:length]))
                    buffer = buffer[length:]
                    answer, close = self.answers.pop(0)
                    connection.sendall(answer)
                    if close:
                        break

    def close(self) -> None:
        self._server.close()
        self._thread.join(5)


@pytest.fixture()
def scripted():
    started: list[ScriptedListener] = []

    def make(*answers: tuple[bytes, bool]) -> ScriptedListener:
        listener = ScriptedListener(list(answers))
        started.append(listener)
        return listener

    yield make
    for listener in started:
        listener.close()


def send_all(url: str, count: int) -> list:
    sender = Sender(2.0, ("loopback",))
    try:
        return [sender.post(url, '{"n": %d}' % i, {**HEADERS, "webhook-id": f"e{i}"}) for i in range(count)]
    finally:
        sender.close()


def test_the_request_is_one_http_1_1_post_with_its_headers_and_body(scripted):
    listener = scripted((b"HTTP/1.1 204 No Content\r\n\r\n", False))
    [result] = send_all(listener.url, 1)
    assert result.delivered and result.response is None
    [(_, request)] = listener.requests
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == "POST /hook?x=1 HTTP/1.1" and body == b'{"n": 0}'
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    assert headers["host"] == listener.url.split("/")[2] and headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(body)) and headers["webhook-id"] == "e0"


def test_answers_framed_by_length_or_chunks_keep_the_connection(scripted):
    listener = scripted(
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst", False),
        (b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\nRetry-After: 9\r\n\r\n"
         b"4;ext=1\r\nbusy\r\n6\r\n, wait\r\n0\r\nTrailer: x\r\n\r\n", False),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\nok", False))
    results = send_all(listener.url, 3)
    assert [(r.status, r.response) for r in results] == [(200, "first"), (503, "busy, wait"), (202, "ok")]
    assert results[1].error == "HTTP 503 Service Unavailable" and results[1].retry_after == "9"
    assert [number for number, _ in listener.requests] == [1, 1, 1]  # one connection carried all three


def test_an_answer_that_ends_the_connection_is_read_and_the_next_request_opens_another(scripted):
    listener = scripted(
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", True),
        (b"HTTP/1.0 201 Created\r\n\r\nclose-delimited body", True),
        (b"HTTP/1.1 204 No Content\r\n\r\n", False))
    results = send_all(listener.url, 3)
    assert [(r.status, r.response) for r in results] == [(200, "ok"), (201, "close-delimited body"), (204, None)]
    assert [number for number, _ in listener.requests] == [1, 2, 3]


def test_a_body_longer_than_what_is_drained_closes_the_connection_but_keeps_the_status(scripted):
    big = b"x" * (DRAIN_BYTES + 10)
    listener = scripted((b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n" % len(big) + big, False),
                        (b"HTTP/1.1 204 No Content\r\n\r\n", False))
    results = send_all(listener.url, 2)
    assert results[0].status == 500 and results[0].response == "x" * EXCERPT_BYTES
    assert results[1].delivered
    assert [number for number, _ in listener.requests] == [1, 2]


@pytest.mark.parametrize("answer, error", [
    (b"SMTP ready\r\n\r\n", "ProtocolError: not an HTTP/1.x answer: 'SMTP ready'"),
    (b"HTTP/1.1 2x4 Bad\r\n\r\n", "ProtocolError: not an HTTP/1.x answer: 'HTTP/1.1 2x4 Bad'"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "ProtocolError: a header line without a colon: 'no colon here'"),
    (b"HTTP/1.1 200 OK\r\n", "ConnectionResetError: the listener closed the connection before answering"),
])
def test_an_answer_that_is_not_http_is_an_error_value(scripted, answer, error):
    listener = scripted((answer, True))
    [result] = send_all(listener.url, 1)
    assert result.status is None and result.error == error and not result.delivered


def test_a_header_block_without_end_is_an_error_value(scripted):
    listener = scripted((b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"p" * (MAX_HEAD_BYTES + 1), False))
    [result] = send_all(listener.url, 1)
    assert result.status is None and result.error == "ProtocolError: the answer's header block is too long"


def test_a_body_cut_short_keeps_the_status_and_drops_the_connection(scripted):
    listener = scripted((b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nonly part", True),
                        (b"HTTP/1.1 204 No Content\r\n\r\n", False))
    results = send_all(listener.url, 2)
    assert results[0].delivered and results[0].response is None
    assert results[1].delivered and [number for number, _ in listener.requests] == [1, 2]


def test_a_callback_path_beyond_ascii_is_sent_percent_encoded(scripted):
    listener = scripted((b"HTTP/1.1 204 No Content\r\n\r\n", False))
    [result] = send_all(listener.url.replace("/hook?x=1", "/h\u00f6\u00f6k?q=\u00fc%2F"), 1)
    assert result.delivered
    [(_, request)] = listener.requests
    assert request.split(b"\r\n", 1)[0] == b"POST /h%C3%B6%C3%B6k?q=%C3%BC%2F HTTP/1.1"
