"""The Python API: an agent's code talks to a conversation, exactly as the HTTP API does,
with the `conv` object PolyAI's agent functions use (PolyAI's "Conversation object"
reference page), so a PolyAI function moves over unchanged:

    from handoff import Conversation

    def transfer_to_billing(conv):
        conv.state.verified = True
        conv.log.info("transferring", customer_id=conv.state.customer_id)
        return conv.call_handoff(destination="billing", reason="refund_request",
            utterance="Let me transfer you to a billing specialist.",
            sip_headers={"X-Customer-ID": conv.state["customer_id"], "X-Verified": "true"})
"""
from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

from marshmallow import ValidationError

from . import models, polyai
from .config import Config
from .conversations import Conversations
from .errors import ValidationFailed
from .handoff_request_schema import HandoffRequestSchema
from .handoffs import HandoffRequest, Handoffs
from .services import Services
from .snapshot import RoutingTable

_default_services: Services | None = None
HANDOFF_REQUEST = HandoffRequestSchema()  # the rules the API and the voice webhook apply too


def _services() -> Services:
    global _default_services
    if _default_services is None:
        _default_services = Services(Config.from_env())
    return _default_services


class _NestedState(dict):
    """A dict value of the state (`conv.state.handoff`): changing a key of it is saved too,
    so `conv.state.handoff["customer_id"] = "1"` reaches handoff_state like an assignment."""

    def __init__(self, owner: State, key: str, value: dict):
        super().__init__(value)
        self._owner, self._key = owner, key

    def _save(self) -> None:
        self._owner[self._key] = dict(self)

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        self._save()

    def __delitem__(self, key) -> None:
        super().__delitem__(key)
        self._save()

    def update(self, *args, **kwargs) -> None:
        super().update(*args, **kwargs)
        self._save()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.get(name)


class State(MutableMapping):
    """`conv.state`: dict-like, with attribute access as PolyAI's is (a missing key is None
    by attribute or .get, KeyError by []). Every assignment is saved at once (header
    templates and handoff_state read what is stored)."""

    def __init__(self, conversations: Conversations, conversation_id: str):
        object.__setattr__(self, "_conversations", conversations)
        object.__setattr__(self, "_id", conversation_id)

    def _stored(self) -> dict[str, Any]:
        return self._conversations.load(self._id).state or {}

    def _change(self, mutate) -> None:
        def apply(conversation: models.ConversationRecord) -> None:
            conversation.state = dict(conversation.state or {})
            mutate(conversation.state)

        updated = self._conversations.store.update_conversation(self._id, apply)
        if updated is not None:
            self._conversations.remember_handoff_context(updated)

    def __getitem__(self, key: str) -> Any:
        value = self._stored()[key]
        return _NestedState(self, key, value) if isinstance(value, dict) else value

    def __setitem__(self, key: str, value: Any) -> None:
        plain = dict(value) if isinstance(value, _NestedState) else value
        self._change(lambda state: state.__setitem__(key, plain))

    def __delitem__(self, key: str) -> None:
        if key not in self._stored():
            raise KeyError(key)
        self._change(lambda state: state.pop(key, None))

    def __iter__(self) -> Iterator[str]:
        return iter(self._stored())

    def __len__(self) -> int:
        return len(self._stored())

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        self.pop(name, None)

    def __repr__(self) -> str:
        return f"State({self._stored()!r})"

    def __eq__(self, other: object) -> bool:
        return dict(self._stored()) == (dict(other) if isinstance(other, MutableMapping) else other)


class Log:
    """`conv.log`: PolyAI's logger (`conv.log.info("text", key=value)`), and callable as
    before (`conv.log("text")`). Entries land in the conversation's `log`."""

    def __init__(self, conversations: Conversations, conversation_id: str):
        self._conversations, self._id = conversations, conversation_id

    def __call__(self, message: str, level: str = "info", **fields: Any) -> dict:
        entry: dict[str, Any] = {"level": level, "message": str(message)}
        if fields:
            entry["fields"] = fields
        return self._conversations.append(self._id, "log", entry)

    def debug(self, message: str, **fields: Any) -> dict:
        return self(message, "debug", **fields)

    def info(self, message: str, **fields: Any) -> dict:
        return self(message, "info", **fields)

    def warning(self, message: str, **fields: Any) -> dict:
        return self(message, "warning", **fields)

    def error(self, message: str, **fields: Any) -> dict:
        return self(message, "error", **fields)


