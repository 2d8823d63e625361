"""The one place the service reads its environment (see CONTRACT.md "Running it")."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Mapping


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def _float(value: str | None, default: float) -> float:
    try:
        number = float(value) if value not in (None, "") else default
    except ValueError:
        return default
    return number if math.isfinite(number) else default


@dataclass(frozen=True)
class Config:
    port: int = 5000
    redis_url: str | None = None
    data_dir: str = "./var"
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_validate: bool = True
    public_base_url: str | None = None
    api_keys: tuple[str, ...] = ()
    webhook_url: str | None = None
    webhook_secret: str = ""
    sip_domain: str | None = None
    agent_url: str | None = None
    allowed_route_patterns: tuple[str, ...] = ()
    retention_days: int = 30
    # Seconds a Redis command may take before a voice route gives up on Redis and answers
    # from the configuration snapshot: Twilio waits 15 s at most, the contract says 2 s.
    redis_timeout: float = 0.5
    # gunicorn's web process (gunicorn.conf.py): worker processes, and connections each
    # serves at once (gevent: a connection costs a greenlet, not a thread).
    web_concurrency: int = 2
    web_connections: int = 1000
    # Seconds a client has to send its request line and headers, then as long for its body;
    # a slower client is disconnected (handoff/gunicorn_worker.py). Twilio sends at once.
    web_read_timeout: float = 10.0
    # Long polls of the event feed one web process holds at once; more are answered 429 at
    # once, so pollers never take the connections and Redis clients voice webhooks need.
    max_long_polls: int = 100
    # Seconds after which a transfer still waiting for its outcome is failed (`timeout`);
    # 0 turns the check off. Longer than a ring timeout plus Twilio's 32 s REFER wait.
    transfer_timeout: int = 180
    # Seconds between two sweeps for timed-out transfers (the worker's scheduled job).
    sweep_interval: int = 5
    # Seconds between webhook delivery retries (rq Retry); its length is the retry count.
    webhook_retry_intervals: tuple[int, ...] = (5, 30, 120, 600, 1800)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Config":
        env = os.environ if environ is None else environ
        return cls(
            port=_int(env.get("PORT"), 5000),
            redis_url=env.get("REDIS_URL") or None,
            data_dir=env.get("DATA_DIR") or "./var",
            twilio_account_sid=env.get("TWILIO_ACCOUNT_SID", ""),
            twilio_auth_token=env.get("TWILIO_AUTH_TOKEN", ""),
            twilio_validate=_bool(env.get("TWILIO_VALIDATE"), True),
            public_base_url=(env.get("PUBLIC_BASE_URL") or "").rstrip("/") or None,
            api_keys=_list(env.get("HANDOFF_API_KEYS")),
            webhook_url=env.get("HANDOFF_WEBHOOK_URL") or None,
            webhook_secret=env.get("HANDOFF_WEBHOOK_SECRET", ""),
            sip_domain=env.get("SIP_DOMAIN") or None,
            agent_url=env.get("AGENT_URL") or None,
            allowed_route_patterns=_list(env.get("ALLOWED_ROUTE_PATTERNS")),
            retention_days=max(1, _int(env.get("HANDOFF_RETENTION_DAYS"), 30)),
            web_concurrency=max(1, _int(env.get("WEB_CONCURRENCY"), 2)),
            web_connections=max(10, _int(env.get("WEB_CONNECTIONS"), 1000)),
            web_read_timeout=max(1.0, _float(env.get("WEB_READ_TIMEOUT"), 10.0)),
            max_long_polls=max(1, _int(env.get("HANDOFF_MAX_LONG_POLLS"), 100)),
            transfer_timeout=max(0, _int(env.get("HANDOFF_TRANSFER_TIMEOUT"), 180)),
            webhook_retry_intervals=tuple(
                _int(v, 5) for v in _list(env.get("HANDOFF_WEBHOOK_RETRY_INTERVALS"))
            ) or (5, 30, 120, 600, 1800),
        )

    def with_overrides(self, **overrides) -> "Config":
        return replace(self, **overrides)

    @property
    def retention_seconds(self) -> int:
        return self.retention_days * 86400
