"""The handoff event feed as connectors poll it: every state change once, in order.

One reader per web process: a thread (a greenlet under gunicorn's gevent worker) blocks in
XREAD on the event stream and keeps the newest events in memory, each already encoded as
the JSON item a poll answers with. A waiting poll sleeps on a condition the reader wakes
and is answered by slicing that buffer. 50 connectors then cost one Redis read and one
encoding per event per process, instead of two Redis reads, a parse and an encoding per
event per connector (`python bench/wrk_run.py` measures the difference).

The buffer is only a shortcut; what a connector receives does not change. It holds every
event after `base` without a gap (XREAD from the last id read returns all that follow, and
stream ids only grow). A poll without `wait`, the first poll (no cursor), a cursor older
than the buffer, or a reader that lost Redis is answered straight from the stream.
"""
from __future__ import annotations

import bisect
import json
import logging
import threading
import time
from dataclasses import dataclass

import redis

from . import shutdown
from .redis_server import REDIS_ERRORS
from .store import Store

log = logging.getLogger(__name__)

# A connector willing to wait gets batches: after the first event the poll lingers briefly
# so the rest of a burst (a handoff's requested + transferring…) goes out in the same
# answer. Under load this caps each connector at ~10 polls a second instead of one per event.
LINGER = 0.1  # seconds
# Events kept per process: ~150 bytes each, so ~3 MB; a connector further behind than this
# reads from Redis until it catches up.
CAPACITY = 20_000
# The reader stops after this long without a waiting poll, so a process nobody long-polls
# holds no Redis connection for it; the next waiting poll starts it again.
IDLE_STOP = 60.0  # seconds
READ_BLOCK_MS = 1000
# After a read that found events, the reader waits this long before the next, so at a
# busy moment it reads (and wakes the waiting polls) in batches, not once per handoff.
READ_PAUSE = 0.02  # seconds
READ_COUNT = 1000
SLICE = 1.0  # seconds: a waiting poll checks for shutdown at least this often


def parse_cursor(cursor: str) -> tuple[int, int]:
    """A stream id (`1764158400000-3`) as a comparable pair."""
    ms, _, seq = cursor.partition("-")
    return int(ms), int(seq)


def encode_event(event_id: str, fields: dict) -> bytes:
    """One item of an event page, as it goes on the wire (schemas/handoffs.py EventSchema)."""
    return json.dumps({"cursor": event_id, "handoff_id": fields["handoff_id"],
                       "state": fields["state"], "at": fields["at"]},
                      separators=(",", ":")).encode()


@dataclass
class FeedPage:
    """Encoded items and the cursor to pass back as `after`."""

    items: list[bytes]
    next_cursor: str | None

    def to_json(self) -> bytes:
        cursor = json.dumps(self.next_cursor).encode()
        return b'{"items":[' + b",".join(self.items) + b'],"next_cursor":' + cursor + b"}\n"


