"""The Procfile `worker`: an rq worker (with its scheduler, for delayed retries) on the
same Redis as the web process — the embedded one under DATA_DIR when REDIS_URL is unset."""
from __future__ import annotations

import os

import redis
from rq import Worker

from . import logs, metrics
from .config import Config
from .redis_server import ensure_embedded
from .services import QUEUE_NAME, REDIS_ERRORS


class HandoffWorker(Worker):
    """An rq worker whose jobs log with the ids of the handoff or call they work on."""

    def perform_job(self, job, *args, **kwargs):
        bind_job_ids(job)
        return super().perform_job(job, *args, **kwargs)


def bind_job_ids(job) -> None:
    """Jobs take ids (handoff/jobs.py): a handoff id names its conversation and call too."""
    from . import jobs

    logs.clear()
    first = job.args[0] if job.args and isinstance(job.args[0], str) else ""
    if first.startswith("HO"):
        logs.bind(handoff_id=first)
        try:
            handoff = jobs.services().store.get_handoff(first)
        except REDIS_ERRORS:
            handoff = None
        if handoff is not None:
            logs.bind_handoff(handoff)
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
    from . import jobs
    from .services import Services

    jobs.use(Services(config.with_overrides(redis_url=url)))
    jobs.schedule_sweep(jobs.services())  # start the chain of transfer-timeout sweeps
    try:
        HandoffWorker([QUEUE_NAME], connection=connection).work(with_scheduler=True)
    finally:
        if owner is not None:
            owner.stop()


if __name__ == "__main__":
    main()
