"""Domain objects: what a destination and a handoff are, independent of storage."""
from __future__ import annotations

import json
from collections.abc import Iterator
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


@dataclass
class ConversationRecord:
    """One conversation (a call, a webchat or an SMS thread) as the store keeps it.

    The fields down to `classification` are what the API shows (`public()`); those after
    are the service's own bookkeeping, stored under `_`-prefixed names (`STORED_AS`) as
    they always were, so documents written before this class read the same."""

    id: str
    shared_id: str | None = None
    channel: str = "voice"  # a document without one is a call's, as every reader assumed
    from_: str | None = None  # stored and shown as `from`
    to: str | None = None
    started_at: str = field(default_factory=now_iso)
    ended_at: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    outcome: dict[str, Any] | None = None
    # Shown only when set: what a widget passed to the PolyAI-shaped chat/create, and on
    # calls placed with POST /v1/calls their direction and what answered (null until known).
    integration_attributes: dict[str, Any] | None = None
    direction: str | None = None
    classification: str | None = None
    # -- bookkeeping, never shown --
    leg: str | None = None  # sip | client | pstn: which TwiML the caller's leg accepts, for later handoffs
    env: str = "live"  # "sandbox": a call to a test number, run on the sandbox draft throughout
    agent_done: bool = False  # the router handed off: the bot says no more (webchat, SMS)
    router_misses: int = 0  # the router's unmatched turns in a row (a second one hands off)
    # POST /v1/calls' `agent_url` and `on_voicemail`, for when the call is answered / classified.
    outbound_options: dict[str, Any] | None = None
    # PolyAI chat/create's variant_id, channel and language codes (PolyAI's channel_type, summaries).
    polyai_chat: dict[str, Any] | None = None
    # Stored fields this version does not know (a newer one wrote them): kept as they are.
    other: dict[str, Any] = field(default_factory=dict)

    # Attribute → stored name, where they differ.
    STORED_AS = {
        "from_": "from", "leg": "_leg", "env": "_env", "agent_done": "_agent_done", "router_misses": "_misses",
        "outbound_options": "_outbound", "polyai_chat": "_polyai",
    }
    # Stored and shown always, in this order (what `Conversations.create` has always written).
    ALWAYS = ("id", "shared_id", "channel", "from_", "to", "started_at", "ended_at", "state", "outcome")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConversationRecord:
        """From a stored document (`_`-prefixed bookkeeping, `from`), whatever it holds."""
        values: dict[str, Any] = {"other": {}}
        for key, value in data.items():
            if key in _CONVERSATION_ATTRIBUTES:
                values[_CONVERSATION_ATTRIBUTES[key]] = value
            else:
                values["other"][key] = value
        if "env" in values:
            values["env"] = "sandbox" if values["env"] == "sandbox" else "live"
        return cls(**values)

    @classmethod
    def for_call(cls, params: dict[str, str]) -> ConversationRecord:
        """The conversation of a call as its webhook parameters describe it, stored nowhere:
        what a handoff is planned on while Redis is unreachable (Twilio's voice webhook
        parameters `CallSid`, `From`, `To`)."""
        return cls(id=params.get("CallSid") or "unknown", from_=params.get("From"), to=params.get("To"))

    def to_dict(self) -> dict[str, Any]:
        """The stored document: every field `ALWAYS` has, then those set (bookkeeping under
        its `_` names), then `other`."""
        doc = {self.STORED_AS.get(name, name): getattr(self, name) for name in self.ALWAYS}
        for name, value in self._set_optionals():
            doc[self.STORED_AS.get(name, name)] = value
        doc.update({key: value for key, value in self.other.items() if key not in doc})
        return doc

    def public(self) -> dict[str, Any]:
        """The conversation's own fields as the API shows them (without its transcript, log,
        metrics, annotations and handoff, which live elsewhere)."""
        return {key: value for key, value in self.to_dict().items() if not key.startswith("_")}

    def _set_optionals(self) -> Iterator[tuple[str, Any]]:
        if self.integration_attributes is not None:
            yield "integration_attributes", self.integration_attributes
        if self.direction is not None:
            yield "direction", self.direction
        if self.direction is not None or self.classification is not None:
            yield "classification", self.classification
        for name in ("leg", "polyai_chat", "outbound_options"):
            if getattr(self, name) is not None:
                yield name, getattr(self, name)
        if self.env == "sandbox":
            yield "env", self.env
        if self.router_misses:
            yield "router_misses", self.router_misses
        if self.agent_done:
            yield "agent_done", self.agent_done

    def merge_state(self, values: dict[str, Any]) -> None:
        """`values` over the state (a PATCH, or what an agent learnt before handing off)."""
        self.state = {**(self.state or {}), **values}


# Stored name → attribute, for reading stored documents.
_CONVERSATION_ATTRIBUTES = {ConversationRecord.STORED_AS.get(f.name, f.name): f.name
                            for f in fields(ConversationRecord) if f.name != "other"}
