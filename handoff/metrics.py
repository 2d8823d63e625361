"""Prometheus metrics, counted in every process of a deployment and served at `GET /metrics`.

Multiprocess mode: each gunicorn worker and the rq worker write their samples to files under
`Config.metrics_dir` (DATA_DIR/metrics), and a scrape adds them all up. The service manages
that directory itself: `setup()` points prometheus_client at it in each process, the gunicorn
master clears what dead processes of an earlier run left (`remove_stale`), and tells the
library when a worker exits (`process_exited`, for the live gauge of open long polls).

Code elsewhere calls the `record_*`/`*_started` functions below, at a handful of places; the
metric names and what they count are listed in docs/operations.md.
"""
from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable
from contextvars import ContextVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily

from .models import ABANDONED, CONNECTED, FINAL_STATES, REQUESTED
from .redis_server import REDIS_ERRORS

# Every metric has labels: a labelled metric creates its per-process value (its file) only on
# first use, after `setup()` has chosen where values live.
REQUEST_SECONDS = Histogram(
    "handoff_http_request_duration_seconds", "Time to answer a request, by route (Flask rule) and method.",
    ("route", "method"),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 15, 31))
REQUESTS = Counter("handoff_http_requests_total", "Requests answered, by route, method and status.",
                   ("route", "method", "status"))
HANDOFFS_STARTED = Counter("handoff_handoffs_started_total", "Handoffs created.",
                           ("channel", "method", "destination"))
HANDOFFS_FINISHED = Counter("handoff_handoffs_finished_total",
                            "Handoffs that reached a final state (completed, failed, abandoned), by the "
                            "destination they were last sent to.", ("channel", "method", "destination", "state"))
ATTEMPTS = Counter("handoff_attempts_total",
                   "Transfer attempts that ended, by destination, outcome (connected, failed, abandoned), "
                   "Twilio's result word (busy, no-answer, in-progress, ...; or closed, voicemail, timeout) "
                   "and SIP code.", ("destination", "outcome", "result", "sip_code"))
OPEN_LONG_POLLS = Gauge("handoff_open_long_polls", "Event-feed requests waiting for an event now.",
                        ("route",), multiprocess_mode="livesum")
SNAPSHOT_ANSWERS = Counter("handoff_snapshot_answers_total",
                           "Voice answers built from the configuration snapshot (Redis unreachable, or no "
                           "call to record), by route.", ("route",))
WEBHOOK_DELIVERIES = Counter("handoff_webhook_deliveries_total",
                             "Handoff webhook deliveries, by result: delivered, retried (refused or "
                             "unreachable, will be tried again), given_up.", ("result",))

NO_ROUTE = "none"
# The route of the request being handled, for counters of code that knows no request.
current_route: ContextVar[str] = ContextVar("current_route", default=NO_ROUTE)

_metrics_dir: str | None = None
_FILE_OWNER = re.compile(r"_(?:rq|rqmain)?(\d+)\.db$")


# -- the process side ---------------------------------------------------------------------
def setup(metrics_dir: str, process_identifier: Callable[[], object] = os.getpid) -> str:
    """Count into `metrics_dir` from this process on. The first call in a process wins: values
    already created keep writing where they started."""
    global _metrics_dir
    if _metrics_dir is None:
        os.makedirs(metrics_dir, exist_ok=True)
        metrics_dir = os.path.abspath(metrics_dir)
        # prometheus_client reads the directory from the environment when it opens a file.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        values.ValueClass = values.MultiProcessValue(process_identifier)
        _metrics_dir = metrics_dir
    return _metrics_dir


def rq_worker_identifier() -> Callable[[], str]:
    """File names for an rq worker: its jobs run one at a time, each in a forked work horse,
    and all of a worker's horses share one set of files (`rq<worker pid>`), so the directory
    does not grow by a file per job. The worker process itself counts as `rqmain<pid>`."""
    main = os.getpid()
    return lambda: f"rq{main}" if os.getpid() != main else f"rqmain{main}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(metrics_dir: str) -> int:
    """Delete sample files of processes that are gone (an earlier run): a fresh start counts
    from zero, which Prometheus reads as a counter reset. Files of live processes (an rq worker
    already running) are kept."""
    removed = 0
    for path in glob.glob(os.path.join(metrics_dir, "*.db")):
        owner = _FILE_OWNER.search(os.path.basename(path))
        if owner and not _alive(int(owner.group(1))):
            os.remove(path)
            removed += 1
    return removed


