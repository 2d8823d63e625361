"""The service's resources, built once per process from a `Config`."""
from __future__ import annotations

import json
import logging
import threading

import redis
from rq import Queue

from .config import Config
from .hours import utc_now
from .models import Destination
from .redis_server import client_for, resolve_redis_url
from .snapshot import Configuration, Snapshot
from .store import Store

log = logging.getLogger(__name__)

QUEUE_NAME = "handoff"
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)


class Services:
    """Config, store, configuration snapshot and job queue for one process."""

    def __init__(self, config: Config):
        self.config = config
        self.snapshot = Snapshot(config.data_dir)
        self._lock = threading.Lock()
        self._store: Store | None = None
        self._queue: Queue | None = None
        self._blocking: redis.Redis | None = None
        self.redis_url: str | None = config.redis_url
        self._configuration: tuple | None = None  # (what Redis returned, parsed)
        # What time it is, for opening hours; tests swap in a fixed clock.
        self.clock = utc_now

    def _connect(self) -> None:
        with self._lock:
            if self._store is not None:
                return
            url = resolve_redis_url(self.config.redis_url, self.config.data_dir)
            self.redis_url = url
            client = client_for(url, self.config.redis_timeout)
            self._store = Store(client, self.config.retention_seconds)
            # rq stores pickled job data: it needs a client that does not decode replies.
            self._queue = Queue(QUEUE_NAME, connection=redis.Redis.from_url(
                url, socket_timeout=self.config.redis_timeout * 2,
                socket_connect_timeout=self.config.redis_timeout))
            # Long polls block in Redis for up to a second at a time.
            self._blocking = client_for(url, timeout=5.0)

    @property
    def store(self) -> Store:
        if self._store is None:
            self._connect()
        return self._store

    @property
    def queue(self) -> Queue:
        if self._queue is None:
            self._connect()
        return self._queue

    @property
    def blocking_redis(self) -> redis.Redis:
        if self._blocking is None:
            self._connect()
        return self._blocking

    def configuration(self) -> Configuration:
        """The current destinations, refreshing the outage snapshot as a side effect.

        Read from Redis every time (so every process sees a change at once); parsed, and
        the snapshot rewritten, only when what Redis returned differs from last time."""
        raw = self.store.load_configuration_raw()
        cached = self._configuration
        if cached is not None and cached[0] == raw:
            return cached[1]
        destinations, default_id, integration = raw
        configuration = Configuration(
            sorted((Destination.from_dict(json.loads(v)) for v in destinations.values()),
                   key=lambda d: (d.created_at, d.id)),
            default_id, json.loads(integration) if integration else None)
        self.snapshot.remember(configuration)
        self._configuration = (raw, configuration)
        return configuration

    def schedule(self, seconds: float, func, *args, **kwargs):
        """Run a job later (the worker's scheduler moves it to the queue when due)."""
        from datetime import timedelta

        try:
            return self.queue.enqueue_in(timedelta(seconds=seconds), func, *args, **kwargs)
        except REDIS_ERRORS:
            log.exception("could not schedule %s", getattr(func, "__name__", func))
            return None

    def enqueue(self, func, *args, **kwargs):
        """Queue background work; a queue outage is logged, never fatal to the caller."""
        try:
            return self.queue.enqueue(func, *args, **kwargs)
        except REDIS_ERRORS:
            log.exception("could not enqueue %s", getattr(func, "__name__", func))
            return None
