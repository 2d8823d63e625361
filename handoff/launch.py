"""Run the whole Procfile locally: embedded Valkey (unless REDIS_URL), gunicorn and the worker.

`python -m handoff.launch` is what the README's run command ends in. Ctrl-C (or SIGTERM)
stops the web and worker processes, then the embedded server, cleanly."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

from . import callback_urls
from .config import Config
from .redis_server import ensure_embedded

# Where each Twilio console setting points (README "Pointing Twilio at it"); a test checks
# every path is a route of the app.
TWILIO_SETTINGS = (
    ("Phone number / SIP Domain: A call comes in", callback_urls.INCOMING_CALL),
    ("Primary handler fails (fallback URL)", callback_urls.FALLBACK),
    ("Call status changes (status callback)", callback_urls.CALL_STATUS),
    ("Messaging: A message comes in", callback_urls.INCOMING_SMS),
    ("Your agent hands a live call over (redirect to)", callback_urls.AGENT_HANDOFF),
)
PAGE_PATH = "/studio/handoffs"


def ready_banner(config: Config) -> str:
    """What a person needs once the service is up: where to point Twilio, the page, and
    whether Twilio's signatures are checked."""
    local = f"http://localhost:{config.port}"
    base = config.public_base_url or local
    lines = ["", f"handoff is up on {local}", "", "Paste into Twilio's console (webhooks, HTTP POST):"]
    lines += [f"  {label:<50} {base}{path}" for label, path in TWILIO_SETTINGS]
    if not config.public_base_url:
        lines.append("  (PUBLIC_BASE_URL is unset: Twilio cannot reach localhost. Put a public https URL,\n"
                     "   e.g. a tunnel's, in PUBLIC_BASE_URL so these URLs and their signatures match.)")
    lines += ["", f"Call handoffs page: {base}{PAGE_PATH}  (sign in with a HANDOFF_API_KEYS key)"]
    if not config.api_keys:
        lines.append("  HANDOFF_API_KEYS is unset: the page, /v1 and /metrics refuse everyone.")
    if not config.twilio_validate:
        check = "OFF (TWILIO_VALIDATE=false): anyone can post to the webhooks. Local development only!"
    elif not config.twilio_auth_token:
        check = "on, but TWILIO_AUTH_TOKEN is unset: every Twilio webhook will be refused (403)"
    else:
        check = "on (X-Twilio-Signature is checked with TWILIO_AUTH_TOKEN)"
    lines += [f"Twilio signature checks: {check}", f"Metrics: {base}/metrics (with an API key)", ""]
    return "\n".join(lines)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5) as response:
            return response.status == 200
    except (OSError, ValueError):
        return False


def main() -> int:
    config = Config.from_env()
    env = dict(os.environ)
    owner = None
    if not config.redis_url:
        env["REDIS_URL"], owner = ensure_embedded(config.data_dir)
        print(f"embedded Valkey at {env['REDIS_URL']} (data in {os.path.abspath(config.data_dir)})", flush=True)
    children = [
        subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:app"], env=env),
        subprocess.Popen([sys.executable, "-m", "handoff.worker"], env=env),
    ]
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    announced = False
    try:
        while not stopping:
            if not announced and _answers(f"http://127.0.0.1:{config.port}/healthz"):
                print(ready_banner(config), flush=True)
                announced = True
            for child in children:
                if child.poll() is not None:
                    print(f"process {child.args} exited with {child.returncode}; stopping", flush=True)
                    code = child.returncode or 1
                    stopping = True
            time.sleep(0.2)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()
        if owner is not None:
            owner.stop()
    return code


if __name__ == "__main__":
    sys.exit(main())
