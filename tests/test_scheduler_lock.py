"""Taking over rq's scheduler lock: only from a scheduler that stopped refreshing it."""
import threading

from handoff.redis_server import client_for
from handoff.scheduler_lock import take_over_dead_scheduler

LOCK = "rq:scheduler-lock:handoff"


def test_a_lock_nobody_refreshes_is_taken_over(valkey):
    redis = client_for(valkey.url)
    redis.set(LOCK, "killed-scheduler", ex=61)
    assert take_over_dead_scheduler(redis, "handoff", stale_after=1.0, poll=0.2) is True
    assert redis.get(LOCK) is None


def test_a_live_schedulers_lock_is_left_alone(valkey):
    redis = client_for(valkey.url)
    redis.set(LOCK, "live-scheduler", ex=61)
    stop = threading.Event()

    def heartbeat():  # what rq's scheduler does every second
        while not stop.wait(0.3):
            redis.expire(LOCK, 61)

    beating = threading.Thread(target=heartbeat)
    beating.start()
    try:
        assert take_over_dead_scheduler(redis, "handoff", stale_after=2.0, poll=0.2) is False
        assert redis.get(LOCK) == "live-scheduler"
    finally:
        stop.set()
        beating.join()
        redis.delete(LOCK)


def test_no_lock_means_nothing_to_wait_for(valkey):
    redis = client_for(valkey.url)
    redis.delete(LOCK)
    assert take_over_dead_scheduler(redis, "handoff") is False
