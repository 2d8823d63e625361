"""ConversationRelay in, Flex out, opening hours and simultaneous ring."""
import json
from datetime import UTC, datetime

import pytest

from app import create_app
from tests.helpers import BASE_URL, Twilio, call_params, latest_handoff, parse, path, verbs
from tests.helpers import add_destination as make


@pytest.fixture
def over_http():
    """These stories go over real HTTP (a threaded server on loopback)."""
    return True

CALL = "CA" + "2" * 32
WORKFLOW = "WW" + "ab" * 16
AGENT = "wss://agent.example.com/relay"


@pytest.fixture
def relay_app(app, config):
    return create_app(config.with_overrides(agent_url=AGENT))


@pytest.fixture
def relay(relay_app, client_of):
    return Twilio(client_of(relay_app))


def test_inbound_call_connects_to_the_relay_agent(relay):
    root = parse(relay.post("/voice/call", call_params(CALL, shared_id="ticket-9")))
    assert verbs(root) == ["Connect"]
    connect = root.find("Connect")
    assert connect.get("action") == f"{BASE_URL}/voice/agent/ended"
    assert connect.find("ConversationRelay").get("url") == AGENT
    parameters = {p.get("name"): p.get("value") for p in connect.find("ConversationRelay")}
    assert parameters == {"conversation_id": CALL, "shared_id": "ticket-9"}


def test_relay_ends_with_a_billing_handoff(api, relay):
    make(api, "Reception")
    make(api, "Billing", sip_headers=[{"name": "X-Customer-ID", "value": "$customer.id"},
                                      {"name": "X-Verified", "value": "$verified"}])
    relay.post("/voice/call", call_params(CALL))
    handoff_data = json.dumps({"destination": "billing", "reason": "refund_request",
                               "utterance": "Let me transfer you to billing.",
                               "state": {"customer": {"id": "C-42"}, "verified": True},
                               "data": {"order": "A-17"}})
    root = parse(relay.post("/voice/agent/ended", {**call_params(CALL), "HandoffData": handoff_data}))
    assert verbs(root) == ["Say", "Refer"]
    assert root.find("Refer/Sip").text == "sip:billing@pbx.example.com?X-Customer-ID=C-42&X-Verified=true"
    record = handoff(api)
    assert record["reason"] == "refund_request" and record["data"] == {"order": "A-17"}
    assert api.get(f"/v1/conversations/{CALL}").get_json()["state"]["customer"] == {"id": "C-42"}


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", json.dumps({"sip_headers": {"Bad Header": "x"}}),
                                 json.dumps({"state": "nope"}), "x" * 20000])
def test_garbage_handoff_data_goes_to_the_default(api, relay, raw):
    make(api, "Reception")
    make(api, "Billing")
    root = parse(relay.post("/voice/agent/ended", {**call_params(CALL), "HandoffData": raw}))
    assert root.find("Refer/Sip").text == "sip:reception@pbx.example.com"
    assert [w["code"] for w in handoff(api)["warnings"]] == ["bad_handoff_data"]


def test_relay_session_ending_without_handoff(api, relay):
    make(api, "Reception")
    relay.post("/voice/call", call_params(CALL))
    gone = parse(relay.post("/voice/agent/ended", {**call_params(CALL), "CallStatus": "completed"}))
    assert verbs(gone) == []
    assert api.get(f"/v1/conversations/{CALL}").get_json()["ended_at"]
    # The caller is still there but the agent left without a handoff: nobody is left in silence.
    still_there = parse(relay.post("/voice/agent/ended", call_params("CA" + "3" * 32)))
    assert still_there.find("Refer/Sip").text == "sip:reception@pbx.example.com"


