"""Throttling failed credentials per client (handoff/throttle.py) for the views that take a key."""
from __future__ import annotations

from flask import request

from handoff.errors import Throttled
from handoff.throttle import FailureThrottle

from .context import services

# One count for a client's wrong keys wherever it sends them: the API and the sign-in page
# accept the same keys, so guessing at both must not double the rate.
SCOPE = "api_key"


def client_id() -> str:
    """Who is guessing: the address ProxyFix took from the router's X-Forwarded-For."""
    return request.remote_addr or "unknown"


def _throttle() -> FailureThrottle:
    config = services().config
    return FailureThrottle(services().store.redis, config.auth_failure_limit, config.auth_failure_window)


def refuse_if_throttled() -> None:
    retry_after = _throttle().retry_after(SCOPE, client_id())
    if retry_after:
        raise Throttled(f"too many wrong API keys from this client; try again in {retry_after} s",
                        retry_after)


def key_failed() -> None:
    _throttle().failed(SCOPE, client_id())
