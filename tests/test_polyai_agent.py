"""Agent code written for PolyAI, with PolyAI's documented idioms only (its "Conversation
object" and "Return values" pages), running against this service."""
from urllib.parse import unquote_plus

import pytest
import responses
from rq import SimpleWorker

import handoff
from handoff import Conversation
from handoff.services import Services
from tests.helpers import API_KEY, call_params, parse
from tests.polyai_schemas import check

BASE = "/v1/ACCOUNT-1/PROJECT-1"
KEY = {"x-api-key": API_KEY}
CALL = "CA" + "7" * 32
TWILIO_CALL_URL = f"https://api.twilio.com/2010-04-01/Accounts/{'AC' + '0' * 32}/Calls/{CALL}.json"


@pytest.fixture
def configured(api):
    api.post("/v1/destinations", json={"name": "BillingQueue", "route": "sip:billing@pbx.example.com",
                                        "sip_headers": [{"name": "X-Customer-ID", "value": "$customer_id"}]})
    api.post("/v1/destinations", json={"name": "escalation_handoff", "method": "sip_invite",
                                        "route": "sip:desk@pbx.example.com;transport=tls"})
    api.post("/v1/destinations", json={"name": "end_call", "method": "sip_bye"})


# -- agent functions, as written for PolyAI ----------------------------------------------
def start_function(conv):
    if shared_id := conv.integration_attributes.get("shared_id"):
        conv.state.shared_id = shared_id
    conv.state["attempts"] = conv.state.get("attempts", 0) + 1
    if not conv.state.get("is_verified"):
        conv.state.original_topic = "check_account_balance"
    if conv.channel_type == "webchat.polyai":
        conv.log.info("Chat started", channel=conv.channel_type)


def verify_customer(conv, customer_id):
    conv.state.customer_id = customer_id
    conv.state.is_verified = True
    conv.log.info("Validated inputs", validation_passed=True)
    conv.write_metric("agent_handoff", 1)
    conv.write_metric("call_outcome", "verified", write_once=True)
    conv.write_metric("call_outcome", "resolved", write_once=True)
    conv.state.handoff = {"customer_id": customer_id, "handoff_reason": "successfully_identified"}
    conv.state.handoff["tier"] = "gold"


def transfer_to_billing(conv):
    conv.log.warning("Transferring", customer_id=conv.state.customer_id)
    return conv.call_handoff(destination="BillingQueue", reason="policy_violation",
                             utterance="Let me transfer you to a specialist who can help.",
                             sip_headers={"X-Verified": "true"})


def test_polyai_agent_functions_run_unchanged(app, client_of, api, configured):
    client = client_of(app)
    created = client.post(f"{BASE}/chat/create", headers=KEY, json={
        "integration_attributes": {"shared_id": "web-9", "source": "mobile_app"}})
    conv = Conversation(check("chat/create", created)["conversation_id"], services=app.extensions["handoff"])

    assert conv.state.customer_id is None and conv.state.get("customer_id") is None
    with pytest.raises(KeyError):
        conv.state["customer_id"]
    start_function(conv)
    verify_customer(conv, "12345")
    handoff_record = transfer_to_billing(conv)
    conv.log("plain text still works")

    assert handoff_record["state"] == "pending" and handoff_record["destination"]["name"] == "BillingQueue"
    assert handoff_record["sip_headers"] == {"X-Customer-ID": "12345", "X-Verified": "true"}
    again = Conversation(conv.id, services=app.extensions["handoff"])  # what was stored, read afresh
    assert again.state.shared_id == "web-9" and again.state["attempts"] == 1
    assert again.state.original_topic == "check_account_balance" and again.state.is_verified is True
    assert again.integration_attributes == {"shared_id": "web-9", "source": "mobile_app"}
    assert again.caller_number is None and again.channel_type == "webchat.polyai"

    stored = api.get(f"/v1/conversations/{conv.id}").get_json()
    assert [(e["level"], e["message"], e.get("fields")) for e in stored["log"]] == [
        ("info", "Chat started", {"channel": "webchat.polyai"}),
        ("info", "Validated inputs", {"validation_passed": True}),
        ("warning", "Transferring", {"customer_id": "12345"}),
        ("info", "plain text still works", None)]
    assert [(m["name"], m["value"]) for m in stored["metrics"]] == [("agent_handoff", 1), ("call_outcome", "verified")]

    # conv.state.handoff is what a connector reads from handoff_state.
    state = check("handoff_state", client.get(f"{BASE}/handoff_state?shared_id=web-9", headers=KEY))
    assert state["data"] == {"customer_id": "12345", "handoff_reason": "successfully_identified",
                             "tier": "gold", "handoff_to": "BillingQueue", "handoff_state": "handoff_initiated"}


