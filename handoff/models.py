"""Domain objects: what a destination and a handoff are, independent of storage."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

METHODS = ("sip_refer", "sip_invite", "sip_bye", "twilio_flex")
TRANSFER_MODES = ("blind", "blind_with_summary_header", "warm_message", "warm_accept", "consult")
INTROS = ("private", "public")
FAILURE_DISPOSITIONS = ("next", "return_to_agent", "voicemail", "hangup")
ENCRYPTIONS = ("tls_srtp", "udp_rtp")
CHANNELS = ("voice", "webchat", "sms")

# Handoff states (the `state` of a handoff in docs/api.md).
REQUESTED, TRANSFERRING, CONNECTED, COMPLETED = "requested", "transferring", "connected", "completed"
FAILED, ABANDONED, PENDING, CLAIMED = "failed", "abandoned", "pending", "claimed"
FINAL_STATES = frozenset({COMPLETED, FAILED, ABANDONED})
OPEN_STATES = frozenset({REQUESTED, TRANSFERRING, PENDING})


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def warning(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


@dataclass
class Destination:
    id: str
    name: str
    method: str = "sip_refer"
    # A SIP URI, extension or E.164 number; for `sip_invite` a list of up to 10 rung at once;
    # for `twilio_flex` a TaskRouter Workflow SID.
    route: str | list[str] | None = None
    description: str = ""
    sip_headers: list[dict[str, str]] = field(default_factory=list)
    encryption: str = "tls_srtp"
    ring_timeout: int = 30
    fallback: str | None = None
    transfer_mode: str = "blind"
    detect_voicemail: bool = False
    on_failure: str = "next"
    hours: dict[str, Any] | None = None
    # `<Dial callerId>`: an E.164 number or a template such as `$called_number`.
    caller_id: str | None = None
    # DTMF digits (and `w` half-second pauses) sent once a phone-number route answers.
    extension: str | None = None
    # consult: what the caller hears while the human is briefed, and whether the reason
    # is announced to both as the human joins.
    hold_audio_url: str | None = None
    intro: str = "private"
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Destination:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        """How a handoff names the destination it went to."""
        return {"id": self.id, "name": self.name, "method": self.method, "route": self.route}


@dataclass
class Handoff:
    id: str
    conversation_id: str
    channel: str = "voice"
    shared_id: str | None = None
    destination: dict[str, Any] | None = None
    reason: str | None = None
    utterance: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    sip_headers: dict[str, str] = field(default_factory=dict)
    state: str = REQUESTED
    history: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    outcome: dict[str, Any] | None = None
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    # Bookkeeping for the fallback chain: destination ids already tried, in order, and
    # the call-time header overrides that every attempt re-renders.
    attempts: list[str] = field(default_factory=list)
    header_overrides: dict[str, str] = field(default_factory=dict)
    call_sid: str | None = None
    claimed_by: str | None = None
    callback_base: str | None = None
    leg: str | None = None  # sip | client | pstn: which TwiML the caller's leg accepts
    route_override: str | None = None
    # What a screening URL learnt about an attempt before its action callback arrives:
    # {"2": "voicemail"} or {"1": "not_accepted"}.
    attempt_marks: dict[str, str] = field(default_factory=dict)

    PUBLIC = (
        "id", "conversation_id", "shared_id", "channel", "destination", "reason", "utterance",
        "data", "sip_headers", "state", "history", "warnings", "outcome", "created_at",
        "updated_at",
    )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Handoff:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        """The fields, shallow (nested lists and dicts are shared, not copied): for JSON.
        `copy()` gives an independent handoff."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def copy(self) -> Handoff:
        return Handoff.from_dict(json.loads(json.dumps(self.to_dict())))

    def public(self) -> dict[str, Any]:
        full = self.to_dict()
        out = {key: full[key] for key in self.PUBLIC}
        if self.claimed_by:
            out["claimed_by"] = self.claimed_by
        return out

    def add_warning(self, code: str, message: str) -> None:
        entry = warning(code, message)
        if entry not in self.warnings:
            self.warnings.append(entry)

    def move_to(self, state: str, detail: dict[str, Any] | None = None, *, again: bool = False) -> bool:
        """Record a state change; False when it is not a change (nothing recorded).

        `again` records a repeat of the current state: a new transfer attempt after a
        failed one is its own history entry (and event), naming the destination tried."""
        if state == self.state and self.history and not again:
            return False
        now = now_iso()
        self.state = state
        self.updated_at = now
        self.history.append({"state": state, "at": now, "detail": detail or {}})
        return True
