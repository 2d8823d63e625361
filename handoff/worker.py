"""The Procfile `worker`: an rq worker (with its scheduler, for delayed retries) on the
same Redis as the web process — the embedded one under DATA_DIR when REDIS_URL is unset."""
from __future__ import annotations

import logging
import os

import redis
from rq import Worker

from .config import Config
from .redis_server import ensure_embedded
from .services import QUEUE_NAME


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = Config.from_env()
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
        Worker([QUEUE_NAME], connection=connection).work(with_scheduler=True)
    finally:
        if owner is not None:
            owner.stop()


if __name__ == "__main__":
    main()
