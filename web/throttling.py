"""Throttling failed credentials per client (handoff/throttle.py) for the views that take a key."""
from __future__ import annotations

import ipaddress

from flask import current_app, request

from handoff.errors import TooManyRequests
from handoff.throttle import FailureThrottle

from .context import services

# One count for a client's wrong keys wherever it sends them: the API, the PolyAI-shaped
# routes and the sign-in page accept the same keys, so guessing at all three must not
# triple the rate.
SCOPE = "api_key"


def client_of(address: str | None) -> str:
    """Who is guessing, from the address ProxyFix took from the router's X-Forwarded-For: an
    IPv4 address, or the /64 network of an IPv6 one. Every IPv6 host is handed a whole /64
    (RFC 6177), so counting per address would give one guesser 2**64 fresh counts."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped is not None:  # ::ffff:203.0.113.7 is that IPv4 client
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


def client_id() -> str:
    return client_of(request.remote_addr)


def _throttle() -> FailureThrottle:
    throttle = current_app.extensions.get("failure_throttle")
    if throttle is None:
        config = services().config
        throttle = current_app.extensions.setdefault(
            "failure_throttle", FailureThrottle(config.auth_failure_limit, config.auth_failure_window))
    return throttle


def _refuse(retry_after: int):
    raise TooManyRequests(f"too many wrong API keys from this client; try again in {retry_after} s", retry_after)


def blocked_for(app, address: str | None) -> int | None:
    """Seconds this process still refuses the client at `address` (None: none; no throttle
    yet means no wrong key counted yet, and the address is not even read). Needs no
    request: web/feed_polls.py asks it for every long poll too."""
    throttle = app.extensions.get("failure_throttle")
    return throttle.retry_after(SCOPE, client_of(address)) if throttle is not None else None


def refuse_if_throttled() -> None:
    retry_after = blocked_for(current_app, request.remote_addr)
    if retry_after:
        _refuse(retry_after)


def key_failed() -> None:
    """Count a wrong key; TooManyRequests when the client turns out to be over the limit already."""
    retry_after = _throttle().failed(services().store, SCOPE, client_id())
    if retry_after:
        _refuse(retry_after)
