"""CPU of the web process per long poll of the event feed, at a steady event rate.

Usage, from the repository root with the project's virtualenv (about 20 s):

    python bench/poll_cost.py                    # 50 connectors, 2,000 events a second, 8 s
    python bench/poll_cost.py --rate 4000 --seconds 10 --pollers 20

Starts the Procfile deployment `bench/run.py` starts, connects its pollers (each polls
`GET /v1/handoffs/events?wait=30&after=…` again as soon as it is answered, and checks
afterwards that it got every event once, in order), then appends events to the feed at a
fixed rate with the store's own writer (handoff/store/events.py), no webhook involved. It
reads the gunicorn workers' CPU time from /proc before and after and prints it per poll
and per event appended. Unlike a throughput ratio, this does not depend on how the
machine's two cores are shared at the moment: it is what a poll costs the server.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import Bench, Deployment, proc_cpu  # noqa: E402

from handoff.models import now_iso  # noqa: E402
from handoff.store.events import queue_event  # noqa: E402


def cpu_seconds(pids: list[int]) -> float:
    return sum(proc_cpu(pid) for pid in pids)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=2000, help="events appended a second (2000)")
    parser.add_argument("--seconds", type=float, default=8, help="how long events are appended (8)")
    parser.add_argument("--pollers", type=int, default=50, help="long-polling connectors (50)")
    args = parser.parse_args()
    mp.set_start_method("fork")
    workdir = Path(tempfile.mkdtemp(prefix="handoff-polls-"))
    deployment = Deployment(workdir)
    bench = None
    try:
        deployment.start()
        redis_client = deployment.redis()
        bench = Bench(SimpleNamespace(), deployment)
        process, pipe, _split = bench.start_pollers(args.pollers)
        workers = deployment.workers()
        batch = max(1, int(args.rate / 100))  # every 10 ms
        before, started, appended = cpu_seconds(workers), time.monotonic(), 0
        while time.monotonic() - started < args.seconds:
            writes = redis_client.pipeline(transaction=False)
            for _ in range(batch):
                queue_event(writes, f"HO{appended:024x}", {"state": "requested", "at": now_iso()}, "0")
                appended += 1
            writes.execute()
            ahead = started + appended / args.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        stats, expected = bench.finish_pollers(process, pipe)
        used = cpu_seconds(workers) - before
        polls = sum(s["polls"] for s in stats)
        complete = expected == appended and all(s["events"] == appended and not s["out_of_order"] and not s["error"] for s in stats)
        print(f"{appended} events appended in {args.seconds:g} s, {args.pollers} pollers, {polls} polls "
              f"({appended * args.pollers / max(1, polls):.0f} events a poll); every event to every poller once, "
              f"in order: {'yes' if complete else 'NO'}")
        print(f"web workers' CPU: {used:.2f} s = {1e6 * used / max(1, polls):.0f} µs a poll, "
              f"{1e6 * used / max(1, appended):.0f} µs an event appended")
        return 0 if complete else 1
    finally:
        if bench is not None:
            bench.stop_children()
        deployment.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
