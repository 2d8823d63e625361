"""Handoffs and conversations are stored compactly (handoff/store/compact.py) and read back unchanged."""
import json

from handoff.models import Handoff
from handoff.store import Keys
from handoff.store.compact import (
    handoff_from_text,
    handoff_text,
    pack,
    pack_conversation,
    shown_at,
    stored_at,
    unpack,
    unpack_conversation,
)
from tests.helpers import add_destination, call_params


def test_a_voice_handoff_reads_back_the_same_and_is_stored_in_under_half_its_json(api, twilio, services):
    add_destination(api, "Billing", sip_headers=[{"name": "X-Caller", "value": "$caller_id"}])
    answer = twilio.post("/voice/handoff", call_params(destination="Billing", reason="billing",
                                                       utterance="put me through", data='{"customer": "C1"}'))
    assert answer.status_code == 200
    conversation = api.get("/v1/conversations/" + "CA" + "1" * 32).get_json()
    shown = api.get(f"/v1/handoffs/{conversation['handoff']['id']}").get_json()
    handoff = services.store.get_handoff(shown["id"])
    assert shown == json.loads(json.dumps(handoff.public()))
    assert shown["destination"]["name"] == "Billing" and shown["data"] == {"customer": "C1"}
    assert [entry["state"] for entry in shown["history"]] == ["requested", "transferring"]
    assert all("detail" in entry for entry in shown["history"])
    assert conversation["from"] and conversation["ended_at"] is None and conversation["outcome"] is None

    stored = services.store.redis.get(Keys.handoff(shown["id"]))
    assert len(stored) * 2 < len(json.dumps(handoff.to_dict()))
    assert len(stored) < len(json.dumps(pack(handoff.to_dict()), separators=(",", ":"))) * 0.75  # deflated
    assert shown["id"] not in stored  # the id is the key's


def test_a_handoff_stored_as_packed_json_before_it_was_deflated_still_reads_and_changes(api, services):
    conversation = api.post("/v1/conversations", json={"shared_id": "S-8"}).get_json()
    handoff = api.post(f"/v1/conversations/{conversation['id']}/handoff", json={"reason": "plain"}).get_json()
    shown_before = api.get(f"/v1/handoffs/{handoff['id']}").get_json()
    redis = services.store.redis
    packed = pack(services.store.get_handoff(handoff["id"]).to_dict())
    redis.set(Keys.handoff(handoff["id"]), json.dumps(packed, separators=(",", ":")), keepttl=True)

    assert api.get(f"/v1/handoffs/{handoff['id']}").get_json() == shown_before
    assert api.post(f"/v1/handoffs/{handoff['id']}/claim", json={"agent": "ana"}).status_code == 200
    assert api.get(f"/v1/handoffs/{handoff['id']}").get_json()["state"] == "claimed"
    assert not redis.get(Keys.handoff(handoff["id"])).startswith("{")  # rewritten in the new form


def test_documents_stored_in_full_before_still_read(api, services):
    """Data written before the compact format (every field, long names) reads as it was."""
    conversation = api.post("/v1/conversations", json={"shared_id": "S-9"}).get_json()
    handoff = api.post(f"/v1/conversations/{conversation['id']}/handoff", json={"reason": "old"}).get_json()
    shown_before = api.get(f"/v1/handoffs/{handoff['id']}").get_json()
    conversation_before = api.get(f"/v1/conversations/{conversation['id']}").get_json()
    redis = services.store.redis
    full = services.store.get_handoff(handoff["id"]).to_dict()
    redis.set(Keys.handoff(handoff["id"]), json.dumps(full), keepttl=True)
    redis.set(Keys.conversation(conversation["id"]),
              json.dumps(services.store.get_conversation(conversation["id"]).to_dict()), keepttl=True)
    # Then, a conversation's handoffs were a sorted set of their own, not named in its JSON.
    redis.zadd(Keys.conversation_handoffs(conversation["id"]), {handoff["id"]: 1})

    assert redis.get(Keys.handoff(handoff["id"])).startswith('{"id"')
    assert api.get(f"/v1/handoffs/{handoff['id']}").get_json() == shown_before
    assert api.get(f"/v1/conversations/{conversation['id']}").get_json() == conversation_before
    claimed = api.post(f"/v1/handoffs/{handoff['id']}/claim", json={"agent": "ana"})
    assert claimed.status_code == 200, claimed.get_json()
    assert api.get(f"/v1/handoffs/{handoff['id']}").get_json()["state"] == "claimed"

    # A new handoff on that conversation is named in front of its old-form JSON.
    assert api.patch(f"/v1/handoffs/{handoff['id']}", json={"state": "abandoned"}).status_code == 200
    newer = api.post(f"/v1/conversations/{conversation['id']}/handoff", json={"reason": "new"}).get_json()
    assert redis.get(Keys.conversation(conversation["id"])).startswith('{"_h":"' + newer["id"] + '","id"')
    shown = api.get(f"/v1/conversations/{conversation['id']}").get_json()
    assert shown["handoff"]["id"] == newer["id"] and "_h" not in shown
    assert {k: v for k, v in shown.items() if k != "handoff"} == {
        k: v for k, v in conversation_before.items() if k != "handoff"}


