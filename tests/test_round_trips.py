"""What a voice handoff costs in Redis round trips: one to claim the webhook's idempotency key
(reading the configuration's version and the call's conversation along), one to write the
conversation, the handoff and the answer together (handoff/store.py `answer_once`)."""
from __future__ import annotations

import contextlib

import redis
from redis.client import Pipeline
from redis.connection import AbstractConnection

from tests.helpers import add_destination as make
from tests.helpers import call_params


@contextlib.contextmanager
def round_trips():
    """Count what this process sends to Redis: each send is one request and its wait."""
    sent = []
    original = AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        sent.append(command)
        return original(self, command, check_health)

    AbstractConnection.send_packed_command = counting
    try:
        yield sent
    finally:
        AbstractConnection.send_packed_command = original


def handoff(twilio, call_sid: str, token: str, **extra):
    return twilio.post("/voice/handoff", {**call_params(call_sid), "destination": "billing", **extra},
                       headers={"I-Twilio-Idempotency-Token": token})


def test_a_voice_handoff_is_two_round_trips_and_stores_all_it_answered(api, twilio):
    make(api)
    handoff(twilio, "CA" + "0" * 32, "warm-up")  # the first request parses the configuration
    call_sid = "CA" + "a" * 32
    with round_trips() as sent:
        first = handoff(twilio, call_sid, "token-1", reason="refund")
    assert first.status_code == 200 and b"<Refer" in first.data
    assert len(sent) == 2
    conversation = api.get(f"/v1/conversations/{call_sid}").get_json()
    assert conversation["channel"] == "voice" and conversation["handoff"]["reason"] == "refund"
    assert conversation["handoff"]["state"] == "transferring"
    assert conversation["handoff"]["id"] in first.get_data(as_text=True)

    # Twilio retries the same delivery: the stored answer, no second handoff.
    retried = handoff(twilio, call_sid, "token-1", reason="refund")
    assert retried.data == first.data
    assert len(api.get("/v1/handoffs", query_string={"limit": 100}).get_json()["items"]) == 2

    # A later handoff on the same call finds its conversation in the first round trip.
    with round_trips() as sent:
        second = handoff(twilio, call_sid, "token-2", reason="billing_question")
    assert second.status_code == 200 and len(sent) == 2
    assert api.get(f"/v1/conversations/{call_sid}").get_json()["handoff"]["reason"] == "billing_question"


def test_state_stored_on_the_call_before_its_handoff_templates_the_headers(api, twilio):
    """The conversation read along with the claim is the one the handoff is planned on."""
    make(api, sip_headers=[{"name": "X-Customer", "value": "$customer_id"}])
    call_sid = "CA" + "b" * 32
    assert twilio.post("/voice/call", call_params(call_sid)).status_code == 200  # records the call
    patched = api.patch(f"/v1/conversations/{call_sid}", json={"state": {"customer_id": "C-7"}})
    assert patched.status_code == 200
    with round_trips() as sent:
        answered = handoff(twilio, call_sid, "token-3")
    assert len(sent) == 2 and "X-Customer=C-7" in answered.get_data(as_text=True)


def test_a_write_whose_reply_was_lost_answers_with_what_it_stored(api, twilio, monkeypatch):
    """Redis ran the MULTI but its reply timed out: the caller is sent to the handoff that
    was stored, not to an unrecorded one, and Twilio's retry gets the same TwiML."""
    make(api)
    real_execute = Pipeline.execute
    lost = []

    def reply_lost(self, raise_on_error=True):
        result = real_execute(self, raise_on_error)
        if self.transaction and not lost:
            lost.append(result)
            raise redis.TimeoutError("Timeout reading from socket")
        return result

    monkeypatch.setattr(Pipeline, "execute", reply_lost)
    call_sid = "CA" + "c" * 32
    first = handoff(twilio, call_sid, "token-4")
    assert lost and first.status_code == 200
    stored = api.get(f"/v1/conversations/{call_sid}").get_json()["handoff"]
    assert stored["id"] in first.get_data(as_text=True)
    assert handoff(twilio, call_sid, "token-4").data == first.data
    assert len(api.get("/v1/handoffs").get_json()["items"]) == 1


def test_a_failing_side_effect_after_the_write_does_not_change_the_answer(api, twilio, monkeypatch):
    from handoff.handoff_core import HandoffCore

    make(api)
    monkeypatch.setattr(HandoffCore, "_after_change", lambda self, handoff, first_new: 1 / 0)
    call_sid = "CA" + "d" * 32
    answered = handoff(twilio, call_sid, "token-5")
    stored = api.get(f"/v1/conversations/{call_sid}").get_json()["handoff"]
    assert stored["id"] in answered.get_data(as_text=True)
    assert handoff(twilio, call_sid, "token-5").data == answered.data