def test_flex_enqueues_with_task_attributes(api, twilio):
    make(api, "Flex", method="twilio_flex", route=WORKFLOW,
         sip_headers=[{"name": "X-Tier", "value": "$tier"}])
    twilio.post("/voice/call", call_params(CALL, shared_id="case-5"))
    api.patch(f"/v1/conversations/{CALL}", json={"state": {"tier": "gold", "verified": True}})
    root = parse(twilio.post("/voice/handoff", {**call_params(CALL), "reason": "billing", "utterance": "One moment."}))
    assert verbs(root) == ["Say", "Enqueue"]
    enqueue = root.find("Enqueue")
    assert enqueue.get("workflowSid") == WORKFLOW and enqueue.get("action").startswith(BASE_URL)
    task = json.loads(enqueue.find("Task").text)
    assert task["handoff_id"] == handoff(api)["id"] and task["reason"] == "billing"
    assert task["utterance"] == "One moment." and task["shared_id"] == "case-5"
    assert task["caller"] == "+14155550100" and task["context"] == {"X-Tier": "gold"}
    assert task["state"] == {"tier": "gold", "verified": True}


def test_flex_task_attributes_are_capped_with_a_warning(api, twilio):
    make(api, "Flex", method="twilio_flex", route=WORKFLOW)
    twilio.post("/voice/call", call_params(CALL))
    api.patch(f"/v1/conversations/{CALL}", json={"state": {"notes": "n" * 5000}})
    root = parse(twilio.post("/voice/handoff", call_params(CALL)))
    task = root.find("Enqueue/Task").text
    assert len(task) <= 2000 and "state" not in json.loads(task)
    assert [w["code"] for w in handoff(api)["warnings"]] == ["task_attributes_truncated"]


# QueueResult values from Twilio's <Enqueue> page (https://www.twilio.com/docs/voice/twiml/enqueue):
# bridging-in-process means a human is being bridged (connected, completed by the call's end);
# redirected (out of the queue by a REST request) ends the attempt but is not the caller leaving,
# and the TwiML of that request runs, so the answer holds no verb.
@pytest.mark.parametrize("result, state, next_verb", [
    ("bridged", "completed", "Hangup"), ("bridging-in-process", "connected", "Hangup"),
    ("hangup", "abandoned", "Hangup"),
    ("leave", "transferring", "Refer"), ("error", "transferring", "Refer"),
    ("system-error", "transferring", "Refer"), ("queue-full", "transferring", "Refer"),
    ("redirected", "failed", None)])
def test_every_queue_result(api, twilio, result, state, next_verb):
    make(api, "Reception")
    make(api, "Flex", method="twilio_flex", route=WORKFLOW)
    root = parse(twilio.post("/voice/handoff", {**call_params(CALL), "destination": "flex"}))
    after = parse(twilio.post(path(root.find("Enqueue").get("action")),
                              {**call_params(CALL), "QueueResult": result, "QueueTime": "12"}))
    assert verbs(after) == ([next_verb] if next_verb else [])
    assert handoff(api)["state"] == state
    if next_verb == "Refer":
        assert after.find("Refer/Sip").text == "sip:reception@pbx.example.com"


def test_flex_route_must_be_a_workflow_sid(api):
    bad = api.post("/v1/destinations", json={"name": "Flex", "method": "twilio_flex", "route": "sip:a@b"})
    assert bad.status_code == 422 and "Workflow SID" in bad.get_json()["error"]["fields"]["route"][0]


HOURS = {"timezone": "Europe/London", "weekly": {d: [["09:00", "17:30"]] for d in ("mon", "tue", "wed", "thu", "fri")},
         "closed_dates": ["2026-12-25"]}


def at(text):
    return lambda: datetime.fromisoformat(text).astimezone(UTC)