def test_pack_and_unpack_keep_every_unusual_value():
    handoff = Handoff(id="HO1", conversation_id="CA1", call_sid="CA2", channel="webchat", shared_id="",
                      destination={"id": "d", "name": "D", "method": "sip_refer", "route": None, "extra": 1},
                      data={"k": [1, None]}, attempts=["a", "b"], attempt_marks={"1": "voicemail"})
    handoff.move_to("requested")
    handoff.move_to("transferring", {"destination": "a", "attempt": 1})
    handoff.move_to("failed", {"destination": "a", "attempt": 1, "why": "busy"})
    handoff.history += [{"state": "x", "at": "t"}, {"state": "y", "at": "t", "detail": None},
                        {"state": "z", "at": "u", "detail": {}, "by": "someone"}, "not a dict",
                        {"state": "n", "at": 5}, {"state": "d", "at": "12345"}, {"state": "s", "at": None}]
    handoff.updated_at = "later"
    handoff.utterance = "Ça coûte 20 € — 请转人工 \u2028 \"quoted\" \\"
    doc = handoff.to_dict()
    assert unpack(json.loads(json.dumps(pack(doc))), "HO1") == doc
    assert unpack(handoff_from_text(handoff_text(pack(doc))), "HO1") == doc
    odd = Handoff(id="HO2", conversation_id="CA1", destination={"name": "no id"}, attempts=[None]).to_dict()
    assert unpack(json.loads(json.dumps(pack(odd))), "HO2") == odd

    conversation = {"id": "CO1", "shared_id": None, "channel": "webchat", "from": None, "to": None,
                    "started_at": "t", "ended_at": "u", "state": {"a": 1}, "outcome": None, "_agent_done": True}
    back = unpack_conversation(json.loads(json.dumps(pack_conversation(conversation))), "CO1")
    assert back == conversation and list(back) == list(conversation)
    call = {**conversation, "id": "CA1", "channel": "voice"}
    assert "channel" not in pack_conversation(call)  # a call's channel is the default
    assert list(unpack_conversation(pack_conversation(call), "CA1").items()) == list(call.items())
    written_before = {name: value for name, value in call.items() if name != "id"}  # with its channel
    assert list(unpack_conversation(written_before, "CA1").items()) == list(call.items())
    partial = {"id": "CO2", "channel": "sms"}  # not written by Conversations.create: kept whole
    assert unpack_conversation(pack_conversation(partial), "CO2") == partial


