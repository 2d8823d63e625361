"""Our records in the shapes of PolyAI's published APIs (the Handoff API's handoff_state and
the Conversations API v3 summary), for connectors written against PolyAI.

PolyAI's schemas: repository PolyAI-LDN/polyai-mintlify-doc, api-reference/handoff/openapi.json
and api-reference/conversations/v3/openapi.json (copies in tests/data/polyai/)."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from .errors import NotFound
from .models import ABANDONED, CLAIMED, COMPLETED, CONNECTED, FAILED, ConversationRecord, Handoff
from .paging import page
from .services import Services
from .store import Keys

# PolyAI's handoff states ("Handoff States" page): initiated until a live agent accepts (a
# call connected, a chat claimed), then completed; failed when the transfer fails.
HANDOFF_STATES = {COMPLETED: "handoff_completed", CONNECTED: "handoff_completed", CLAIMED: "handoff_completed",
                  FAILED: "handoff_failed", ABANDONED: "handoff_failed"}
CALL_SID = re.compile(r"^CA[0-9a-f]{32}$")  # a call's conversation is named after its CallSid
# PolyAI's analytics labels for a conversation's medium (Conversations API `channel`).
CHANNEL_LABELS = {"voice": "VOICE-SIP", "webchat": "WEBCHAT", "sms": "SMS"}
# PolyAI's `conv.channel_type` values (its glossary: "sip.polyai", "webchat.polyai"…).
CHANNEL_TYPES = {"voice": "sip.polyai", "webchat": "webchat.polyai", "sms": "sms.twilio"}
POLYAI_CHANNEL_TYPES = {"webchat": "webchat.polyai", "whatsapp": "whatsapp.polyai",
                        "sms": "sms.twilio", "api": "chat.polyai"}


def channel_type(conversation: ConversationRecord) -> str:
    polyai = (conversation.polyai_chat or {}).get("channel")
    if polyai in POLYAI_CHANNEL_TYPES:
        return POLYAI_CHANNEL_TYPES[polyai]
    return CHANNEL_TYPES.get(conversation.channel or "voice", "chat.polyai")


def handoff_state(services: Services, conversation_id: str | None = None,
                  shared_id: str | None = None) -> dict[str, Any]:
    """`{"id", "shared_id"?, "data"}`: the conversation's `state.handoff` merged with the
    latest handoff's `data`; `handoff_to`, `handoff_reason` and `handoff_state` filled in
    only where the agent did not set them. `shared_id` wins when both are given."""
    store = services.store
    handoff: Handoff | None = None
    if shared_id:
        handoff = store.newest_handoff_for_shared_id(shared_id)
        if handoff is not None:
            conversation = store.get_conversation(handoff.conversation_id)
        else:  # no handoff yet: what the agent stored in state.handoff, if anything
            found = store.conversation_for_shared_id(shared_id)
            conversation = store.get_conversation(found) if found else None
            if conversation is not None and conversation.shared_id != shared_id:
                conversation = None
    else:
        conversation = store.get_conversation(conversation_id) if conversation_id else None
        handoff = store.newest_handoff_for_conversation(conversation_id) if conversation else None
    state = (conversation.state if conversation else None) or {}
    set_by_agent = state.get("handoff") if isinstance(state.get("handoff"), dict) else None
    if handoff is None and set_by_agent is None:
        raise NotFound("no handoff state for that conversation")
    data = {**(set_by_agent or {}), **(handoff.data if handoff else {})}
    if handoff is not None:
        data.setdefault("handoff_to", (handoff.destination or {}).get("name"))
        data.setdefault("handoff_reason", handoff.reason)
        data.setdefault("handoff_state", HANDOFF_STATES.get(handoff.state, "handoff_initiated"))
    body: dict[str, Any] = {"id": conversation.id if conversation else handoff.conversation_id}
    found_shared_id = (conversation.shared_id if conversation else None) or (handoff.shared_id if handoff else None)
    if found_shared_id:
        body["shared_id"] = found_shared_id
    body["data"] = data
    return body


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _turns(transcript: list[dict]) -> list[dict[str, str]]:
    """PolyAI counts a turn as the user's input and the answer to it."""
    turns: list[dict[str, str]] = []
    for entry in transcript:
        role, text, at = entry.get("role"), entry.get("text") or "", entry.get("at")
        if role == "user":
            turns.append({"user_input": text, "user_input_datetime": at})
            continue
        if not turns or "agent_response" in turns[-1]:
            turns.append({"user_input": ""})  # the agent spoke first (a greeting), or again
        turns[-1]["agent_response"] = text
        turns[-1]["agent_response_datetime"] = at
    return [{k: v for k, v in turn.items() if v is not None} for turn in turns]


def _metrics(entries: list[dict]) -> dict[str, Any]:
    """Name → value, or the list of values when a metric was written more than once."""
    by_name: dict[str, list[str]] = {}
    for entry in entries:
        value = entry.get("value")
        by_name.setdefault(entry["name"], []).append("" if value is None else str(value))
    return {name: values[0] if len(values) == 1 else values for name, values in by_name.items()}


