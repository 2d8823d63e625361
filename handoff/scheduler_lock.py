"""Taking over the rq scheduler lock a killed worker left behind.

rq's scheduler holds a lock per queue (61 s TTL) and refreshes it every second. A worker
killed with SIGKILL (OOM, a crashed dyno) cannot release it, and a worker started after it
only tries the lock again at rq's next maintenance, 10 minutes on: every delayed job (webhook
retries, the transfer-timeout sweep) stalled for ~12 minutes. A lock whose TTL has not
gone up for STALE_AFTER seconds belongs to a scheduler that is no longer refreshing it, so
the new worker deletes it (only if it still holds the same owner) and its own scheduler
takes the queue at once (tests/test_hardening_worker.py).
"""
from __future__ import annotations

import logging
import time

import redis
from rq.scheduler import RQScheduler
from rq.scripts import release_lock

log = logging.getLogger(__name__)

# Missed refreshes (one a second) before the owner counts as dead. A live scheduler that is
# merely slow and loses its lock gives it up on its next heartbeat (rq's heartbeat()).
STALE_AFTER = 3.0


def take_over_dead_scheduler(connection: redis.Redis, queue_name: str, stale_after: float = STALE_AFTER,
                             poll: float = 0.5) -> bool:
    """Delete the queue's scheduler lock if its owner stopped refreshing it; True if deleted.

    Returns False at once when there is no lock, and as soon as the lock is refreshed,
    released or changes owner (a live scheduler has it)."""
    key = RQScheduler.get_locking_key(queue_name)
    owner, ttl = _lock(connection, key)
    if owner is None:
        return False
    deadline = time.monotonic() + stale_after
    while time.monotonic() < deadline:
        time.sleep(poll)
        now_owner, now_ttl = _lock(connection, key)
        if now_owner != owner or now_ttl > ttl:
            return False
        ttl = now_ttl
    if release_lock(connection, key, owner):
        log.warning("the scheduler lock of queue %s was not refreshed for %s s (its worker was killed); "
                    "taken over", queue_name, stale_after)
        return True
    return False


def _lock(connection: redis.Redis, key: str) -> tuple[bytes | str | None, int]:
    with connection.pipeline(transaction=True) as pipe:
        owner, ttl = pipe.get(key).pttl(key).execute()
    return owner, ttl
