"""The one place the service reads its environment (every variable is described in .env.example)."""
from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())


def _redis_url(url: str | None, verify_tls: bool) -> str | None:
    """REDIS_URL, told not to verify the server's certificate when REDIS_TLS_VERIFY=false:
    Heroku's Redis add-on serves rediss:// with a self-signed certificate and sets the URL
    itself: "Connecting to Heroku Key-Value Store",
    https://devcenter.heroku.com/articles/connecting-heroku-redis)."""
    if not url or verify_tls or not url.startswith("rediss://") or "ssl_cert_reqs=" in url:
        return url
    return url + ("&" if "?" in url else "?") + "ssl_cert_reqs=none"


LABEL = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,31}$")


def _labelled_keys(value: str | None) -> tuple[tuple[str, str], ...]:
    """HANDOFF_API_KEYS entries, each `key` or `label=key`: (label, key) pairs. A key
    without a label is named by a short hash of it, never by any part of the key."""
    pairs = []
    for entry in _list(value):
        label, sep, key = entry.partition("=")
        if not (sep and key and LABEL.match(label)):
            label, key = "key-" + hashlib.sha256(entry.encode()).hexdigest()[:8], entry
        pairs.append((label, key))
    return tuple(pairs)


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
    # (label, key) for every API key: the label names who changed the routing configuration.
    api_key_labels: tuple[tuple[str, str], ...] = ()
    # CONFIG_PROMOTION=on: configuration changes wait in the sandbox draft until promoted.
    config_promotion: bool = False
    webhook_url: str | None = None
    webhook_secret: str = ""
    sip_domain: str | None = None
    agent_url: str | None = None
    allowed_route_patterns: tuple[str, ...] = ()
    # <Dial callerId> for destinations that set none (E.164).
    default_caller_id: str | None = None
    retention_days: int = 30
    # Seconds a Redis command may take before a voice route gives up on Redis and answers
    # from the configuration snapshot: Twilio waits 15 s at most; voice answers aim at 2 s
    # (the HandoffVoiceWebhooksSlow alert, docs/operations.md).
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
    # Seconds a webchat/SMS handoff may wait `pending` for a connector before it is
    # `abandoned` (swept by the same worker job as transfer timeouts); 0 turns it off.
    pending_timeout: int = 3600
    # When set, the only account/project ids the PolyAI-shaped paths accept (others → 404).
    polyai_account_id: str | None = None
    polyai_project_id: str | None = None
    # Seconds between two sweeps for timed-out transfers (the worker's scheduled job).
    sweep_interval: int = 5
    # Seconds between webhook delivery retries (rq Retry); its length is the retry count.
    webhook_retry_intervals: tuple[int, ...] = (5, 30, 120, 600, 1800)
    # `text` (readable locally) or `json` (one object a line, with the call's ids: handoff/logs.py).
    log_format: str = "text"
    # Wrong API keys (on /v1 or at sign-in) one client may send per window before every
    # attempt it makes is a 429 until the window ends; 0 turns the limit off.
    auth_failure_limit: int = 10
    auth_failure_window: int = 60

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        env = os.environ if environ is None else environ
        return cls(
            port=_int(env.get("PORT"), 5000),
            redis_url=_redis_url(env.get("REDIS_URL") or None, _bool(env.get("REDIS_TLS_VERIFY"), True)),
            data_dir=env.get("DATA_DIR") or "./var",
            twilio_account_sid=env.get("TWILIO_ACCOUNT_SID", ""),
            twilio_auth_token=env.get("TWILIO_AUTH_TOKEN", ""),
            twilio_validate=_bool(env.get("TWILIO_VALIDATE"), True),
            public_base_url=(env.get("PUBLIC_BASE_URL") or "").rstrip("/") or None,
            api_keys=tuple(key for _, key in _labelled_keys(env.get("HANDOFF_API_KEYS"))),
            api_key_labels=_labelled_keys(env.get("HANDOFF_API_KEYS")),
            config_promotion=_bool(env.get("CONFIG_PROMOTION"), False),
            webhook_url=env.get("HANDOFF_WEBHOOK_URL") or None,
            webhook_secret=env.get("HANDOFF_WEBHOOK_SECRET", ""),
            sip_domain=env.get("SIP_DOMAIN") or None,
            agent_url=env.get("AGENT_URL") or None,
            allowed_route_patterns=_list(env.get("ALLOWED_ROUTE_PATTERNS")),
            default_caller_id=env.get("DEFAULT_CALLER_ID") or None,
            retention_days=max(1, _int(env.get("HANDOFF_RETENTION_DAYS"), 30)),
            web_concurrency=max(1, _int(env.get("WEB_CONCURRENCY"), 2)),
            web_connections=max(10, _int(env.get("WEB_CONNECTIONS"), 1000)),
            web_read_timeout=max(1.0, _float(env.get("WEB_READ_TIMEOUT"), 10.0)),
            max_long_polls=max(1, _int(env.get("HANDOFF_MAX_LONG_POLLS"), 100)),
            transfer_timeout=max(0, _int(env.get("HANDOFF_TRANSFER_TIMEOUT"), 180)),
            pending_timeout=max(0, _int(env.get("HANDOFF_PENDING_TIMEOUT"), 3600)),
            polyai_account_id=env.get("POLYAI_ACCOUNT_ID") or None,
            polyai_project_id=env.get("POLYAI_PROJECT_ID") or None,
            webhook_retry_intervals=tuple(
                _int(v, 5) for v in _list(env.get("HANDOFF_WEBHOOK_RETRY_INTERVALS"))
            ) or (5, 30, 120, 600, 1800),
            log_format="json" if (env.get("LOG_FORMAT") or "").strip().lower() == "json" else "text",
            auth_failure_limit=max(0, _int(env.get("HANDOFF_AUTH_FAILURE_LIMIT"), 10)),
            auth_failure_window=max(1, _int(env.get("HANDOFF_AUTH_FAILURE_WINDOW"), 60)),
        )

    def key_label(self, key: str) -> str | None:
        """The label of an accepted API key (None if it is not one)."""
        for label, known in self.api_key_labels or _labelled_keys(",".join(self.api_keys)):
            if hmac.compare_digest(known.encode(), key.encode()):
                return label
        return None

    def with_overrides(self, **overrides) -> Config:
        return replace(self, **overrides)

    @property
    def retention_seconds(self) -> int:
        return self.retention_days * 86400

    @property
    def metrics_dir(self) -> str:
        """Where every process of this deployment writes its Prometheus samples (multiprocess
        mode): under DATA_DIR, the directory the web and worker processes already share."""
        return os.path.join(self.data_dir, "metrics")
