"""Failed credentials counted per client, so keys cannot be guessed at speed.

A store module beside `store.py`: its keys share the `handoff:` prefix and live only here.
The count is in Redis, so every gunicorn process and every web dyno sees the same one. A
fixed window starts at a client's first failure; once the client has failed `limit` times
in it, every attempt it makes — right or wrong — is refused until the window ends (if a
right key still passed, a 429 against a 200 would tell a guesser when they had found one).
"""
from __future__ import annotations

import redis

from .store import PREFIX


class FailureThrottle:
    def __init__(self, client: redis.Redis, limit: int, window: int):
        self.redis = client
        self.limit = limit
        self.window = window

    @staticmethod
    def key(scope: str, client_id: str) -> str:
        return f"{PREFIX}auth_failures:{scope}:{client_id}"

    def retry_after(self, scope: str, client_id: str) -> int | None:
        """Seconds until this client may try again, or None when it may now."""
        if self.limit <= 0:
            return None
        key = self.key(scope, client_id)
        with self.redis.pipeline(transaction=False) as pipe:
            count, ttl = pipe.get(key).ttl(key).execute()
        if count is None or int(count) < self.limit:
            return None
        return max(1, ttl if ttl and ttl > 0 else self.window)

    def failed(self, scope: str, client_id: str) -> None:
        if self.limit <= 0:
            return
        key = self.key(scope, client_id)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key).expire(key, self.window, nx=True).execute()
