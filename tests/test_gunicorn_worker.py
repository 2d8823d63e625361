"""The web worker's socket wrapper (handoff/gunicorn_worker.py HeadWithBody): a response's
head goes out with its first body bytes, and nothing is lost or reordered on the way."""
from __future__ import annotations

import socket

import pytest
import requests

from handoff.gunicorn_worker import HeadWithBody
from handoff.redis_server import EmbeddedServer
from tests.deployment import Deployment
from tests.helpers import API_KEY, AUTH_TOKEN

HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"


class RecordingSocket:
    """What gunicorn's Response would be writing to: each send as it went out."""

    def __init__(self):
        self.sends: list[bytes] = []

    def sendall(self, data):
        self.sends.append(bytes(data))

    def fileno(self):
        return 7


def test_the_head_goes_out_with_the_first_body_bytes_and_the_rest_as_written():
    sock = RecordingSocket()
    response = HeadWithBody(sock)
    response.sendall(HEAD)
    assert sock.sends == []
    response.sendall(memoryview(b"hel"))
    response.sendall(b"lo")
    response.flush()
    assert sock.sends == [HEAD + b"hel", b"lo"]


def test_a_head_without_a_body_goes_out_at_the_end_of_the_request():
    sock = RecordingSocket()
    response = HeadWithBody(sock)
    response.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
    response.flush()
    response.flush()
    assert sock.sends == [b"HTTP/1.1 204 No Content\r\n\r\n"]


def test_an_interim_answer_goes_at_once_and_the_final_head_waits_for_its_body():
    sock = RecordingSocket()
    response = HeadWithBody(sock)
    response.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
    assert len(sock.sends) == 1
    response.sendall(HEAD)
    response.sendall(b"hello")
    assert sock.sends[1:] == [HEAD + b"hello"]


def test_a_large_first_write_is_not_held_and_neither_is_what_follows():
    sock = RecordingSocket()
    response = HeadWithBody(sock)
    large = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * HeadWithBody.HEAD_LIMIT + b"\r\n\r\n"
    response.sendall(large)
    response.sendall(b"x")
    assert sock.sends == [large, b"x"]


def test_any_other_use_of_the_socket_sends_the_held_head_first():
    sock = RecordingSocket()
    response = HeadWithBody(sock)
    response.sendall(HEAD)
    assert response.fileno() == 7  # gunicorn's sendfile asks for it before sending the file
    assert sock.sends == [HEAD]


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """The Procfile's web process, whose worker writes through HeadWithBody."""
    data = tmp_path_factory.mktemp("worker")
    valkey = EmbeddedServer(data / "redis").start()
    deployment = Deployment({"REDIS_URL": valkey.url, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                             "HANDOFF_API_KEYS": API_KEY, "DATA_DIR": str(data / "app")}, processes=("web",))
    deployment.start()
    yield deployment
    deployment.stop()
    valkey.stop()


def test_the_procfile_gunicorn_answers_with_a_body_and_without_one(web):
    """Through the real worker: a body, and a head with none (sent when the request ends)."""
    with requests.get(web.url + "/healthz", timeout=5, headers={"Connection": "close"}) as got:
        assert got.status_code == 200 and got.json() == {"status": "ok"}
    with requests.head(web.url + "/healthz", timeout=5, headers={"Connection": "close"}) as head:
        assert head.status_code == 200 and head.content == b""
        assert head.headers["Content-Type"] == "application/json"


def test_kept_alive_requests_each_get_their_own_whole_answer(web):
    with socket.create_connection(("127.0.0.1", web.port), timeout=5) as conn:
        conn.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        received = b""
        while chunk := conn.recv(65536):  # the second answer closes the connection
            received += chunk
    first, second = received.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert first.endswith(b"\r\n\r\n") and b"Content-Length" in first  # a head, no body
    assert second.endswith(b'{"status":"ok"}\n')