class EventFeed:
    """The event feed of one process; polls from any thread (or greenlet)."""

    def __init__(self, store: Store, blocking_client: redis.Redis):
        self._store = store
        self._client = blocking_client
        self._changed = threading.Condition()
        # Parallel lists, ascending by id: every event after `_base`, up to CAPACITY.
        self._keys: list[tuple[int, int]] = []
        self._cursors: list[str] = []
        self._items: list[bytes] = []
        self._base: tuple[int, int] | None = None  # None: the buffer is not current
        self._reader: threading.Thread | None = None
        self._last_wait = 0.0

    # -- polls -------------------------------------------------------------------------
    def page(self, after: str | None, limit: int, wait: float) -> FeedPage:
        """Events after `after` (all of them from the oldest kept when None), at most
        `limit`; with `wait`, held up to that many seconds until there is one."""
        deadline = time.monotonic() + wait
        if wait <= 0 or after is None:
            return self._from_stream(after, limit, deadline)
        self._start_reader()
        key = parse_cursor(after)
        with self._changed:
            if self._base is None and self._reader is not None:
                # The reader is starting (or reconnecting); it wakes us once it is current.
                self._changed.wait(min(SLICE, wait))
            while self._covers(key):
                cursors, items = self._slice(key, limit)
                remaining = deadline - time.monotonic()
                if items or remaining <= 0 or shutdown.stopping.is_set():
                    break
                self._changed.wait(min(SLICE, remaining))
            else:
                cursors = None  # not (or no longer) in the buffer: read the stream
        if cursors is None:
            return self._from_stream(after, limit, deadline)
        if items and len(items) < limit and time.monotonic() < deadline:
            time.sleep(LINGER)
            with self._changed:
                if self._covers(key):
                    cursors, items = self._slice(key, limit)
        return FeedPage(items, cursors[-1] if cursors else after)

    def _covers(self, key: tuple[int, int]) -> bool:
        return self._base is not None and key >= self._base

    def _slice(self, key: tuple[int, int], limit: int) -> tuple[list[str], list[bytes]]:
        start = bisect.bisect_right(self._keys, key)
        return self._cursors[start:start + limit], self._items[start:start + limit]

    def _from_stream(self, after: str | None, limit: int, deadline: float) -> FeedPage:
        """Read Redis directly, blocking in short slices while the poll may wait."""
        rows = self._store.read_events(after, limit)
        while not rows and time.monotonic() < deadline and not shutdown.stopping.is_set():
            # Short slices: a poll is never stuck past the client's wait, and ends within a
            # slice when the process is stopping (handoff/shutdown.py).
            block_ms = max(1, int(min(SLICE, deadline - time.monotonic()) * 1000))
            rows = self._store.wait_for_events(self._client, after or "0-0", limit, block_ms)
        if rows and len(rows) < limit and time.monotonic() < deadline:
            time.sleep(LINGER)
            rows += self._store.read_events(rows[-1][0], limit - len(rows))
        return FeedPage([encode_event(i, f) for i, f in rows], rows[-1][0] if rows else after)

    # -- the reader ----------------------------------------------------------------------
    def _start_reader(self) -> None:
        with self._changed:
            self._last_wait = time.monotonic()
            if self._reader is None:
                reader = threading.Thread(target=self._read, name="event-feed", daemon=True)
                reader.start()  # set only once started: a failed start must not look like a reader
                self._reader = reader

    def _read(self) -> None:
        try:
            self._follow_stream()
        except Exception:
            log.exception("event feed reader stopped; the next waiting poll starts another")
        finally:
            with self._changed:
                self._reset(stop=True)

    def _follow_stream(self) -> None:
        last = None
        while True:
            with self._changed:
                if time.monotonic() - self._last_wait > IDLE_STOP or shutdown.stopping.is_set():
                    return
            try:
                if last is None:
                    last = self._store.last_event_id() or "0-0"
                    with self._changed:
                        self._base = parse_cursor(last)
                        self._changed.notify_all()
                rows = self._store.wait_for_events(self._client, last, READ_COUNT, READ_BLOCK_MS)
            except REDIS_ERRORS:
                log.warning("event feed reader lost Redis; polls read the stream directly")
                with self._changed:
                    self._reset(stop=False)
                last = None
                time.sleep(1.0)
                continue
            if rows:
                self._append(rows)
                last = rows[-1][0]
                time.sleep(READ_PAUSE)

    def _append(self, rows: list[tuple[str, dict]]) -> None:
        encoded = [encode_event(i, f) for i, f in rows]
        with self._changed:
            self._keys.extend(parse_cursor(i) for i, _ in rows)
            self._cursors.extend(i for i, _ in rows)
            self._items.extend(encoded)
            over = len(self._keys) - CAPACITY
            if over > 0:
                self._base = self._keys[over - 1]
                del self._keys[:over], self._cursors[:over], self._items[:over]
            self._changed.notify_all()

    def _reset(self, *, stop: bool) -> None:
        """Forget the buffer (waiting polls go to the stream); called with the lock held."""
        self._base = None
        self._keys, self._cursors, self._items = [], [], []
        if stop:
            self._reader = None
        self._changed.notify_all()