def process_exited(metrics_dir: str, pid: int) -> None:
    """A gunicorn worker exited: its live gauges (open long polls) no longer count."""
    multiprocess.mark_process_dead(pid, metrics_dir)


class QueueCollector:
    """rq's job counts, read from Redis at scrape time (a gauge no process has to keep)."""

    def __init__(self, queue_provider):
        self.queue_provider = queue_provider

    def collect(self):
        family = GaugeMetricFamily("handoff_queue_jobs", "Background jobs by state: queued is the queue "
                                   "depth; scheduled are retries and timers not due yet.",
                                   labels=("queue", "state"))
        try:
            queue = self.queue_provider()
            counts = {"queued": queue.count, "scheduled": queue.scheduled_job_registry.count,
                      "started": queue.started_job_registry.count, "failed": queue.failed_job_registry.count}
        except REDIS_ERRORS:
            return  # Redis down: no queue numbers in this scrape; the rest still answers
        for state, count in counts.items():
            family.add_metric((queue.name, state), count)
        yield family


def exposition(queue_provider=None) -> tuple[bytes, str]:
    """The text a scrape gets: every process's samples, plus the queue's counts."""
    if _metrics_dir is None:  # setup() not called: this process's own samples only
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=_metrics_dir)
    if queue_provider is not None:
        registry.register(QueueCollector(queue_provider))
    return generate_latest(registry), CONTENT_TYPE_LATEST


# -- what the service records ----------------------------------------------------------------
def request_finished(route: str, method: str, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(route, method).observe(seconds)
    REQUESTS.labels(route, method, str(status)).inc()


def long_poll_started(route: str) -> None:
    OPEN_LONG_POLLS.labels(route).inc()


def long_poll_ended(route: str) -> None:
    OPEN_LONG_POLLS.labels(route).dec()


def snapshot_answer() -> None:
    SNAPSHOT_ANSWERS.labels(current_route.get()).inc()


def webhook_delivery(result: str) -> None:
    WEBHOOK_DELIVERIES.labels(result).inc()


def attempt_outcome(state: str, detail: dict) -> tuple[str, str, str, str] | None:
    """(destination, outcome, result, sip_code) of the attempt a history entry ends, if any.

    A failed attempt is recorded as `after` on the next attempt's entry, or in the entry that
    ends the handoff; a connected one in its `connected` entry (handoff/handoffs.py)."""
    failed = detail.get("after")
    if isinstance(failed, dict):
        return _attempt(failed, "failed")
    if not detail.get("destination"):
        return None
    if state == CONNECTED:
        return _attempt(detail, "connected", "accepted" if detail.get("accepted") else "answered")
    if "result" in detail:
        return _attempt(detail, "abandoned" if state == ABANDONED else "failed")
    if detail.get("reason") == "timeout":
        return _attempt(detail, "failed", "timeout")
    return None


def _attempt(detail: dict, outcome: str, default_result: str = "failed") -> tuple[str, str, str, str]:
    code = detail.get("sip_code")
    return (str(detail.get("destination") or NO_ROUTE), outcome, str(detail.get("result") or default_result),
            "" if code is None else str(code))


def record_history(handoff, first_new: int) -> None:
    """Count what a handoff's new history entries say: started, attempts, finished."""
    destination = handoff.destination or {}
    target = (destination.get("id") or NO_ROUTE, destination.get("method") or NO_ROUTE)
    for entry in handoff.history[first_new:]:
        state, detail = entry["state"], entry.get("detail") or {}
        if state == REQUESTED:
            HANDOFFS_STARTED.labels(handoff.channel, target[1], target[0]).inc()
        attempt = attempt_outcome(state, detail)
        if attempt is not None:
            ATTEMPTS.labels(*attempt).inc()
        if state in FINAL_STATES:
            HANDOFFS_FINISHED.labels(handoff.channel, target[1], target[0], state).inc()