class Conversation:
    """One conversation, by id. Pass `services` to use a particular deployment's store."""

    def __init__(self, conversation_id: str, services: Services | None = None):
        self.id = conversation_id
        self._services = services or _services()
        self._conversations = Conversations(self._services)
        self._conversations.load(conversation_id)  # NotFound early, not at first use
        self.state = State(self._conversations, conversation_id)
        self.log = Log(self._conversations, conversation_id)

    @classmethod
    def create(cls, *, channel: str = "webchat", shared_id: str | None = None,
               state: dict | None = None, services: Services | None = None, **kwargs) -> Conversation:
        services = services or _services()
        created, _ = Conversations(services).create(
            channel=channel, shared_id=shared_id, state=state, from_=kwargs.get("from_"), to=kwargs.get("to"),
            integration_attributes=kwargs.get("integration_attributes") or None)
        return cls(created.id, services)

    @property
    def services(self) -> Services:
        """The deployment this conversation lives in."""
        return self._services

    def _record(self) -> models.ConversationRecord:
        return self._conversations.load(self.id)

    def update_state(self, **values: Any) -> dict[str, Any]:
        return self._conversations.update(self.id, state=values)["state"]

    @property
    def shared_id(self) -> str | None:
        return self._record().shared_id

    @property
    def integration_attributes(self) -> dict[str, Any]:
        """What the widget passed at chat/create (PolyAI's `integration_attributes`)."""
        return dict(self._record().integration_attributes or {})

    @property
    def caller_number(self) -> str | None:
        return self._record().from_

    @property
    def callee_number(self) -> str | None:
        return self._record().to

    @property
    def handoffs(self) -> dict[str, dict[str, Any]]:
        """PolyAI's `conv.handoffs`: the configured destinations by name (`if "support" in
        conv.handoffs`), each with its stored fields (method, route, sip_headers…)."""
        return {d.name: d.to_dict() for d in self.configuration.destinations}

    @property
    def env(self) -> str:
        """PolyAI's `conv.env`: "live", or "sandbox" for a call to a test number."""
        return self._record().env

    @property
    def configuration(self) -> RoutingTable:
        """The routing configuration this conversation runs on (a test number's call: the draft)."""
        return self._services.configuration(self.env)

    def destination(self, ref: str | None) -> models.Destination | None:
        """The destination a handoff to `ref` goes to: its own, or the default's when `ref` is
        unknown or absent."""
        configuration = self.configuration
        return configuration.find(ref) or configuration.default

    @property
    def channel_type(self) -> str:
        """PolyAI's channel names: `sip.polyai`, `webchat.polyai`, `sms.twilio`…"""
        return polyai.channel_type(self._record())

    def write_metric(self, name: str, value: Any = None, write_once: bool = False) -> dict | None:
        """Record a metric; with `write_once`, a second write of the same name is ignored
        (returns None)."""
        if write_once:
            written = self._services.store.conversation_part(self.id, "metrics")
            if any(entry.get("name") == name for entry in written):
                return None
        return self._conversations.append(self.id, "metrics", {"name": name, "value": value})

    def call_handoff(self, destination: str | None = None, reason: str | None = None,
                     utterance: str | None = None, sip_headers: dict | None = None,
                     data: dict | None = None, route: str | None = None) -> dict:
        """Hand off now; returns the handoff as GET /v1/handoffs/<id> shows it. `route`
        overrides the destination's route, only within ALLOWED_ROUTE_PATTERNS. Without a
        `reason`, the destination's name is the reason, as in PolyAI's `conv.call_handoff`
        (its "Conversation object" page), so connectors reading `handoff_reason` get one."""
        if reason is None:
            found = self.destination(destination)
            reason = found.name if found else None
        # A header given None (`conv.state.customer_id` before the agent stored one) has no
        # value: left out with a warning, as a template variable with no value is.
        unset = [name for name, value in (sip_headers or {}).items() if value is None]
        try:
            fields = HANDOFF_REQUEST.load({
                "destination": destination, "reason": reason, "utterance": utterance,
                "sip_headers": {k: str(v) for k, v in (sip_headers or {}).items() if v is not None},
                "data": data or {}, "route": route,
            })
        except ValidationError as exc:
            raise ValidationFailed(f"invalid handoff: {sorted(exc.messages)}", exc.messages) from None
        request = HandoffRequest(**fields, warnings=[
            models.warning("missing_variable", f"header {name} left out: it was given no value") for name in unset])
        handoff = Handoffs(self._services).start(self.id, request, base_url=None)
        return handoff.public()

    def hangup(self, utterance: str | None = None) -> None:
        """End the conversation; a live call is hung up (Twilio REST, from the worker), after
        the caller hears `utterance` when one is given."""
        record = self._record()
        live_call = (record.channel or "voice") == "voice" and not record.ended_at
        self._conversations.end(self.id)
        if live_call and utterance:
            self._services.enqueue("handoff.jobs.say_and_end_call", self.id, str(utterance),
                                   job_id=f"hangup-{self.id}", retry=self._services.job_retry())
        elif live_call:
            self._services.enqueue("handoff.jobs.end_call_leg", self.id, job_id=f"hangup-{self.id}",
                                   retry=self._services.job_retry())
