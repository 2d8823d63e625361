"""Running the Procfile's processes for real: gunicorn `web` and the rq `worker`."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def procfile() -> dict[str, list[str]]:
    commands = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if ":" in line:
            name, command = line.split(":", 1)
            # Run with this interpreter, as a PaaS runs the command with its own.
            argv = command.split()
            if argv[0] == "gunicorn":
                argv = [sys.executable, "-m", "gunicorn", *argv[1:]]
            elif argv[0] == "python":
                argv[0] = sys.executable
            commands[name.strip()] = argv
    return commands


class Deployment:
    def __init__(self, env: dict[str, str], processes=("web", "worker")):
        self.port = int(env.get("PORT") or free_port())
        self.env = {**os.environ, **env, "PORT": str(self.port)}
        self.env.pop("REDIS_URL", None) if "REDIS_URL" not in env else None
        self.url = f"http://127.0.0.1:{self.port}"
        self.names = processes
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    def start(self, timeout: float = 40.0) -> Deployment:
        for name in self.names:
            self.start_process(name, timeout)
        return self

    def start_process(self, name: str, timeout: float = 40.0) -> None:
        """Start (or start again) one Procfile process; the web one is waited for."""
        log = Path(self.env["DATA_DIR"]) / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        self.logs[name] = log
        self.processes[name] = subprocess.Popen(
            procfile()[name], cwd=ROOT, env=self.env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True)
        if name == "web":
            self.wait_ready(timeout)

    def signal_process(self, name: str, signum: int, timeout: float = 30.0) -> None:
        """Send a signal to one process and its children (its session), and wait for it to end."""
        process = self.processes[name]
        os.killpg(process.pid, signum)
        process.wait(timeout)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.processes["web"].poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("web did not become ready:\n" + self.logs["web"].read_text()[-3000:])

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        self.processes.clear()

    def log_text(self) -> str:
        return "\n".join(f"--- {name}\n{path.read_text()[-4000:]}" for name, path in self.logs.items())
