"""The Procfile worker after its own crash, and after a restart of the web process alone.

Real gunicorn and rq worker processes; the webhook receiver is a real local HTTP server,
and a delivery it refuses is retried by the worker's scheduler 1 s later."""
from __future__ import annotations

import json
import signal
import socket

import pytest
import requests

from handoff.redis_server import EmbeddedServer, client_for
from tests.deployment import Deployment
from tests.helpers import API_KEY, AUTH_TOKEN
from tests.test_deployment import KEY, wait_for
from tests.test_jobs import Receiver

SCHEDULER_LOCK = "rq:scheduler-lock:handoff"  # rq's key (rq.scheduler.RQScheduler.get_locking_key)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def hooked_env(receiver, data_dir) -> dict[str, str]:
    return {"TWILIO_AUTH_TOKEN": AUTH_TOKEN, "HANDOFF_API_KEYS": API_KEY, "DATA_DIR": str(data_dir),
            "HANDOFF_WEBHOOK_URL": receiver.url, "HANDOFF_WEBHOOK_RETRY_INTERVALS": "1,1,1"}


def hand_off_a_chat(url: str) -> str:
    conversation = requests.post(url + "/v1/conversations", headers=KEY, json={"channel": "webchat"}, timeout=10)
    handoff = requests.post(f"{url}/v1/conversations/{conversation.json()['id']}/handoff", headers=KEY,
                            json={}, timeout=10)
    assert handoff.status_code == 201, handoff.text
    return handoff.json()["id"]


def deliveries(receiver, handoff_id: str) -> list[str]:
    return [json.loads(body)["state"] for _, body in receiver.requests
            if json.loads(body)["handoff"]["id"] == handoff_id]


def test_a_worker_killed_with_sigkill_and_started_again_runs_delayed_jobs(tmp_path, receiver):
    valkey = EmbeddedServer(tmp_path / "redis").start()
    deployment = Deployment({**hooked_env(receiver, tmp_path / "app"), "REDIS_URL": valkey.url})
    deployment.start()
    try:
        redis = client_for(valkey.url)
        assert wait_for(lambda: redis.get(SCHEDULER_LOCK)), deployment.log_text()
        deployment.signal_process("worker", signal.SIGKILL)  # the worker and its scheduler
        assert redis.get(SCHEDULER_LOCK)  # left behind, for rq's 61 s
        deployment.start_process("worker")
        receiver.statuses = [503]
        handoff_id = hand_off_a_chat(deployment.url)
        # The refused delivery is a delayed job (retry in 1 s): it runs, well within 30 s.
        assert wait_for(lambda: len(deliveries(receiver, handoff_id)) == 3, timeout=30), deployment.log_text()
        assert sorted(set(deliveries(receiver, handoff_id))) == ["pending", "requested"]  # one twice
    finally:
        deployment.stop()
        valkey.stop()


def test_the_worker_follows_embedded_valkey_when_only_the_web_process_restarts(tmp_path, receiver):
    deployment = Deployment(hooked_env(receiver, tmp_path / "var")).start()  # web starts Valkey
    port_file = tmp_path / "var" / "valkey.port"
    try:
        first_port = port_file.read_text()
        assert wait_for(lambda: "Listening on" in deployment.logs["worker"].read_text()), deployment.log_text()
        deployment.signal_process("web", signal.SIGTERM)  # stops its Valkey with it
        # Something else takes the old port meanwhile: web starts Valkey on another one.
        blocker = socket.socket()
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past its TIME_WAIT
        blocker.bind(("127.0.0.1", int(first_port)))
        blocker.listen()
        try:
            deployment.start_process("web")
        finally:
            blocker.close()
        assert port_file.read_text() != first_port
        handoff_id = hand_off_a_chat(deployment.url)
        assert wait_for(lambda: len(deliveries(receiver, handoff_id)) == 2, timeout=20), deployment.log_text()
        assert deployment.processes["worker"].poll() is None  # the same worker process
    finally:
        deployment.stop()
