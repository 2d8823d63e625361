"""Short-lived records in Redis, each one key with its own expiry: a webhook's answer kept
for Twilio's retries (`answer_once`), a job's step that must not run twice (`first_try`),
signed-in page sessions (handoff/sessions.py), and failed-key counts per client
(handoff/throttle.py).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..redis_server import REDIS_ERRORS
from .base import StoreBase
from .keys import Keys

log = logging.getLogger(__name__)


class WriteBatch:
    """The writes of one webhook step, sent to Redis together in one MULTI when the step's
    answer is stored (`answer_once(..., batched=True)`), and what may only happen once they
    are stored (a job that reads the handoff must not run before it exists)."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.after_stored: list[Callable[[], None]] = []


class ShortLivedStore(StoreBase):
    def answer_once(self, scope: str, key: str, compute: Callable[..., str], ttl: int = 3600,
                    wait: float = 3.0, read_along: Callable[[Any], None] | None = None,
                    batched: bool = False) -> str:
        """The answer to a webhook step, computed once: a retried delivery (Twilio retries
        with the same idempotency token) gets the stored answer instead of a second run.

        `read_along(pipe)` queues reads sent in the same round trip as the claim; the
        delivery that computes the answer first gets their results as `compute`'s arguments
        (any other gets none). With `batched`, `compute` gets a `WriteBatch` first (None
        when it is not the first delivery): what it queues there is written in one MULTI
        with the answer, so a voice handoff costs two round trips (claim and read, write)."""
        full = Keys.once(scope, key)
        if read_along is None:
            claimed, along = self.redis.set(full, "", nx=True, ex=ttl), []
        else:
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.set(full, "", nx=True, ex=ttl)
                read_along(pipe)
                claimed, *along = pipe.execute()
        if claimed:
            with self.redis.pipeline(transaction=True) as pipe:
                batch, body = (WriteBatch(pipe) if batched else None), None
                try:
                    body = compute(batch, *along) if batched else compute(*along)
                    pipe.set(full, body, ex=ttl)
                    pipe.execute()
                except BaseException:
                    if not self._stored_anyway(full, body):
                        self.redis.delete(full)  # let a retry compute it again
                        raise
            for after in batch.after_stored if batch else ():
                try:
                    after()
                except Exception:  # noqa: BLE001 - the answer is stored: it is what the caller gets
                    log.exception("after storing the answer to %s", full)
            return body
        deadline = time.monotonic() + wait
        while True:
            stored = self.redis.get(full)
            if stored:
                return stored
            if stored is None or time.monotonic() > deadline:
                # The first delivery died or is stuck: answering beats leaving the caller waiting.
                return compute(None) if batched else compute()
            time.sleep(0.05)

    def first_try(self, scope: str, key: str, ttl: int) -> bool:
        """Whether this is the first try of a step with effects outside Redis (a call moved
        over Twilio's REST API): False when an earlier try got as far as this mark."""
        return bool(self.redis.set(Keys.once(scope, key), "tried", nx=True, ex=ttl))

    def forget_try(self, scope: str, key: str) -> None:
        """The step is known not to have happened: a later try may do it."""
        self.redis.delete(Keys.once(scope, key))

    def _stored_anyway(self, full: str, body: str | None) -> bool:
        """Whether a write whose reply was lost (a timeout after Redis ran the MULTI) stored
        `body`: then it is the answer, and forgetting the claim would leave its handoff behind
        while the caller is sent elsewhere."""
        if body is None:
            return False
        try:
            return self.redis.get(full) == body
        except REDIS_ERRORS:
            return False

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
