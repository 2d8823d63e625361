"""The Procfile `worker`: an rq worker (with its scheduler, for delayed retries) on the
same Redis as the web process — the embedded one under DATA_DIR when REDIS_URL is unset."""
from __future__ import annotations

import logging
import os
import sys
import threading
import time

import redis
from rq import Worker

from . import jobs, logs, metrics
from .config import Config
from .redis_server import ensure_embedded, recorded_url
from .scheduler_lock import take_over_dead_scheduler
from .services import QUEUE_NAME, Services

log = logging.getLogger(__name__)

# Seconds between two looks at DATA_DIR/valkey.port (see follow_embedded_server).
FOLLOW_INTERVAL = 1.0


class RoutineSweepLines(logging.Filter):
    """Drops rq's INFO lines about the transfer-timeout sweep. rq writes four per job (taken,
    completed, OK, result kept), and the sweep runs every 5 s (Config.sweep_interval): ~70,000
    lines a day that would bury the webhook and call jobs an operator reads the log for. The
    sweep logs what it times out itself, and rq's warnings and errors about it still show."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        message = record.getMessage()
        return jobs.SWEEP_JOB_ID not in message and jobs.sweep_transfers.__name__ not in message


class HandoffWorker(Worker):
    """An rq worker whose jobs log with the ids of the handoff or call they work on."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.log.addFilter(ROUTINE_SWEEP_LINES)  # once per logger: addFilter skips a repeat

    def perform_job(self, job, *args, **kwargs):
        bind_job_ids(job)
        return super().perform_job(job, *args, **kwargs)


ROUTINE_SWEEP_LINES = RoutineSweepLines()


def bind_job_ids(job) -> None:
    """Jobs take ids (handoff/jobs.py). A handoff's conversation and call are bound when the
    job reads the handoff (jobs.job_handoff), not by a read of its own here."""
    logs.clear()
    first = job.args[0] if job.args and isinstance(job.args[0], str) else ""
    if first.startswith("HO"):
        logs.bind(handoff_id=first)
    elif first.startswith("CA"):
        logs.bind(call_sid=first, conversation_id=first)


def main() -> None:
    config = Config.from_env()
    logs.configure(config.log_format)
    metrics.setup(config.metrics_dir, metrics.rq_worker_identifier())
    owner = None
    url = config.redis_url
    if not url:
        url, owner = ensure_embedded(config.data_dir)
        os.environ["REDIS_URL"] = url
    connection = redis.Redis.from_url(url)
    jobs.use(Services(config.with_overrides(redis_url=url)))
    jobs.schedule_sweep(jobs.services())  # start the chain of transfer-timeout sweeps
    take_over_dead_scheduler(connection, QUEUE_NAME)  # after a kill -9, before rq tries the lock
    worker = HandoffWorker([QUEUE_NAME], connection=connection)
    if not config.redis_url and owner is None:
        follow_embedded_server(worker, config.data_dir, url)
    try:
        worker.work(with_scheduler=True)
    finally:
        if owner is not None:
            owner.stop()


def follow_embedded_server(worker: Worker, data_dir: str, url: str) -> None:
    """Start over on the embedded server's new port when the process that owns it restarts.

    The web process owns the embedded Valkey when it started first: restarted alone, it
    stops that server and starts another on a new port. rq would retry the old port for
    ever, so the worker re-executes itself, which finds the new port in DATA_DIR/valkey.port
    like any process starting (tests/test_hardening_worker.py)."""
    def watch():
        while True:
            time.sleep(FOLLOW_INTERVAL)
            moved_to = recorded_url(data_dir)
            if moved_to is not None and moved_to != url:
                log.warning("embedded Valkey moved from %s to %s; restarting the worker on it", url, moved_to)
                restart(worker)

    threading.Thread(target=watch, name="follow-embedded-valkey", daemon=True).start()


def restart(worker: Worker) -> None:
    scheduler = worker.scheduler._process if worker.scheduler else None
    if scheduler is not None and scheduler.is_alive():
        scheduler.kill()  # its Redis is gone: nothing to flush
        scheduler.join(2)
    os.environ.pop("REDIS_URL", None)  # set by main() for the old server, not configured
    logging.shutdown()
    os.execv(sys.executable, [sys.executable, "-m", "handoff.worker"])


if __name__ == "__main__":
    main()
