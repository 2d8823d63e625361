"""Conversations: who talked, what was said, the state headers template from."""
from __future__ import annotations

import uuid
from typing import Any

from .errors import NotFound
from .models import ConversationRecord, now_iso
from .paging import page
from .services import Services
from .store import Keys, WriteBatch

ROLES = ("user", "agent", "human")
LEVELS = ("debug", "info", "warning", "error")
KEEP = object()  # Conversations.update: a field not given, left as it is (None clears)


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


def sip_header_state(params: dict[str, str]) -> dict[str, Any]:
    """`SipHeader_X-Customer-ID=42` (Twilio's form of an inbound SIP header) becomes
    state `sip_headers["X-Customer-ID"]` and a template-friendly `x_customer_id`."""
    headers = {k[len("SipHeader_"):]: v for k, v in params.items() if k.startswith("SipHeader_")}
    state: dict[str, Any] = {}
    if headers:
        state["sip_headers"] = headers
        for name, value in headers.items():
            state.setdefault(name.lower().replace("-", "_"), value)
    return state


class Conversations:
    def __init__(self, services: Services):
        self.services = services

    @property
    def store(self):
        return self.services.store

    def create(self, **fields) -> tuple[ConversationRecord, bool]:
        """(conversation, created) for `new`'s fields; an existing id is returned as it is,
        not overwritten."""
        conversation = self.new(**fields)
        existing = self.store.create_conversation(conversation)
        if existing is not None:
            return existing, False
        self.remember_handoff_context(conversation)
        return conversation, True

    def create_with(self, batch: WriteBatch, **fields) -> ConversationRecord:
        """A new conversation, written with `batch` (its caller has read that there is none;
        if one appears meanwhile, the batch leaves it as it is)."""
        conversation = self.new(**fields)
        self.store.create_conversation(conversation, pipe=batch.pipe)
        return conversation

    @staticmethod
    def new(*, channel: str = "webchat", shared_id: str | None = None, state: dict | None = None,
            from_: str | None = None, to: str | None = None, conversation_id: str | None = None,
            leg: str | None = None, env: str | None = None, integration_attributes: dict | None = None,
            polyai_chat: dict | None = None) -> ConversationRecord:
        """A conversation as `create` would record it, not stored."""
        return ConversationRecord(
            id=conversation_id or new_id("CO"), shared_id=shared_id, channel=channel, from_=from_, to=to,
            state=state or {}, integration_attributes=integration_attributes, polyai_chat=polyai_chat,
            leg=leg or None, env="sandbox" if env == "sandbox" else "live",
        )

    def load(self, conversation_id: str) -> ConversationRecord:
        """The stored conversation (NotFound without one); `get` is what the API shows."""
        conversation = self.store.get_conversation(conversation_id)
        if conversation is None:
            raise NotFound(f"no conversation with id {conversation_id!r}")
        return conversation

    def present(self, conversation: ConversationRecord) -> dict:
        body = conversation.public()
        body.update(self.store.conversation_parts(conversation.id))
        latest = self.store.newest_handoff_for_conversation(conversation.id)
        body["handoff"] = latest.public() if latest else None
        return body

    def get(self, conversation_id: str) -> dict:
        return self.present(self.load(conversation_id))

    def update(self, conversation_id: str, *, shared_id: str | None | object = KEEP,
               state: dict | None = None) -> dict:
        """`shared_id` None clears it (a PATCH may send null); KEEP leaves it."""
        def mutate(conversation: ConversationRecord) -> None:
            if shared_id is not KEEP:
                conversation.shared_id = shared_id
            if state:
                conversation.merge_state(state)

        conversation = self.store.update_conversation(conversation_id, mutate)
        if conversation is None:
            raise NotFound(f"no conversation with id {conversation_id!r}")
        self.remember_handoff_context(conversation)
        return self.present(conversation)

    def remember_handoff_context(self, conversation: ConversationRecord) -> None:
        """A conversation with a shared id whose agent stored `state.handoff` is found by that
        shared id before any handoff carries it (PolyAI's Handoff API reads both ways). Only
        then: other conversations cost no key."""
        if conversation.shared_id and isinstance((conversation.state or {}).get("handoff"), dict):
            self.store.remember_shared_conversation(conversation.shared_id, conversation.id)

    def append(self, conversation_id: str, part: str, entry: dict) -> dict:
        self.load(conversation_id)
        entry = {**entry, "at": entry.get("at") or now_iso()}
        self.store.append_conversation(conversation_id, part, entry)
        return entry

    def end(self, conversation_id: str) -> ConversationRecord | None:
        def mutate(conversation: ConversationRecord) -> None:
            conversation.ended_at = conversation.ended_at or now_iso()

        return self.store.update_conversation(conversation_id, mutate)

    def set_outcome(self, conversation_id: str, outcome: dict) -> None:
        def mutate(conversation: ConversationRecord) -> None:
            conversation.outcome = outcome

        self.store.update_conversation(conversation_id, mutate)

    def list(self, *, shared_id: str | None = None, channel: str | None = None,
             has_handoff: bool | None = None, limit: int = 50, cursor: str | None = None):
        store = self.store

        def keep(conversation: ConversationRecord) -> bool:
            if shared_id is not None and conversation.shared_id != shared_id:
                return False
            if channel is not None and conversation.channel != channel:
                return False
            if has_handoff is not None:
                if store.has_handoffs(conversation.id) != has_handoff:
                    return False
            return True

        items, next_cursor, has_more = page(
            lambda after, n: store.scan_index(Keys.conversations, after, n),
            store.get_conversations, keep, limit, cursor,
            lambda members: store.forget_from_index(Keys.conversations, members),
        )
        return [self.present(conversation) for conversation in items], next_cursor, has_more
