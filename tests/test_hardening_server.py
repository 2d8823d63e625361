"""The Procfile web process under hostile load: slow clients and idle long polls.

Real gunicorn on 127.0.0.1, real sockets, bounded counts and loops. Twilio waits 15 s for a
voice webhook; these tests give it 5 s while the load is on."""
from __future__ import annotations

import os
import select
import signal
import socket
import threading
import time

import pytest
import requests

from handoff.redis_server import EmbeddedServer
from tests.deployment import Deployment
from tests.helpers import API_KEY, AUTH_TOKEN, call_params, parse
from tests.test_deployment import Caller

LONG_POLLS = 20  # per web process, this deployment's HANDOFF_MAX_LONG_POLLS
READ_TIMEOUT = 2  # this deployment's WEB_READ_TIMEOUT
VOICE_BOUND = 5.0  # seconds; Twilio gives up at 15
POLL = ("GET /v1/handoffs/events?wait=%d&after=9999999999999-0 HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {API_KEY}\r\n\r\n").encode()


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    data = tmp_path_factory.mktemp("hardening")
    valkey = EmbeddedServer(data / "redis").start()
    deployment = Deployment({
        "REDIS_URL": valkey.url, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "HANDOFF_API_KEYS": API_KEY,
        "DATA_DIR": str(data / "app"), "WEB_CONCURRENCY": "2",
        "HANDOFF_MAX_LONG_POLLS": str(LONG_POLLS), "WEB_READ_TIMEOUT": str(READ_TIMEOUT),
    }, processes=("web",))
    deployment.env["PUBLIC_BASE_URL"] = deployment.url
    deployment.start()
    yield deployment
    deployment.stop()
    valkey.stop()


def open_sockets(port: int, count: int, request: bytes) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(request)
        sockets.append(sock)
    return sockets


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed this connection (whatever it sent before)."""
    while select.select([sock], [], [], 0)[0]:
        try:
            if not sock.recv(4096):
                return True
        except OSError:
            return True
    return False


def voice_call(url: str, call_sid: str) -> requests.Response:
    """Twilio's signed POST /voice/call, given VOICE_BOUND seconds to answer."""
    params = call_params(call_sid)
    signature = Caller(url).validator.compute_signature(url + "/voice/call", params)
    try:
        response = requests.post(url + "/voice/call", data=params, timeout=VOICE_BOUND,
                                 headers={"X-Twilio-Signature": signature})
    except requests.Timeout:
        pytest.fail(f"the voice webhook did not answer within {VOICE_BOUND} s")
    assert response.status_code == 200
    assert parse(response.text).tag == "Response"
    return response


def test_clients_trickling_requests_neither_hold_up_voice_nor_stay_connected(web):
    # Half trickle header lines, half a form body: ~130 of these pinned every gthread thread.
    headers = open_sockets(web.port, 75, b"POST /voice/call HTTP/1.1\r\nHost: x\r\nX-Slow: a")
    bodies = open_sockets(web.port, 75, b"POST /voice/call HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 5000\r\n\r\nA")
    slow = headers + bodies
    stop = threading.Event()

    def trickle():
        while not stop.wait(0.3):
            for sock in slow:
                try:
                    sock.send(b"a")
                except OSError:
                    pass

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        time.sleep(0.5)
        for call in range(3):  # Twilio retries nothing: every call must be answered
            voice_call(web.url, f"CA{call:032d}")
        # Still trickling, every slow client is disconnected once its read deadline passes.
        deadline = time.monotonic() + READ_TIMEOUT * 2 + 3
        open_ = list(slow)
        while open_ and time.monotonic() < deadline:
            open_ = [sock for sock in open_ if not closed_by_server(sock)]
            time.sleep(0.2)
        assert not open_, f"{len(open_)} of {len(slow)} trickling connections still open"
    finally:
        stop.set()
        trickler.join(5)
        for sock in slow:
            sock.close()


def response_heads(sockets: list[socket.socket], seconds: float) -> list[bytes]:
    """What the server sent on each socket within `seconds` (status line and headers)."""
    heads = {sock: b"" for sock in sockets}
    pending = set(sockets)
    until = time.monotonic() + seconds
    while pending and time.monotonic() < until:
        readable, _, _ = select.select(list(pending), [], [], max(0.0, until - time.monotonic()))
        for sock in readable:
            chunk = sock.recv(4096)
            heads[sock] += chunk
            if not chunk or b"\r\n\r\n" in heads[sock]:
                pending.discard(sock)
    return [heads[sock] for sock in sockets]


def test_long_polls_past_the_limit_are_turned_away_at_once_and_voice_answers(web):
    poll = POLL % 30
    pollers = open_sockets(web.port, 200, poll)  # 200 connectors, each holding a waiting poll
    try:
        time.sleep(0.5)
        voice_call(web.url, "CA" + "52" * 16)
        quick = requests.get(web.url + "/v1/handoffs/events", timeout=VOICE_BOUND,
                             headers={"Authorization": f"Bearer {API_KEY}"})
        assert quick.status_code == 200  # a poll that does not wait needs no slot
        heads = response_heads(pollers, 3)
        turned_away = [h for h in heads if h.startswith(b"HTTP/1.1 429")]
        # Two processes hold LONG_POLLS each at most; every other poll is answered at once.
        assert len(turned_away) >= 200 - 2 * LONG_POLLS, heads[:3]
        assert all(b"\r\nRetry-After: 2\r\n" in h for h in turned_away)
        assert not [h for h in heads if h and not h.startswith(b"HTTP/1.1 429")]  # the rest wait
    finally:
        for sock in pollers:
            sock.close()


def test_a_client_that_expects_100_continue_gets_it_before_sending_its_body(web):
    body = b'{"channel": "webchat"}'
    with socket.create_connection(("127.0.0.1", web.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/conversations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Authorization: Bearer {API_KEY}\r\nContent-Length: {len(body)}\r\n".encode()
                     + b"Expect: 100-continue\r\n\r\n")
        assert response_heads([sock], 3)[0].startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(body)
        assert response_heads([sock], 3)[0].startswith(b"HTTP/1.1 201 ")


def test_a_stopping_web_process_answers_its_long_polls_instead_of_cutting_them_off(tmp_path):
    valkey = EmbeddedServer(tmp_path / "redis").start()
    deployment = Deployment({"REDIS_URL": valkey.url, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "HANDOFF_API_KEYS": API_KEY,
                             "DATA_DIR": str(tmp_path / "app"), "WEB_CONCURRENCY": "1"}, processes=("web",)).start()
    try:
        pollers = open_sockets(deployment.port, 3, POLL % 30)
        time.sleep(0.5)
        os.killpg(deployment.processes["web"].pid, signal.SIGTERM)  # a deploy: stop gracefully
        heads = response_heads(pollers, 5)  # gunicorn's graceful timeout is 20 s
        assert all(head.startswith(b"HTTP/1.1 200 ") for head in heads), heads
        for sock in pollers:
            sock.close()
    finally:
        deployment.stop()
        valkey.stop()