def test_a_route_override_only_within_allowed_route_patterns(app, api, config, configured):
    conv = Conversation.create(channel="webchat", services=app.extensions["handoff"])
    with pytest.raises(handoff.errors.ValidationFailed):
        conv.call_handoff(destination="BillingQueue", route="+15551234567")
    allowed = Services(config.with_overrides(allowed_route_patterns=("+1555*",)))
    record = Conversation(conv.id, services=allowed).call_handoff(destination="BillingQueue", route="+15551234567")
    assert record["state"] == "pending"
    assert "route_refused" not in {w["code"] for w in record["warnings"]}
    # Header names are stricter than PolyAI's: what Twilio accepts on a SIP URI (X-, no "_").
    with pytest.raises(handoff.errors.ValidationFailed):
        handoff.from_polyai_return(conv, {"handoff": {"reason": "r", "bye": {"sip_headers": {"X-A_B": "1"}}}})


def sent_twiml():
    body = dict(x.split("=", 1) for x in responses.calls[-1].request.body.split("&"))
    return parse(unquote_plus(body["Twiml"]))


@responses.activate
@pytest.mark.parametrize("returned, verb, target", [
    ({"handoff": {"type": "BillingQueue", "reason": "SPEAK_TO", "refer": {"phone_number": "+15551234567"}}},
     "Refer/Sip", "sip:+15551234567@sbc.example.com"),
    ({"handoff": {"reason": "SPEAK_TO", "invite": {
        "phone_number": "2222222", "outbound_endpoint": "pbx.example.com",
        "sip_headers": {"X-Any-Header-Name": "header"}}}},
     "Dial/Sip", "sip:2222222@pbx.example.com;transport=tls;secure=true?X-Any-Header-Name=header"),
    ({"handoff": {"reason": "CONTAINED", "bye": {"sip_headers": {"X-Outcome": "contained"}}}}, "Hangup", None),
])
def test_polyai_return_values_start_the_same_handoff(app, twilio, config, configured, returned, verb, target):
    responses.add(responses.POST, TWILIO_CALL_URL, json={"sid": CALL, "status": "in-progress"})
    twilio.post("/voice/call", call_params(CALL))
    services = Services(config.with_overrides(allowed_route_patterns=("+1555*", "sip:*@pbx.example.com")))
    conv = Conversation(CALL, services=services)
    record = handoff.from_polyai_return(conv, returned)
    assert record["reason"] == returned["handoff"]["reason"]
    assert "route_refused" not in {w["code"] for w in record["warnings"]}
    SimpleWorker([services.queue], connection=services.queue.connection).work(burst=True)
    root = sent_twiml()
    found = root.find(verb)
    assert found is not None, root
    if target:
        assert found.text == target


@responses.activate
def test_polyai_hangup_return_ends_the_call(app, twilio, configured):
    responses.add(responses.POST, TWILIO_CALL_URL, json={"sid": CALL, "status": "completed"})
    twilio.post("/voice/call", call_params(CALL))
    services = app.extensions["handoff"]
    conv = Conversation(CALL, services=services)
    assert handoff.from_polyai_return(conv, {"hangup": True}) is None
    assert handoff.from_polyai_return(conv, "Tell the user you cannot help") is None
    SimpleWorker([services.queue], connection=services.queue.connection).work(burst=True)
    assert responses.calls[-1].request.body == "Status=completed"
