"""`ConversationRecord` (handoff/models.py): the stored document in and out, and what the API shows."""
import json

from handoff.models import ConversationRecord
from handoff.store.compact import pack_conversation, unpack_conversation

# A call as `Conversations.create` and `Calls.place` have always written it, then the router
# and the outbound-call options: the service's bookkeeping under `_` names.
STORED_IN_FULL = {
    "id": "CA1", "shared_id": "S-1", "channel": "voice", "from": "+14155550100", "to": "+14155550199",
    "started_at": "2026-11-01T10:00:00.000Z", "ended_at": None, "state": {"customer": {"id": "C-42"}},
    "outcome": None, "direction": "outbound", "classification": None, "_leg": "pstn", "_env": "sandbox",
    "_outbound": {"agent_url": "wss://agent.example.com", "on_voicemail": None}, "_misses": 1,
    "_agent_done": True,
}
SHOWN = {
    "id": "CA1", "shared_id": "S-1", "channel": "voice", "from": "+14155550100", "to": "+14155550199",
    "started_at": "2026-11-01T10:00:00.000Z", "ended_at": None, "state": {"customer": {"id": "C-42"}},
    "outcome": None, "direction": "outbound", "classification": None,
}


def test_a_stored_document_reads_into_named_fields_and_writes_back_the_same():
    conversation = ConversationRecord.from_dict(STORED_IN_FULL)
    assert (conversation.leg, conversation.env, conversation.agent_done, conversation.router_misses) == (
        "pstn", "sandbox", True, 1)
    assert conversation.from_ == "+14155550100"
    assert conversation.outbound_options == {"agent_url": "wss://agent.example.com", "on_voicemail": None}
    assert conversation.to_dict() == STORED_IN_FULL
    assert ConversationRecord.from_dict(json.loads(json.dumps(conversation.to_dict()))) == conversation


def test_public_shows_what_the_api_always_showed_and_no_bookkeeping():
    assert ConversationRecord.from_dict(STORED_IN_FULL).public() == SHOWN
    assert list(ConversationRecord.from_dict(STORED_IN_FULL).public()) == list(SHOWN)
    chat = ConversationRecord.from_dict({
        "id": "CO1", "shared_id": None, "channel": "webchat", "from": None, "to": None,
        "started_at": "2026-11-01T10:00:00.000Z", "ended_at": None, "state": {}, "outcome": None,
        "integration_attributes": {"page": "/help"}, "_polyai": {"variant_id": "v2", "channel": "webchat"}})
    assert chat.polyai_chat == {"variant_id": "v2", "channel": "webchat"}
    shown = chat.public()
    assert shown["integration_attributes"] == {"page": "/help"}
    assert "direction" not in shown and "classification" not in shown and "_polyai" not in shown


def test_the_packed_form_stored_today_reads_and_packs_back_byte_for_byte():
    stored = {"from": "sip:+14155550100@sbc.example.com", "to": "+14155550199",
              "started_at": "2026-11-01T10:00:00.000Z", "_leg": "sip"}  # a call: no channel
    conversation = ConversationRecord.from_dict(unpack_conversation(stored, "CA2"))
    assert conversation.id == "CA2" and conversation.leg == "sip" and conversation.env == "live"
    assert conversation.state == {} and conversation.shared_id is None and not conversation.agent_done
    assert conversation.channel == "voice"
    assert json.dumps(pack_conversation(conversation.to_dict())) == json.dumps(stored)
    # As versions before wrote it, with the channel: the same call, stored as today's once changed.
    written_before = ConversationRecord.from_dict(unpack_conversation({"channel": "voice", **stored}, "CA2"))
    assert written_before == conversation


def test_older_and_unknown_forms_still_read():
    """A document without every field (written before `Conversations.create` wrote them all)
    reads with the defaults; fields this version does not know are kept, and shown unless
    they are bookkeeping."""
    partial = ConversationRecord.from_dict(unpack_conversation({"id": "CO2", "channel": "sms"}, "CO2"))
    assert (partial.id, partial.channel, partial.from_, partial.state, partial.env) == ("CO2", "sms", None, {}, "live")
    newer = ConversationRecord.from_dict({**STORED_IN_FULL, "language": "fr", "_retries": 2})
    assert newer.to_dict() == {**STORED_IN_FULL, "language": "fr", "_retries": 2}
    assert newer.public() == {**SHOWN, "language": "fr"}


def test_a_call_answered_without_redis_is_described_by_its_webhook_parameters():
    conversation = ConversationRecord.for_call({"CallSid": "CA3", "From": "+14155550100", "To": "+14155550199"})
    assert (conversation.id, conversation.from_, conversation.to, conversation.state) == (
        "CA3", "+14155550100", "+14155550199", {})
    assert conversation.env == "live" and conversation.leg is None
    assert ConversationRecord.for_call({}).id == "unknown"


def test_state_merges_over_what_is_there():
    conversation = ConversationRecord(id="CO4", state={"tier": "gold", "customer": {"id": "1"}})
    conversation.merge_state({"customer": {"id": "2"}})
    assert conversation.state == {"tier": "gold", "customer": {"id": "2"}}
