"""Small accessors views use instead of building anything themselves."""
from __future__ import annotations

import hmac

from flask import current_app, request

from handoff.services import Services


def services() -> Services:
    return current_app.extensions["handoff"]


def public_base_url() -> str:
    """The URL Twilio reaches us at: PUBLIC_BASE_URL, else what the (proxied) request says."""
    configured = services().config.public_base_url
    if configured:
        return configured
    return request.host_url.rstrip("/") + request.script_root


def given_api_key() -> str:
    """The key a /v1 request carries: `Authorization: Bearer <key>`, else `X-API-Key`."""
    return api_key_in(request.headers.get("Authorization", ""), request.headers.get("X-API-Key", ""))


def api_key_in(authorization: str, x_api_key: str) -> str:
    """The key in these two headers' values (web/feed_polls.py reads them without Flask)."""
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return x_api_key


def matching_key(given: str) -> str | None:
    return key_among(given, services().config.api_keys)


def key_among(given: str, keys) -> str | None:
    """The configured API key equal to `given`, or None. Every key is compared, always,
    so timing says nothing about which one matched."""
    found = None
    for key in keys:
        if hmac.compare_digest(given.encode(), key.encode()):
            found = key
    return found if given else None


def api_actor() -> str:
    """Who a /v1 request is, for the versions it records: its API key's label."""
    return services().config.key_label(given_api_key()) or "api"


def requested_url() -> str:
    """The exact URL Twilio requested (and signed): scheme, host, path and raw query."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if not raw or raw.startswith("http"):
        query = request.query_string.decode("latin-1")
        raw = request.script_root + request.path + (f"?{query}" if query else "")
    elif request.script_root and not raw.startswith(request.script_root + "/"):
        # The server's raw request line lacks the path prefix a proxy stripped (and told us
        # in X-Forwarded-Prefix, now the script root); Twilio signed the URL with it.
        raw = request.script_root + raw
    base = services().config.public_base_url
    if base:
        # PUBLIC_BASE_URL may carry a path prefix a proxy strips before we see the request.
        from urllib.parse import urlsplit

        prefix = urlsplit(base).path.rstrip("/")
        if prefix and raw.startswith(prefix + "/"):
            raw = raw[len(prefix):]
        return base + raw
    return request.host_url.rstrip("/") + raw
