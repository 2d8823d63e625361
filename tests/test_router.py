"""The built-in router: topics, and voice, webchat and SMS conversations that end with a person."""
import uuid

import pytest

from handoff.handoffs import Handoffs
from handoff.topics import Topic, contains_phrase, route_text
from tests.helpers import call_params, parse, verbs


@pytest.fixture
def over_http():
    """These stories go over real HTTP (a threaded server on loopback)."""
    return True

CALL = "CA" + "3" * 32


@pytest.fixture
def configured(api):
    api.post("/v1/destinations", json={"name": "Reception", "route": "sip:reception@pbx"})
    api.post("/v1/destinations", json={"name": "Billing", "route": "sip:billing@pbx"})
    response = api.post("/v1/topics", json={
        "name": "Billing", "phrases": ["refund", "invoice", "billing"],
        "action": {"type": "handoff", "destination": "billing", "reason": "billing_question",
                   "utterance": "Let me get you to our billing team."}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def topic(phrases, tid="t"):
    return Topic(id=tid, name=tid, phrases=phrases, action={"destination": tid, "reason": tid})


def test_matching_ignores_case_and_accents_on_word_boundaries():
    assert contains_phrase("I'd like a RÉFUND, please!", "refund")
    assert not contains_phrase("refunds", "refund")
    assert contains_phrase("can I speak   to someone?", "speak to someone")


def test_topics_win_over_asking_for_a_person_and_longest_phrase_wins():
    topics = [topic(["card"], "cards"), topic(["lost card"], "fraud")]
    assert route_text("an agent about my lost card", None, topics).topic_id == "fraud"
    human = route_text("I want a human", None, topics)
    assert human.reason == "needs_human" and human.destination is None
    assert route_text(None, "0", topics).reason == "needs_human"
    assert route_text("hello there", None, topics) is None


def test_topic_crud_and_a_deleted_destination_warns(api, configured):
    assert configured["id"] == "billing" and configured["warnings"] == []
    assert api.post("/v1/topics", json={"name": "billing", "phrases": ["x"], "action": {}}).status_code == 409
    assert api.post("/v1/topics", json={"name": "Empty", "phrases": ["!!"], "action": {}}).status_code == 422
    bad = api.post("/v1/topics", json={"name": "T", "phrases": [], "action": {"type": "email"}})
    assert bad.status_code == 422 and set(bad.get_json()["error"]["fields"]) == {"phrases", "action"}
    patched = api.patch("/v1/topics/billing", json={"phrases": ["refund"]}).get_json()
    assert patched["phrases"] == ["refund"] and patched["name"] == "Billing"
    api.delete("/v1/destinations/billing?confirm=Billing")
    assert [w["code"] for w in api.get("/v1/topics/billing").get_json()["warnings"]] == ["destination_missing"]
    assert api.delete("/v1/topics/billing").status_code == 409
    assert api.delete("/v1/topics/billing?confirm=Billing").status_code == 204
    assert api.get("/v1/topics").get_json()["items"] == []


def test_caller_asking_for_a_refund_reaches_billing(api, twilio, configured):
    greeting = parse(twilio.post("/voice/call", call_params(CALL)))
    assert verbs(greeting) == ["Gather", "Redirect"]
    gather = greeting.find("Gather")
    assert gather.get("input") == "speech dtmf" and gather.find("Say").text.startswith("Hello")
    action = gather.get("action").removeprefix("https://handoff.example.com")
    root = parse(twilio.post(action, {**call_params(CALL), "SpeechResult": "I'd like a refund"}))
    assert verbs(root) == ["Say", "Refer"]
    assert root.find("Say").text == "Let me get you to our billing team."
    assert root.find("Refer/Sip").text == "sip:billing@pbx"
    conversation = api.get(f"/v1/conversations/{CALL}").get_json()
    assert [t["role"] for t in conversation["transcript"]] == ["agent", "user", "agent"]
    assert conversation["transcript"][1]["text"] == "I'd like a refund"
    assert conversation["handoff"]["reason"] == "billing_question"
    assert conversation["handoff"]["data"] == {"topic": "billing"}


def test_silence_twice_reaches_the_default(api, twilio, configured):
    greeting = parse(twilio.post("/voice/call", call_params(CALL)))
    redirect = greeting.find("Redirect").text.removeprefix("https://handoff.example.com")
    reprompt = parse(twilio.post(redirect, call_params(CALL)))
    assert verbs(reprompt) == ["Gather", "Redirect"] and "didn't catch" in reprompt.find("Gather/Say").text
    action = reprompt.find("Gather").get("action").removeprefix("https://handoff.example.com")
    root = parse(twilio.post(action, {**call_params(CALL), "SpeechResult": ""}))
    assert root.find("Refer/Sip").text == "sip:reception@pbx"
    assert api.get(f"/v1/conversations/{CALL}").get_json()["handoff"]["reason"] == "no_match"


def test_pressing_zero_asks_for_a_person(api, twilio, configured):
    greeting = parse(twilio.post("/voice/call", call_params(CALL)))
    action = greeting.find("Gather").get("action").removeprefix("https://handoff.example.com")
    root = parse(twilio.post(action, {**call_params(CALL), "Digits": "0"}))
    assert root.find("Refer/Sip").text == "sip:reception@pbx"
    assert api.get(f"/v1/conversations/{CALL}").get_json()["handoff"]["reason"] == "needs_human"


def test_webchat_ends_in_a_pending_handoff(api, configured):
    created = api.post("/v1/chat/create", json={"shared_id": "web-1", "state": {"page": "/pricing"}})
    assert created.status_code == 201
    cid = created.get_json()["conversation_id"]
    miss = api.post("/v1/chat/respond", json={"conversation_id": cid, "message": "hmm"}).get_json()
    assert miss["handoff"] is None and miss["end_conversation"] is False and "didn't catch" in miss["response"]
    hit = api.post("/v1/chat/respond", json={"conversation_id": cid, "message": "Where is my invoice?"}).get_json()
    assert hit["end_conversation"] is True and hit["response"] == "Let me get you to our billing team."
    assert hit["handoff"]["destination"] == "Billing" and hit["handoff"]["reason"] == "billing_question"
    listed = api.get("/v1/handoffs?state=pending&channel=webchat").get_json()["items"]
    assert [h["id"] for h in listed] == [hit["handoff"]["id"]]
    assert listed[0]["shared_id"] == "web-1"
    late = api.post("/v1/chat/respond", json={"conversation_id": cid, "message": "hello?"})
    assert late.status_code == 409 and late.get_json()["error"]["code"] == "conflict"
    transcript = api.get(f"/v1/conversations/{cid}").get_json()["transcript"]
    assert [t["text"] for t in transcript if t["role"] == "user"] == ["hmm", "Where is my invoice?"]


def test_webchat_close_leaves_the_handoff_pending_for_a_connector(api, configured):
    cid = api.post("/v1/chat/create", json={}).get_json()["conversation_id"]
    hit = api.post("/v1/chat/respond", json={"conversation_id": cid, "message": "agent please"}).get_json()
    assert hit["handoff"]["reason"] == "needs_human"
    assert api.put("/v1/chat/close", json={"conversation_id": cid}).get_json() == {"success": True}
    assert api.get(f"/v1/handoffs/{hit['handoff']['id']}").get_json()["state"] == "pending"
    claimed = api.post(f"/v1/handoffs/{hit['handoff']['id']}/claim", json={"agent": "ana"})
    assert claimed.status_code == 200 and claimed.get_json()["state"] == "claimed"
    assert api.post("/v1/chat/end", json={"conversation_id": cid}).status_code == 200
    assert api.post("/v1/chat/respond", json={"conversation_id": "nope", "message": "x"}).status_code == 404


def sms(twilio, body, sender="+14155550111", headers=None, **extra):
    """One inbound text as Twilio posts it; each a message of its own (MessageSid) unless given."""
    params = {"MessageSid": "SM" + uuid.uuid4().hex, "From": sender, "To": "+14155550999", "Body": body,
              "NumMedia": "0", **extra}
    return twilio.post("/sms/incoming", params, headers=headers)


def test_a_retried_delivery_of_a_text_is_one_turn(api, twilio, configured):
    """Twilio may deliver a message webhook again (connection overrides' retries, with the
    same I-Twilio-Idempotency-Token: https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides);
    the same MessageSid is one text: one reply, one turn, not a second miss that hands off."""
    sid, token = "SM" + "2" * 32, {"I-Twilio-Idempotency-Token": "tok-1"}
    first = sms(twilio, "hello", MessageSid=sid, headers=token).get_data(as_text=True)
    again = sms(twilio, "hello", MessageSid=sid, headers=token).get_data(as_text=True)
    assert again == first and "didn't catch" in parse(first).find("Message").text
    assert api.get("/v1/handoffs?channel=sms").get_json()["items"] == []
    [conversation] = api.get("/v1/conversations?channel=sms").get_json()["items"]
    transcript = api.get(f"/v1/conversations/{conversation['id']}").get_json()["transcript"]
    assert [t["text"] for t in transcript if t["role"] == "user"] == ["hello"]


def test_sms_conversation_ends_in_a_pending_handoff(api, twilio, configured):
    first = parse(sms(twilio, "hello"))
    assert "didn't catch" in first.find("Message").text
    second = parse(sms(twilio, "I need a refund"))
    assert second.find("Message").text == "Let me get you to our billing team."
    handoffs = api.get("/v1/handoffs?channel=sms&state=pending").get_json()["items"]
    assert len(handoffs) == 1
    conversation = api.get(f"/v1/conversations/{handoffs[0]['conversation_id']}").get_json()
    assert conversation["from"] == "+14155550111"
    assert [t["text"] for t in conversation["transcript"] if t["role"] == "user"] == ["hello", "I need a refund"]
    waiting = parse(sms(twilio, "are you there?"))
    assert waiting.find("Message").text.startswith("Thanks, a member of our team")
    api.post(f"/v1/handoffs/{handoffs[0]['id']}/claim", json={"agent": "ana"})
    assert verbs(parse(sms(twilio, "thanks"))) == []  # a person has the thread: no robot reply
    api.post(f"/v1/handoffs/{handoffs[0]['id']}/outcome", json={"resolution": "done"})
    fresh = parse(sms(twilio, "hello again"))
    assert "didn't catch" in fresh.find("Message").text


def test_an_sms_handoff_nobody_claims_is_abandoned_after_the_pending_timeout(app, api, twilio, configured):
    from datetime import timedelta

    services = app.extensions["handoff"]
    sms(twilio, "I need a refund")
    [pending] = api.get("/v1/handoffs?channel=sms&state=pending").get_json()["items"]
    started = services.clock()
    services.clock = lambda: started + timedelta(seconds=3599)
    Handoffs(services).expire_due()
    assert api.get(f"/v1/handoffs/{pending['id']}").get_json()["state"] == "pending"
    services.clock = lambda: started + timedelta(seconds=3601)  # HANDOFF_PENDING_TIMEOUT: 3600 s
    Handoffs(services).expire_due()
    assert api.get(f"/v1/handoffs/{pending['id']}").get_json()["state"] == "abandoned"
    fresh = parse(sms(twilio, "hello again"))  # the thread starts afresh with the robot
    assert "didn't catch" in fresh.find("Message").text
    assert len(api.get("/v1/conversations?channel=sms").get_json()["items"]) == 2


@pytest.mark.parametrize("keyword", ["STOP", "stop", " Unsubscribe ", "OPTOUT"])
def test_an_opted_out_sender_gets_no_reply_and_nobody_waits_to_text_them(api, twilio, configured, keyword):
    """Twilio answers STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE and OPTOUT itself
    on long codes and sends nothing more to that sender until they opt back in ("Advanced
    Opt-Out", https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out): a <Message>
    back is refused, and a handoff left pending would have a person text someone who can
    no longer be texted."""
    sms(twilio, "I need a refund")
    [pending] = api.get("/v1/handoffs?channel=sms&state=pending").get_json()["items"]
    stopped = parse(sms(twilio, keyword))
    assert verbs(stopped) == []
    handoff = api.get(f"/v1/handoffs/{pending['id']}").get_json()
    assert handoff["state"] == "abandoned" and handoff["history"][-1]["detail"] == {"reason": "opted_out"}
    assert api.get(f"/v1/conversations/{pending['conversation_id']}").get_json()["ended_at"]
    # A first text that is a keyword starts nothing and is not answered by the router.
    assert verbs(parse(sms(twilio, keyword, sender="+14155550222"))) == []
    assert len(api.get("/v1/conversations?channel=sms").get_json()["items"]) == 1


def test_sms_odd_messages_get_sensible_replies(api, twilio, configured):
    assert "didn't get any text" in parse(sms(twilio, "")).find("Message").text
    media = parse(sms(twilio, "", NumMedia="1", MediaUrl0="https://x/img.jpg"))
    assert "only read text" in media.find("Message").text
    long = parse(sms(twilio, "refund " + "x" * 5000))
    assert long.find("Message").text == "Let me get you to our billing team."
    assert sms(twilio, "hi", **{}).status_code == 200
    forged = twilio.post("/sms/incoming", {"From": "+1", "Body": "hi"}, sign=False)
    assert forged.status_code == 403
