"""What Twilio sees from the voice webhooks in the cases an audit against Twilio's pages
found wrong: a caller ID Twilio would refuse, and webhook deliveries that were answered
from the wrong stored answer or created a second transfer.

Each test posts what Twilio posts and asserts the TwiML the caller gets and the handoffs
recorded.
"""
import pytest

from app import create_app
from handoff import jobs
from tests import test_consult as consult
from tests import test_outbound as outbound
from tests.helpers import Api, Twilio, call_params, flush, latest_handoff, parse, path, work
from tests.helpers import add_destination as make

CALL = consult.CALL
PSTN = {"From": "+14155550100", "To": "+14155550199", "SipCallId": None, "SipDomain": None}
rest = consult.rest  # Twilio's REST API, faked (tests/test_consult.py)


@pytest.fixture
def with_default_caller_id(config, valkey, client_of):
    """The app with DEFAULT_CALLER_ID set: (api, twilio)."""
    flush(valkey.url)
    app = create_app(config.with_overrides(default_caller_id="+14155550177"))
    jobs.use(app.extensions["handoff"])
    yield Api(client_of(app)), Twilio(client_of(app))
    jobs.use(None)


def warning_codes(api, call_sid=CALL):
    return [w["code"] for w in latest_handoff(api, call_sid)["warnings"]]


# -- <Dial callerId> ------------------------------------------------------------------------
# Dial page (https://www.twilio.com/docs/voice/twiml/dial, callerId): toward a phone number
# the caller ID is a phone number. Sip page (https://www.twilio.com/docs/voice/twiml/sip): "For
# SIP calls, the callerId attribute does not need to be a validated phone number. Enter any
# alphanumeric string. Optionally include the following chars: +-_., but no whitespace." Error 13214 (https://www.twilio.com/docs/api/errors/13214):
# "Carriers may send invalid Caller IDs on Incoming calls… your application should recognize
# invalid caller IDs, and substitute them with a valid Caller ID to construct the subsequent
# <Dial>." A template such as $caller_id renders whatever the call carried.

@pytest.mark.parametrize("leg", [
    {**PSTN, "From": "anonymous", "Caller": "anonymous"},  # caller ID withheld (twiml page, From)
    {"From": "sip:alice@sbc.example.com"},  # a SIP user, not a number
], ids=["withheld", "sip-user"])
def test_a_caller_id_template_that_renders_no_number_gives_way_to_the_default(with_default_caller_id, leg):
    api, twilio = with_default_caller_id
    make(api, "Mobile", method="sip_invite", route="+14155550123", caller_id="$caller_id")
    dial = parse(twilio.post("/voice/handoff", call_params(CALL, **leg))).find("Dial")
    assert dial.get("callerId") == "+14155550177"
    assert "caller_id_unusable" in warning_codes(api)


def test_without_a_default_an_unusable_caller_id_is_left_out_and_said(api, twilio):
    make(api, "Mobile", method="sip_invite", route="+14155550123", caller_id="$caller_id")
    dial = parse(twilio.post("/voice/handoff", call_params(CALL, From="sip:alice@sbc.example.com"))).find("Dial")
    assert dial.get("callerId") is None
    assert {"caller_id_unusable", "caller_id_missing"} <= set(warning_codes(api))


def test_toward_a_sip_target_any_token_is_a_caller_id_but_not_one_with_spaces(api, twilio):
    make(api, "Desk", method="sip_invite", encryption="udp_rtp", route="sip:desk@pbx.example.com",
         caller_id="$caller_id")
    dial = parse(twilio.post("/voice/handoff", call_params(CALL, From="sip:alice@sbc.example.com"))).find("Dial")
    assert dial.get("callerId") == "alice" and "caller_id_unusable" not in warning_codes(api)
    other = "CA" + "4" * 32
    make(api, "Named", method="sip_invite", encryption="udp_rtp", route="sip:named@pbx.example.com",
         caller_id="$customer.name")
    twilio.post("/voice/call", call_params(other))
    api.patch(f"/v1/conversations/{other}", json={"state": {"customer": {"name": "Ann Lee"}}})
    dial = parse(twilio.post("/voice/handoff", call_params(other, destination="named"))).find("Dial")
    assert dial.get("callerId") is None and "caller_id_unusable" in warning_codes(api, other)


def test_a_caller_id_template_that_renders_a_number_is_kept(with_default_caller_id):
    api, twilio = with_default_caller_id
    make(api, "Mobile", method="sip_invite", route="+14155550123", caller_id="$called_number")
    dial = parse(twilio.post("/voice/handoff", call_params(CALL, **PSTN))).find("Dial")
    assert dial.get("callerId") == "+14155550199" and "caller_id_unusable" not in warning_codes(api)


