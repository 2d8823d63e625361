"""At most HANDOFF_MAX_LONG_POLLS waiting polls of the event feed per web process.

A poll with `wait` holds its connection (a greenlet) for up to 30 s; waiting polls share
one Redis reader per process (handoff/event_feed.py), but one whose cursor is behind what
the process keeps falls back to a Redis client of its own. Unbounded, 200 idle connectors
took every thread voice webhooks needed (gthread); past the limit a poll is answered at
once with 429 and Retry-After instead, and the connector polls again
(tests/test_hardening_server.py)."""
from __future__ import annotations

import threading
from contextlib import contextmanager

from flask import Flask, current_app

from handoff.errors import TooManyRequests

from .context import services

# Seconds a connector turned away is asked to wait before polling again: long enough not
# to spin, short enough that its events are late by no more than that.
RETRY_AFTER = 2
_create_lock = threading.Lock()


def process_slots(app: Flask) -> threading.BoundedSemaphore:
    """The process's slots, shared by the view below and web/feed_polls.py."""
    slots = app.extensions.get("handoff.long_polls")
    if slots is None:
        with _create_lock:
            slots = app.extensions.setdefault(
                "handoff.long_polls", threading.BoundedSemaphore(app.extensions["handoff"].config.max_long_polls))
    return slots


@contextmanager
def long_poll_slot():
    """Hold one of the process's slots for the poll's wait; TooManyRequests (429 with
    Retry-After, web/errors.py) when all are taken."""
    slots = process_slots(current_app)
    if not slots.acquire(blocking=False):
        raise TooManyRequests(
            f"this process already holds {services().config.max_long_polls} waiting polls; "
            f"poll again in {RETRY_AFTER} s", RETRY_AFTER)
    try:
        yield
    finally:
        slots.release()