def test_a_conversation_names_its_newest_handoff_in_its_own_json(api, services):
    """No sorted set per conversation: its newest handoff's id is the first field of its JSON,
    kept there when the conversation changes, and never shown."""
    conversation = api.post("/v1/conversations", json={"shared_id": "S-7"}).get_json()
    cid = conversation["id"]
    redis = services.store.redis
    assert not redis.get(Keys.conversation(cid)).startswith('{"_h"')
    first = api.post(f"/v1/conversations/{cid}/handoff", json={"reason": "one"}).get_json()
    assert redis.get(Keys.conversation(cid)).startswith('{"_h":"' + first["id"] + '",')

    assert api.patch(f"/v1/conversations/{cid}", json={"state": {"plan": "gold"}}).status_code == 200
    assert redis.get(Keys.conversation(cid)).startswith('{"_h":"' + first["id"] + '",')
    assert api.patch(f"/v1/handoffs/{first['id']}", json={"state": "abandoned"}).status_code == 200
    second = api.post(f"/v1/conversations/{cid}/handoff", json={"reason": "two"}).get_json()
    stored = redis.get(Keys.conversation(cid))
    assert stored.startswith('{"_h":"' + second["id"] + '",') and first["id"] not in stored
    assert not redis.exists(Keys.conversation_handoffs(cid))

    shown = api.get(f"/v1/conversations/{cid}").get_json()
    assert "_h" not in shown and shown["handoff"]["id"] == second["id"] and shown["state"] == {"plan": "gold"}
    listed = api.get("/v1/conversations").get_json()["items"]
    assert all("_h" not in item for item in listed)


def test_an_event_time_is_kept_as_milliseconds_and_shown_as_it_was_written():
    for at in ("2026-11-26T14:09:02.012Z", "1970-01-01T00:00:00.000Z", "2026-11-26T14:09:02Z",
               "2026-11-26T14:09:02.012+00:00", "12345", "20261126", "=5", "t", ""):
        assert shown_at(stored_at(at)) == at
    assert stored_at("2026-11-26T14:09:02.012Z") == "1795702142012"


def test_the_event_feed_shows_the_times_the_handoff_history_has(api, services):
    conversation = api.post("/v1/conversations", json={}).get_json()
    handoff = api.post(f"/v1/conversations/{conversation['id']}/handoff", json={"reason": "r"}).get_json()
    raw = services.store.redis.xrange(Keys.events)
    assert all(fields["at"].isdigit() for _, fields in raw)  # kept as integers
    events = api.get("/v1/handoffs/events").get_json()["items"]
    history = api.get(f"/v1/handoffs/{handoff['id']}").get_json()["history"]
    assert [(e["state"], e["at"]) for e in events] == [(h["state"], h["at"]) for h in history]


def test_text_with_a_lone_surrogate_is_refused_by_the_api_and_kept_as_raw_text_by_the_voice_webhook(api, twilio):
    """JSON may spell a lone surrogate (`\\ud800`), which is not Unicode and UTF-8 cannot
    encode (a reason is part of a Redis key): the API refuses it with 422, the voice webhook
    moves the caller and keeps the unusable `data` as text, as for any unreadable JSON."""
    conversation = api.post("/v1/conversations", json={}).get_json()
    for body in ('{"reason": "r", "utterance": "hi \\ud800"}', '{"reason": "\\udfff"}',
                 '{"data": {"\\ud800": 1}}'):
        refused = api.client.post(f"/v1/conversations/{conversation['id']}/handoff", data=body,
                                  headers={**api.headers, "Content-Type": "application/json"})
        assert refused.status_code == 422, refused.get_json()
        error = refused.get_json()["error"]
        assert error["code"] == "validation_error" and "lone surrogate" in error["fields"]["body"][0]

    add_destination(api, "Billing")
    answer = twilio.post("/voice/handoff", call_params(destination="Billing", data='{"k": "\\ud800"}'))
    assert "<Refer" in answer.get_data(as_text=True)
    handoff = api.get("/v1/conversations/" + "CA" + "1" * 32).get_json()["handoff"]
    assert handoff["data"] == {"raw": '{"k": "\\ud800"}'}
    assert [w["code"] for w in handoff["warnings"]] == ["bad_data"]


def test_the_stored_form_keeps_a_lone_surrogate_it_is_given():
    """Refused at the door (handoff/jsontext.py), but a document that holds one still packs
    and reads back: nothing between the store and Redis may raise on it."""
    doc = {"u": "hi \ud800", "da": {"k": "\udfff"}}
    assert handoff_from_text(handoff_text(doc)) == doc
