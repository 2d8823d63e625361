"""Conversations: who talked, what was said, the state headers template from."""
from __future__ import annotations

import uuid
from typing import Any

from .errors import NotFound
from .models import now_iso
from .paging import page
from .services import Services
from .store import Keys

ROLES = ("user", "agent", "human")
LEVELS = ("debug", "info", "warning", "error")


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

    def create(self, *, channel: str = "webchat", shared_id: str | None = None,
               state: dict | None = None, from_: str | None = None, to: str | None = None,
               conversation_id: str | None = None, leg: str | None = None,
               extra: dict | None = None, env: str | None = None) -> tuple[dict, bool]:
        """(conversation, created); an existing id is returned as it is, not overwritten.
        `extra`: further top-level fields (a PolyAI widget's `integration_attributes`…)."""
        doc = {
            "id": conversation_id or new_id("CO"),
            "shared_id": shared_id,
            "channel": channel,
            "from": from_,
            "to": to,
            "started_at": now_iso(),
            "ended_at": None,
            "state": state or {},
            "outcome": None,
        }
        for name, value in (extra or {}).items():
            doc.setdefault(name, value)
        if leg:
            doc["_leg"] = leg  # which TwiML the caller's leg accepts, for later handoffs
        if env == "sandbox":
            doc["_env"] = env  # a test number: this call runs on the sandbox draft throughout
        existing = self.store.create_conversation(doc)
        return (doc, True) if existing is None else (existing, False)

    def get_doc(self, conversation_id: str) -> dict:
        doc = self.store.get_conversation(conversation_id)
        if doc is None:
            raise NotFound(f"no conversation with id {conversation_id!r}")
        return doc

    def present(self, doc: dict) -> dict:
        # Keys starting with "_" are the service's own bookkeeping (router misses, …).
        body = {k: v for k, v in doc.items() if not k.startswith("_")}
        body.update(self.store.conversation_parts(doc["id"]))
        latest = self.store.newest_handoff_for_conversation(doc["id"])
        body["handoff"] = latest.public() if latest else None
        return body

    def get(self, conversation_id: str) -> dict:
        return self.present(self.get_doc(conversation_id))

    def update(self, conversation_id: str, *, shared_id: str | None = None,
               state: dict | None = None) -> dict:
        def mutate(doc: dict) -> None:
            if shared_id is not None:
                doc["shared_id"] = shared_id
            if state:
                doc["state"] = {**(doc.get("state") or {}), **state}

        doc = self.store.update_conversation(conversation_id, mutate)
        if doc is None:
            raise NotFound(f"no conversation with id {conversation_id!r}")
        return self.present(doc)

    def append(self, conversation_id: str, part: str, entry: dict) -> dict:
        self.get_doc(conversation_id)
        entry = {**entry, "at": entry.get("at") or now_iso()}
        self.store.append_conversation(conversation_id, part, entry)
        return entry

    def end(self, conversation_id: str) -> dict | None:
        def mutate(doc: dict) -> None:
            doc["ended_at"] = doc.get("ended_at") or now_iso()

        return self.store.update_conversation(conversation_id, mutate)

    def set_outcome(self, conversation_id: str, outcome: dict) -> None:
        def mutate(doc: dict) -> None:
            doc["outcome"] = outcome

        self.store.update_conversation(conversation_id, mutate)

    def list(self, *, shared_id: str | None = None, channel: str | None = None,
             has_handoff: bool | None = None, limit: int = 50, cursor: str | None = None):
        store = self.store

        def keep(doc: dict) -> bool:
            if shared_id is not None and doc.get("shared_id") != shared_id:
                return False
            if channel is not None and doc.get("channel") != channel:
                return False
            if has_handoff is not None:
                if store.has_handoffs(doc["id"]) != has_handoff:
                    return False
            return True

        items, next_cursor, has_more = page(
            lambda after, n: store.scan_index(Keys.conversations, after, n),
            store.get_conversations, keep, limit, cursor,
            lambda members: store.forget_from_index(Keys.conversations, members),
        )
        return [self.present(doc) for doc in items], next_cursor, has_more
