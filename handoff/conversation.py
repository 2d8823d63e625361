"""The Python API: an agent's code talks to a conversation, exactly as the HTTP API does.

    from handoff import Conversation

    def transfer_to_billing(conv):
        return conv.call_handoff(destination="billing", reason="refund_request",
            utterance="Let me transfer you to a billing specialist.",
            sip_headers={"X-Customer-ID": conv.state["customer_id"], "X-Verified": "true"})
"""
from __future__ import annotations

from typing import Any

from marshmallow import ValidationError

from .config import Config
from .conversations import Conversations
from .errors import ValidationFailed
from .handoffs import HandoffRequest, Handoffs
from .services import Services

_default_services: Services | None = None


def _services() -> Services:
    global _default_services
    if _default_services is None:
        _default_services = Services(Config.from_env())
    return _default_services


class Conversation:
    """One conversation, by id. Pass `services` to use a particular deployment's store."""

    def __init__(self, conversation_id: str, services: Services | None = None):
        self.id = conversation_id
        self._services = services or _services()
        self._conversations = Conversations(self._services)
        self._conversations.get_doc(conversation_id)  # NotFound early, not at first use

    @classmethod
    def create(cls, *, channel: str = "webchat", shared_id: str | None = None,
               state: dict | None = None, services: Services | None = None, **kwargs) -> "Conversation":
        services = services or _services()
        doc, _ = Conversations(services).create(channel=channel, shared_id=shared_id, state=state,
                                                from_=kwargs.get("from_"), to=kwargs.get("to"))
        return cls(doc["id"], services)

    @property
    def state(self) -> dict[str, Any]:
        """The conversation's state as stored now (header templates read the same)."""
        return self._conversations.get_doc(self.id).get("state") or {}

    def update_state(self, **values: Any) -> dict[str, Any]:
        return self._conversations.update(self.id, state=values)["state"]

    @property
    def shared_id(self) -> str | None:
        return self._conversations.get_doc(self.id).get("shared_id")

    def log(self, message: str, level: str = "info") -> dict:
        return self._conversations.append(self.id, "log", {"level": level, "message": str(message)})

    def write_metric(self, name: str, value: Any) -> dict:
        return self._conversations.append(self.id, "metrics", {"name": name, "value": value})

    def call_handoff(self, destination: str | None = None, reason: str | None = None,
                     utterance: str | None = None, sip_headers: dict | None = None,
                     data: dict | None = None) -> dict:
        """Hand off now; returns the handoff as GET /v1/handoffs/<id> shows it."""
        from schemas.handoffs import HandoffRequestSchema

        try:
            fields = HandoffRequestSchema().load({
                "destination": destination, "reason": reason, "utterance": utterance,
                "sip_headers": {k: str(v) for k, v in (sip_headers or {}).items()}, "data": data or {},
            })
        except ValidationError as exc:
            raise ValidationFailed(f"invalid handoff: {sorted(exc.messages)}", exc.messages) from None
        handoff = Handoffs(self._services).start(self.id, HandoffRequest(**fields), base_url=None)
        return handoff.public()
