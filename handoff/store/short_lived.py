"""Short-lived records in Redis, each one key with its own expiry: a webhook's answer kept
for Twilio's retries (`answer_once`), signed-in page sessions (handoff/sessions.py), and
failed-key counts per client (handoff/throttle.py).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .base import StoreBase
from .keys import Keys


class ShortLivedStore(StoreBase):
    def answer_once(self, scope: str, key: str, compute: Callable[..., str], ttl: int = 3600,
                    wait: float = 3.0, read_along: Callable[[Any], None] | None = None) -> str:
        """The answer to a webhook step, computed once: a retried delivery (Twilio retries
        with the same idempotency token) gets the stored answer instead of a second run.

        `read_along(pipe)` queues reads sent in the same round trip as the claim; the
        delivery that computes the answer first gets their results as `compute`'s arguments
        (any other gets none)."""
        full = Keys.once(scope, key)
        if read_along is None:
            claimed, along = self.redis.set(full, "", nx=True, ex=ttl), []
        else:
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.set(full, "", nx=True, ex=ttl)
                read_along(pipe)
                claimed, *along = pipe.execute()
        if claimed:
            try:
                body = compute(*along)
            except BaseException:
                self.redis.delete(full)  # let a retry compute it again
                raise
            self.redis.set(full, body, ex=ttl)
            return body
        deadline = time.monotonic() + wait
        while True:
            stored = self.redis.get(full)
            if stored:
                return stored
            if stored is None or time.monotonic() > deadline:
                # The first delivery died or is stuck: answering beats leaving the caller waiting.
                return compute()
            time.sleep(0.05)

    def start_page_session(self, session_id: str, key_fingerprint: str, lifetime: int) -> None:
        self.redis.set(Keys.page_session(session_id), key_fingerprint, ex=lifetime)

    def page_session(self, session_id: str) -> str | None:
        return self.redis.get(Keys.page_session(session_id))

    def end_page_session(self, session_id: str) -> None:
        self.redis.delete(Keys.page_session(session_id))

    def count_failure(self, scope: str, client_id: str, window: int) -> tuple[int, int]:
        """One more failure for this client: (failures in the window, seconds the window has
        left). The window starts at the first failure and is not stretched by later ones."""
        key = Keys.auth_failures(scope, client_id)
        with self.redis.pipeline(transaction=True) as pipe:
            count, _, ttl = pipe.incr(key).expire(key, window, nx=True).ttl(key).execute()
        return count, ttl
