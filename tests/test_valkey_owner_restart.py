"""The embedded Valkey belongs to whichever Procfile process started first. When that is
the worker and only the worker restarts, the web process must not be left pointing at a
server that is gone (answering every call from the snapshot, the API 503, for good)."""
from __future__ import annotations

import signal

import requests

from tests.deployment import Deployment
from tests.helpers import API_KEY, AUTH_TOKEN
from tests.test_deployment import KEY, ONE_REQUEST, wait_for


def test_the_web_process_is_ready_again_after_the_worker_that_owns_valkey_restarts(tmp_path):
    data = tmp_path / "var"
    deployment = Deployment({"TWILIO_AUTH_TOKEN": AUTH_TOKEN, "HANDOFF_API_KEYS": API_KEY, "DATA_DIR": str(data)})
    try:
        deployment.start_process("worker")  # first: it starts Valkey and owns it
        assert wait_for(lambda: (data / "valkey.port").exists()), deployment.log_text()
        deployment.start_process("web")
        created = requests.post(deployment.url + "/v1/destinations", headers={**KEY, **ONE_REQUEST},
                                json={"name": "Kept", "route": "sip:kept@pbx.example.com"}, timeout=5)
        assert created.status_code == 201

        deployment.signal_process("worker", signal.SIGTERM)  # stops its Valkey with it
        deployment.start_process("worker")  # starts Valkey again

        assert wait_for(lambda: requests.get(deployment.url + "/readyz", headers=ONE_REQUEST, timeout=5).status_code == 200,
                        timeout=10), deployment.log_text()
        names = [d["name"] for d in requests.get(deployment.url + "/v1/destinations", headers={**KEY, **ONE_REQUEST},
                                                 timeout=5).json()["items"]]
        assert names == ["Kept"]
    finally:
        deployment.stop()
