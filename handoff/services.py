"""The service's resources, built once per process from a `Config`."""
from __future__ import annotations

import logging
import threading

import redis
from rq import Queue, Retry

from .config import Config
from .event_feed import EventFeed
from .hours import utc_now
from .models import Destination
from .redis_server import REDIS_ERRORS, client_for, resolve_redis_url
from .snapshot import RoutingTable, Snapshot
from .store import Store
from .store.configuration import ConfigStore

log = logging.getLogger(__name__)

QUEUE_NAME = "handoff"


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
        self._config_store: ConfigStore | None = None
        self._event_feed: EventFeed | None = None
        # env → (version, parsed configuration): a version never changes once written.
        self._parsed: dict[str, tuple[int, RoutingTable]] = {}
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
            self._config_store = ConfigStore(client)
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

    @property
    def event_feed(self) -> EventFeed:
        """This process's event feed (its reader starts with the first waiting poll)."""
        if self._event_feed is None:
            store, client = self.store, self.blocking_redis  # outside the lock: they take it
            with self._lock:
                if self._event_feed is None:
                    self._event_feed = EventFeed(store, client)
        return self._event_feed

    @property
    def config_store(self) -> ConfigStore:
        if self._config_store is None:
            self._connect()
        return self._config_store

    def configuration(self, env: str = "live") -> RoutingTable:
        """The routing configuration callers meet (`live`), or the draft being edited
        (`sandbox`: what a test number pointed at `/voice/call?env=sandbox` meets).

        Costs one GET of a version number while nothing changed (parsed copies are kept
        per version); a new live version also refreshes the outage snapshot."""
        store = self.config_store
        snapshot = store.draft() if env == "sandbox" else store.live()
        key = "sandbox" if env == "sandbox" else "live"
        fresh = self._parsed.get(key, (None,))[0] != snapshot.version
        configuration = self.parsed(key, snapshot)
        # Every read of a version, not only the first: remembering the configuration
        # already saved costs nothing, and a snapshot that could not be written (a full
        # disk) is written again at a later read instead of only at the next change.
        if key == "live" and (fresh or snapshot.version):
            self.snapshot.remember(configuration, snapshot.version)
        return configuration

    def parsed(self, key: str, snapshot) -> RoutingTable:
        """`snapshot` parsed, once per version (version 0, data from before versions, is
        parsed every time: nothing says when it changed)."""
        cached = self._parsed.get(key)
        if cached is not None and cached[0] == snapshot.version and snapshot.version:
            return cached[1]
        configuration = configuration_of(snapshot.entities)
        self._parsed[key] = (snapshot.version, configuration)
        return configuration

    def schedule(self, seconds: float, func, *args, **kwargs):
        """Run a job later (the worker's scheduler moves it to the queue when due)."""
        from datetime import timedelta

        try:
            return self.queue.enqueue_in(timedelta(seconds=seconds), func, *args, **kwargs)
        except REDIS_ERRORS:
            log.exception("could not schedule %s", getattr(func, "__name__", func))
            return None

    def job_retry(self) -> Retry:
        """How often a failed job is tried again: once per HANDOFF_WEBHOOK_RETRY_INTERVALS entry."""
        intervals = self.config.webhook_retry_intervals
        return Retry(max=len(intervals), interval=list(intervals))

    def enqueue(self, func, *args, **kwargs):
        """Queue background work; a queue outage is logged, never fatal to the caller.

        `func` is a job's dotted name (`"handoff.jobs.redirect_call"`, which rq imports in
        the worker), so the code that queues a job never imports the module that runs it."""
        try:
            return self.queue.enqueue(func, *args, **kwargs)
        except REDIS_ERRORS:
            log.exception("could not enqueue %s", getattr(func, "__name__", func))
            return None


def configuration_of(entities: dict) -> RoutingTable:
    """Destinations (oldest first), default and integration from configuration entities."""
    destinations = sorted((Destination.from_dict(v) for k, v in entities.items() if k.startswith("d:")),
                          key=lambda d: (d.created_at, d.id))
    return RoutingTable(destinations, entities.get("default"), entities.get("integration"),
                         topics=[v for k, v in entities.items() if k.startswith("t:")])