def test_a_closed_destination_is_skipped_without_ringing(api, twilio, services):
    make(api, "Reception")
    make(api, "Office", hours=HOURS)
    services.clock = at("2026-11-25T02:00:00+00:00")  # a Wednesday, 02:00 in London
    root = parse(twilio.post("/voice/handoff", {**call_params(CALL), "destination": "office"}))
    assert root.find("Refer/Sip").text == "sip:reception@pbx.example.com"
    record = handoff(api)
    assert record["history"][1]["detail"]["after"] == {"destination": "office", "attempt": 1, "result": "closed"}
    assert [w["code"] for w in api.get("/v1/destinations/office").get_json()["warnings"]] == ["closed"]
    services.clock = at("2026-11-25T10:00:00+00:00")
    assert api.get("/v1/destinations/office").get_json()["warnings"] == []
    root = parse(twilio.post("/voice/handoff", {**call_params("CA" + "5" * 32), "destination": "office"}))
    assert root.find("Refer/Sip").text == "sip:office@pbx.example.com"
    services.clock = at("2026-12-25T10:00:00+00:00")  # a Friday, but a closed date
    root = parse(twilio.post("/voice/handoff", {**call_params("CA" + "6" * 32), "destination": "office"}))
    assert root.find("Refer/Sip").text == "sip:reception@pbx.example.com"


def test_hours_follow_daylight_saving(api, twilio, services):
    make(api, "Reception")
    make(api, "Office", hours=HOURS)
    services.clock = at("2026-07-01T08:30:00+00:00")  # 09:30 in London (BST)
    root = parse(twilio.post("/voice/handoff", {**call_params(CALL), "destination": "office"}))
    assert root.find("Refer/Sip").text == "sip:office@pbx.example.com"


@pytest.mark.parametrize("hours, problem", [
    ({"timezone": "Mars/Olympus", "weekly": {}}, "IANA"),
    ({"timezone": "UTC", "weekly": {"monday": [["09:00", "10:00"]]}}, "mon"),
    ({"timezone": "UTC", "weekly": {"mon": [["10:00", "09:00"]]}}, "ends before"),
    ({"timezone": "UTC", "weekly": {"mon": [["9am", "5pm"]]}}, "HH:MM"),
    ({"timezone": "UTC", "closed_dates": ["25/12/2026"]}, "YYYY-MM-DD"),
])
def test_hours_validation(api, hours, problem):
    bad = api.post("/v1/destinations", json={"name": "H", "route": "sip:h@p", "hours": hours})
    assert bad.status_code == 422 and problem in " ".join(bad.get_json()["error"]["fields"]["hours"])


def test_simultaneous_ring(api, twilio):
    make(api, "Team", method="sip_invite", encryption="udp_rtp",
         route=["sip:ann@pbx.example.com", "1002", "+14155550123"], sip_headers=[{"name": "X-Q", "value": "team"}])
    dial = parse(twilio.post("/voice/handoff", call_params(CALL))).find("Dial")
    assert [(noun.tag, noun.text) for noun in dial] == [
        ("Sip", "sip:ann@pbx.example.com?X-Q=team"), ("Sip", "sip:1002@sbc.example.com?X-Q=team"),
        ("Number", "+14155550123")]
    assert handoff(api)["destination"]["route"] == ["sip:ann@pbx.example.com", "1002", "+14155550123"]


def test_simultaneous_ring_limits(api):
    eleven = [f"sip:a{i}@p" for i in range(11)]
    assert api.post("/v1/destinations", json={"name": "A", "method": "sip_invite", "route": eleven}).status_code == 422
    refer = api.post("/v1/destinations", json={"name": "B", "route": ["sip:a@p", "sip:b@p"]})
    assert refer.status_code == 422 and "sip_invite" in refer.get_json()["error"]["fields"]["route"][0]
    bad = api.post("/v1/destinations", json={"name": "C", "method": "sip_invite", "route": ["sip:a@p", "no way"]})
    assert bad.status_code == 422


def handoff(api):
    return latest_handoff(api, CALL)


def test_a_caller_waiting_in_the_flex_queue_never_times_out(api, twilio, services):
    from datetime import timedelta

    make(api, "Flex", method="twilio_flex", route=WORKFLOW)
    parse(twilio.post("/voice/handoff", call_params(CALL)))
    later = services.clock() + timedelta(hours=1)
    services.clock = lambda: later
    from handoff.handoffs import Handoffs

    assert Handoffs(services).expire_due() == 0
    assert handoff(api)["state"] == "transferring"
