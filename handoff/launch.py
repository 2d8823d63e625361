"""Run the whole Procfile locally: embedded Valkey (unless REDIS_URL), gunicorn and the worker.

`python -m handoff.launch` is what the README's run command ends in. Ctrl-C (or SIGTERM)
stops the web and worker processes, then the embedded server, cleanly."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from .config import Config
from .redis_server import ensure_embedded


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
    try:
        while not stopping:
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