def test_a_consult_call_to_a_number_is_placed_from_a_number(api, twilio, rest, app):
    # Calls resource (https://www.twilio.com/docs/voice/api/call-resource, From): calling a
    # phone number, From must be a phone number (a Twilio or verified one). The SIP caller's
    # user name is not: the number the caller called is used instead.
    make(api, "Expert", method="sip_invite", transfer_mode="consult", route="+14155550111",
         caller_id="$caller_id")
    leg = {"From": "sip:alice@sbc.example.com", "To": "sip:+14155550199@handoff.sip.twilio.com"}
    twilio.post("/voice/call", call_params(CALL, **leg))
    conference = parse(twilio.post("/voice/handoff", call_params(CALL, **leg))).find("Dial/Conference")
    consult.conference_event(twilio, conference.get("statusCallback"), "participant-join", CALL, 1,
                             room=conference.text)
    consult.expect_human_call(rest)
    work(app)
    assert consult.sent(rest)[0][2]["From"] == "+14155550199"


# -- Deliveries answered once, and each its own ------------------------------------------------
# Connection overrides (https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides):
# Twilio retries a webhook (`rc`, `rp`) and "retries carry the header I-Twilio-Idempotency-Token",
# the same token as the first delivery.

def test_a_retried_fallback_request_starts_one_transfer(api, twilio):
    make(api, "Billing")
    retry = {"I-Twilio-Idempotency-Token": "fallback-token-1"}
    params = call_params(CALL, ErrorCode="11200", ErrorUrl="https://handoff.example.com/voice/call")
    first = twilio.post("/voice/fallback", params, headers=retry).get_data(as_text=True)
    again = twilio.post("/voice/fallback", params, headers=retry).get_data(as_text=True)
    assert again == first and parse(first).find("Refer/Sip").text == "sip:billing@pbx.example.com"
    assert len(api.get("/v1/handoffs").get_json()["items"]) == 1


def test_a_second_agent_session_ending_hands_off_anew_not_with_the_first_answer(api, twilio):
    # The caller came back to the agent (a TwiML AGENT_URL that connects ConversationRelay
    # with this action again, e.g. after on_failure return_to_agent) and the new session
    # asks for another destination: it is a new request, not a retry of the first.
    make(api, "Billing")
    make(api, "Sales")
    twilio.post("/voice/call", call_params(CALL))
    first = parse(twilio.post("/voice/agent/ended", call_params(CALL, HandoffData='{"destination": "billing"}'),
                              headers={"I-Twilio-Idempotency-Token": "session-1"}))
    assert first.find("Refer/Sip").text == "sip:billing@pbx.example.com"
    twilio.post(path(first.find("Refer").get("action")), call_params(CALL, CallStatus="in-progress",
                                                                         ReferCallStatus="in-progress",
                                                                         ReferSipResponseCode="202"))
    assert latest_handoff(api, CALL)["state"] == "connected"
    second = parse(twilio.post("/voice/agent/ended", call_params(CALL, HandoffData='{"destination": "sales"}'),
                               headers={"I-Twilio-Idempotency-Token": "session-2"}))
    assert second.find("Refer/Sip").text == "sip:sales@pbx.example.com"
    assert latest_handoff(api, CALL)["destination"]["id"] == "sales"
    retried = parse(twilio.post("/voice/agent/ended", call_params(CALL, HandoffData='{"destination": "sales"}'),
                                headers={"I-Twilio-Idempotency-Token": "session-2"}))
    assert retried.find("Refer").get("action") == second.find("Refer").get("action")
    assert len(api.get("/v1/handoffs").get_json()["items"]) == 2


def test_a_retried_outbound_answer_greets_once(api, twilio, rest):
    # An outbound call placed through the API is answered at /voice/outbound; a retry of that
    # request (same token) is the same greeting, not a second one in the transcript.
    outbound.place(api, rest)
    retry = {"I-Twilio-Idempotency-Token": "outbound-token-1"}
    first = twilio.post("/voice/outbound", outbound.outbound_call_params(), headers=retry).get_data(as_text=True)
    again = twilio.post("/voice/outbound", outbound.outbound_call_params(), headers=retry).get_data(as_text=True)
    assert again == first and parse(first).find("Gather") is not None
    transcript = api.get(f"/v1/conversations/{outbound.CALL}").get_json()["transcript"]
    assert [t["role"] for t in transcript] == ["agent"]
