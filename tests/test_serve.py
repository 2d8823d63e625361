"""What ./scripts/serve tells a person once the service is up (it ends in handoff.launch)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from handoff.config import Config
from handoff.launch import PAGE_PATH, TWILIO_SETTINGS, ready_banner
from tests.deployment import ROOT, free_port
from tests.helpers import API_KEY


def test_every_url_the_banner_gives_is_a_route_of_the_app(app):
    rules = {rule.rule: rule.methods for rule in app.url_map.iter_rules()}
    for _, path in TWILIO_SETTINGS:
        assert "POST" in rules[path], path
    assert "GET" in rules[PAGE_PATH]


def test_the_banner_says_whether_signatures_are_checked():
    on = ready_banner(Config(public_base_url="https://h.example.com", twilio_auth_token="t", api_keys=("k",)))
    assert "https://h.example.com/voice/call" in on and "https://h.example.com/studio/handoffs" in on
    assert "Twilio signature checks: on" in on and "PUBLIC_BASE_URL is unset" not in on
    assert "every Twilio webhook will be refused" in ready_banner(Config(api_keys=("k",)))
    assert "OFF (TWILIO_VALIDATE=false)" in ready_banner(Config(twilio_validate=False))


def test_serve_prints_the_banner_once_up(valkey, tmp_path):
    port = free_port()
    env = {**os.environ, "PORT": str(port), "REDIS_URL": valkey.url, "DATA_DIR": str(tmp_path / "var"),
           "HANDOFF_API_KEYS": API_KEY, "TWILIO_VALIDATE": "false", "WEB_CONCURRENCY": "1"}
    env.pop("PUBLIC_BASE_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "handoff.launch"], cwd=ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    out: list[str] = []
    # A thread drains stdout (gunicorn's access lines go there too) so no line waits in a buffer.

    def drain():
        for line in process.stdout:
            out.append(line)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("Metrics:" in line for line in list(out)):
            time.sleep(0.1)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
        reader.join(5)
    text = "".join(out)
    assert f"handoff is up on http://localhost:{port}" in text, text
    assert f"http://localhost:{port}/voice/call" in text and f"http://localhost:{port}/studio/handoffs" in text
    assert "Twilio signature checks: OFF" in text
