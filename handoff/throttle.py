"""Failed credentials counted per client, so keys cannot be guessed at speed.

Failures are counted in Redis (`Store.count_failure`), so every gunicorn process and every
web dyno adds to the same count: a fixed window starts at a client's first failure, and
once the client has failed `limit` times in it, every attempt it makes — right key or
wrong — is refused until the window ends (if a right key still passed, a 200 among the
429s would tell a guesser when they had found one).

A process remembers the clients it has seen over the limit, so a request with a key costs
no Redis round trip: only failures are written. A process that has not yet seen a blocked
client learns at that client's next failure there, which at worst lets one more guess per
process through in a window.
"""
from __future__ import annotations

import math
import threading
import time

from .store import Store

# Clients a process remembers as blocked; past this, expired entries are dropped first and
# then the oldest (each entry cost its client `limit` failures, so this fills slowly).
MEMORY = 10_000


class FailureThrottle:
    def __init__(self, limit: int, window: int):
        self.limit = limit
        self.window = window
        self._blocked: dict[str, float] = {}  # key → time.monotonic() the block ends
        self._lock = threading.Lock()

    @staticmethod
    def key(scope: str, client_id: str) -> str:
        """Which client, in this process's memory of blocked ones."""
        return f"{scope}:{client_id}"

    def retry_after(self, scope: str, client_id: str) -> int | None:
        """Seconds until this client may try again, or None when it may now."""
        until = self._blocked.get(self.key(scope, client_id))
        if until is None:
            return None
        left = until - time.monotonic()
        if left <= 0:
            with self._lock:
                self._blocked.pop(self.key(scope, client_id), None)
            return None
        return max(1, math.ceil(left))

    def failed(self, store: Store, scope: str, client_id: str) -> int | None:
        """Count one failure. When the client was already over the limit (another process
        blocked it), the seconds left, so this attempt is refused too; else None."""
        if self.limit <= 0:
            return None
        key = self.key(scope, client_id)
        count, ttl = store.count_failure(scope, client_id, self.window)
        if count < self.limit:
            return None
        seconds = ttl if ttl and ttl > 0 else self.window
        self._remember(key, time.monotonic() + seconds)
        return seconds if count > self.limit else None

    def _remember(self, key: str, until: float) -> None:
        with self._lock:
            if len(self._blocked) >= MEMORY:
                now = time.monotonic()
                for stale in [k for k, end in self._blocked.items() if end <= now]:
                    del self._blocked[stale]
                while len(self._blocked) >= MEMORY:
                    del self._blocked[next(iter(self._blocked))]
            self._blocked[key] = until