def _built_in_state(conversation: ConversationRecord) -> dict[str, str]:
    """The keys PolyAI's state carries without the agent writing them (`from_`, `to`,
    `call_sid` for a call, whose conversation id is its CallSid); the agent's own win."""
    built_in = {"from_": conversation.from_, "to": conversation.to}
    if (conversation.channel or "voice") == "voice" and CALL_SID.match(conversation.id):
        built_in["call_sid"] = conversation.id
    return {key: value for key, value in built_in.items() if value}


def conversation_summary(services: Services, conversation: ConversationRecord, account_id: str,
                         project_id: str) -> dict[str, Any]:
    """A conversation as PolyAI's ConversationSummaryResponse (fields we have no value for
    are left out, as PolyAI's schema allows)."""
    store = services.store
    parts = store.conversation_parts(conversation.id)
    handoff = store.newest_handoff_for_conversation(conversation.id)
    turns = _turns(parts["transcript"])
    body: dict[str, Any] = {
        "id": conversation.id, "account_id": account_id, "project_id": project_id,
        "environment": conversation.env or "live", "started_at": conversation.started_at,
        "channel": CHANNEL_LABELS.get(conversation.channel or "voice", "CHAT"),
        "in_progress": not conversation.ended_at,
    }
    variant_id = (conversation.polyai_chat or {}).get("variant_id")
    if variant_id:
        body["variant_id"] = variant_id
    if conversation.from_:
        body["from_number"] = conversation.from_
    if conversation.to:
        body["to_number"] = conversation.to
    body["num_turns"] = len(turns)
    if conversation.ended_at:
        took = _parse_time(conversation.ended_at) - _parse_time(conversation.started_at)
        body["total_duration"] = int(took.total_seconds())
    body["handoff"] = handoff is not None
    if handoff is not None:
        if handoff.reason:
            body["handoff_reason"] = handoff.reason
        if handoff.destination:
            body["handoff_destination"] = handoff.destination.get("name")
    body["metrics"] = _metrics(parts["metrics"])
    body["state"] = {**_built_in_state(conversation), **(conversation.state or {})}
    body["turns"] = turns
    return body


def list_conversations(services: Services, *, account_id: str, project_id: str, limit: int,
                       cursor: str | None, client_env: str = "live", start_time: datetime | None = None,
                       end_time: datetime | None = None, channels: list[str] | None = None,
                       in_progress: bool | None = None, offset: int = 0, variant_id: str | None = None,
                       variant_name: str | None = None, search: str | None = None,
                       turn_type: str | None = None) -> dict[str, Any]:
    """PolyAI's GetConversationsResponse: oldest first, `cursor` null after the last page;
    only the conversations of `client_env` (a sandbox one is a call to a test number).
    Without a `cursor`, PolyAI's legacy paging works too: skip `offset` matches, and
    `next_offset` says where the next page starts while there is one. `search`: PolyAI's
    transcript search (case-insensitive text, in `turn_type` "user" or "agent" turns only
    when given). No conversation here has a variant name, so `variant_name` matches none."""
    store = services.store
    wanted = {c.upper() for c in channels or []}

    def keep(conversation: ConversationRecord) -> bool:
        if (conversation.env or "live") != client_env:
            return False
        started = _parse_time(conversation.started_at)
        if start_time and started and started < start_time:
            return False
        if end_time and started and started > end_time:
            return False
        channel = conversation.channel or "voice"
        if wanted and channel.upper() not in wanted and CHANNEL_LABELS.get(channel) not in wanted:
            return False
        if in_progress is not None and in_progress != (not conversation.ended_at):
            return False
        if variant_name is not None or (variant_id and (conversation.polyai_chat or {}).get("variant_id") != variant_id):
            return False
        return not search or _transcript_has(conversation.id)

    def _transcript_has(conversation_id: str) -> bool:
        wanted = search.casefold()
        return any(wanted in (entry.get("text") or "").casefold()
                   for entry in store.conversation_part(conversation_id, "transcript")
                   if turn_type is None or entry.get("role") == turn_type)

    def scan(after: int, count: int):
        return store.scan_index(Keys.conversations, after, count)

    def forget(members):
        store.forget_from_index(Keys.conversations, members)

    by_offset = cursor is None
    if by_offset and offset:
        # Offsets cost a walk over what they skip (PolyAI's docs say so of theirs too).
        _skipped, cursor, _ = page(scan, store.get_conversations, keep, offset, None, forget)
    items, next_cursor, has_more = page(scan, store.get_conversations, keep, limit, cursor, forget)
    body: dict[str, Any] = {"conversations": [conversation_summary(services, conversation, account_id, project_id)
                                              for conversation in items]}
    if by_offset and has_more:
        body["next_offset"] = offset + len(items)
    body["cursor"] = next_cursor if has_more else None
    return body
