"""Settings that work but leave the service weaker than it should be, said once at start."""
from __future__ import annotations

from .config import Config
from .route_allowlist import pattern_problem

# 32 random characters (~190 bits as hex or base64) cannot be guessed even without the
# failure throttle; a short key can, given time.
MIN_API_KEY_LENGTH = 32


def config_warnings(config: Config) -> list[str]:
    warnings = []
    short = [key for key in config.api_keys if len(key) < MIN_API_KEY_LENGTH]
    if short:
        warnings.append(f"{len(short)} of the {len(config.api_keys)} HANDOFF_API_KEYS are shorter than "
                        f"{MIN_API_KEY_LENGTH} characters: use long random keys (openssl rand -hex 32)")
    for pattern in config.allowed_route_patterns:
        problem = pattern_problem(pattern)
        if problem:
            warnings.append(f"ALLOWED_ROUTE_PATTERNS entry {pattern!r} never matches: {problem}")
    if config.webhook_url and not config.webhook_secret:
        warnings.append("HANDOFF_WEBHOOK_URL is set without HANDOFF_WEBHOOK_SECRET: events go out unsigned "
                        "(no X-Handoff-Signature), so the receiver cannot tell them from forged ones")
    if not config.auth_failure_limit:
        warnings.append("HANDOFF_AUTH_FAILURE_LIMIT=0: wrong API keys are not throttled")
    return warnings
