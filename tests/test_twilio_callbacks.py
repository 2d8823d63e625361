"""Twilio's callbacks read exactly as Twilio's pages document them, over real HTTP.

Each test posts the parameters a page names and asserts where the caller goes next (the
TwiML answered) and what the handoff's state and history say.
"""
from urllib.parse import parse_qs

import pytest
import responses

from app import create_app
from handoff import jobs
from tests.helpers import Twilio, call_params, flush, latest_handoff, parse, path, verbs, work
from tests.helpers import add_destination as make

CALL = "CA" + "7" * 32
HUMAN_LEG = "CA" + "8" * 32
PSTN = {"From": "+14155550100", "To": "+14155550199", "SipCallId": None, "SipDomain": None}
CLIENT = {"From": "client:alice", "To": "+14155550199", "SipCallId": None, "SipDomain": None}
TWILIO_CALLS = "https://api.twilio.com/2010-04-01/Accounts/" + "AC" + "0" * 32 + "/Calls/"


@pytest.fixture
def over_http():
    return True


def start(twilio, leg=None, **params):
    return parse(twilio.post("/voice/handoff", {**call_params(CALL, **(leg or {})), **params}))


def outcome(twilio, url, leg=None, **params):
    return parse(twilio.post(path(url), {**call_params(CALL, **(leg or {})), **params}))


def history(api):
    return [(h["state"], h["detail"]) for h in latest_handoff(api, CALL)["history"]]



# -- <Dial>: https://www.twilio.com/docs/voice/twiml/dial (action parameters) -----------

def test_a_screened_leg_that_never_bridged_fails_as_not_bridged_and_the_chain_goes_on(api, twilio):
    make(api, "Reception")  # the default, tried last
    make(api, "Night", method="sip_invite", encryption="udp_rtp")
    make(api, "Team", method="sip_invite", transfer_mode="warm_message", encryption="udp_rtp", fallback="night")
    dial = start(twilio, destination="team").find("Dial")
    # The human hung up during the whisper: Dial page, "DialBridged: whether or not the
    # dialing call has been connected to the dialed destination".
    root = outcome(twilio, dial.get("action"), DialCallStatus="completed", DialBridged="false",
                   DialCallSid=HUMAN_LEG, DialCallDuration="4")
    assert root.find("Dial/Sip").text == "sip:night@pbx.example.com"  # the fallback, not a hangup
    failed = history(api)[2][1]["after"]
    assert failed["destination"] == "team" and failed["result"] == "not_bridged"
    root = outcome(twilio, root.find("Dial").get("action"), DialCallStatus="completed", DialBridged="false")
    assert root.find("Refer/Sip").text == "sip:reception@pbx.example.com"  # then the default
    assert latest_handoff(api, CALL)["state"] == "transferring"


def test_a_bridged_dial_completes(api, twilio):
    make(api, "Team", method="sip_invite", transfer_mode="warm_message", encryption="udp_rtp")
    dial = start(twilio).find("Dial")
    assert verbs(outcome(twilio, dial.get("action"), DialCallStatus="completed", DialBridged="true",
                         DialCallDuration="95")) == ["Hangup"]
    assert [s for s, _ in history(api)] == ["requested", "transferring", "connected", "completed"]


def test_canceled_alone_is_a_rest_cancellation_and_the_caller_leaving_is_abandoned(api, twilio):
    make(api, "Reception")
    make(api, "Team", method="sip_invite", encryption="udp_rtp")
    dial = start(twilio, destination="team").find("Dial")
    # Dial page: canceled is "The call was canceled via the REST API before it was
    # answered"; the caller is still on the line (CallStatus in-progress).
    root = outcome(twilio, dial.get("action"), DialCallStatus="canceled")
    assert root.find("Refer/Sip").text == "sip:reception@pbx.example.com"
    assert history(api)[-1][1]["after"]["result"] == "canceled"
    # The caller hanging up while it rings: the parent call itself is completed.
    twilio.post("/voice/call", call_params("CA" + "9" * 32))
    other = parse(twilio.post("/voice/handoff", call_params("CA" + "9" * 32, destination="team")))
    root = parse(twilio.post(path(other.find("Dial").get("action")),
                             call_params("CA" + "9" * 32, CallStatus="completed", DialCallStatus="no-answer")))
    assert verbs(root) == ["Hangup"]
    assert latest_handoff(api, "CA" + "9" * 32)["state"] == "abandoned"


# -- <Refer>: https://www.twilio.com/docs/voice/twiml/refer (action parameters) ---------

def test_an_accepted_refer_without_notify_completes_unconfirmed(api, twilio):
    make(api, "Reception")
    make(api, "Billing")
    refer = start(twilio, destination="billing").find("Refer")
    # Refer page: ReferCallStatus "will be omitted" when the far end sends no NOTIFY; the
    # SBC answered 202 and took the call, so Twilio's leg is completed.
    root = outcome(twilio, refer.get("action"), CallStatus="completed", ReferSipResponseCode="202")
    assert verbs(root) == ["Hangup"]
    states = history(api)
    assert [s for s, _ in states] == ["requested", "transferring", "connected", "completed"]
    assert states[2][1]["unconfirmed"] is True and states[2][1]["result"] == "unconfirmed"
    assert states[2][1]["sip_code"] == 202


@pytest.mark.parametrize("code, result", [("202", "no_notify"), ("603", "refused")])
def test_a_refer_that_left_the_caller_on_twilio_fails_and_the_chain_goes_on(api, twilio, code, result):
    # Accepted with no NOTIFY while Twilio still has the caller, or refused outright.
    make(api, "Reception")
    make(api, "Billing")
    refer = start(twilio, destination="billing").find("Refer")
    root = outcome(twilio, refer.get("action"), CallStatus="in-progress", ReferSipResponseCode=code)
    assert root.find("Refer/Sip").text == "sip:reception@pbx.example.com"
    after = history(api)[-1][1]["after"]
    assert after["result"] == result and after["sip_code"] == int(code)


# -- <Hangup> as a SIP BYE: only a SIP leg has an SBC to go back to ---------------------

@pytest.mark.parametrize("leg", [PSTN, CLIENT], ids=["pstn", "client"])
def test_bye_on_a_caller_that_is_not_a_sip_leg_is_a_failed_attempt_not_a_hangup(api, twilio, leg):
    make(api, "Reception", method="sip_invite", route="+14155550123", caller_id="+14155550199")
    make(api, "Back to SBC", method="sip_bye")
    root = start(twilio, leg, destination="back-to-sbc", utterance="One moment.")
    assert verbs(root) == ["Say", "Dial"] and root.find("Dial/Number").text == "+14155550123"
    record = latest_handoff(api, CALL)
    assert "bye_unsupported_leg" in [w["code"] for w in record["warnings"]]
    assert record["history"][-1]["detail"]["after"]["result"] == "bye_unsupported_leg"


def test_bye_on_a_sip_leg_still_hangs_up_toward_the_sbc(api, twilio):
    make(api, "Back to SBC", method="sip_bye")
    assert verbs(start(twilio)) == ["Hangup"]


# -- Voicemail detection on the human's leg -----------------------------------------------
# Number and Sip pages: machineDetection with amdStatusCallback; without the callback
# Twilio has nowhere to send the result (warning 21262). AMD page: AnsweredBy values.

@responses.activate
def test_a_machine_on_the_human_leg_is_hung_up_and_the_caller_goes_on(app, api, twilio):
    responses.add_passthru("http://127.0.0.1")
    responses.add(responses.POST, TWILIO_CALLS + HUMAN_LEG + ".json", json={"sid": HUMAN_LEG, "status": "completed"})
    make(api, "Reception")
    make(api, "Team", method="sip_invite", encryption="udp_rtp", detect_voicemail=True)
    sip = start(twilio, destination="team").find("Dial/Sip")
    assert sip.get("machineDetection") == "Enable"
    amd_url = sip.get("amdStatusCallback")
    assert amd_url and "/amd?attempt=1" in amd_url and sip.get("amdStatusCallbackMethod") == "POST"
    assert twilio.post(path(amd_url), {"CallSid": HUMAN_LEG}, sign=False).status_code == 403
    answered = twilio.post(path(amd_url), {"CallSid": HUMAN_LEG, "AccountSid": "AC" + "0" * 32,
                                           "AnsweredBy": "machine_end_beep", "MachineDetectionDuration": "2100"})
    assert answered.status_code == 200 and verbs(parse(answered)) == []
    work(app)  # the worker ends the human's leg over Twilio's REST API
    ended = [c for c in responses.calls if c.request.url.startswith(TWILIO_CALLS)]
    assert len(ended) == 1 and parse_qs(ended[0].request.body) == {"Status": ["completed"]}
    # Ending that leg returns the caller's <Dial>: its action moves them on.
    root = outcome(twilio, start_action(api, twilio), DialCallStatus="completed", DialBridged="true")
    assert root.find("Refer/Sip").text == "sip:reception@pbx.example.com"
    assert history(api)[-1][1]["after"]["result"] == "voicemail"


def start_action(api, twilio):
    record = latest_handoff(api, CALL)
    return f"{twilio.base}/voice/handoff/{record['id']}/status?attempt=1&tried=team"


@responses.activate
def test_a_person_on_the_human_leg_changes_nothing(app, api, twilio):
    responses.add_passthru("http://127.0.0.1")
    make(api, "Team", method="sip_invite", encryption="udp_rtp", detect_voicemail=True)
    sip = start(twilio).find("Dial/Sip")
    twilio.post(path(sip.get("amdStatusCallback")), {"CallSid": HUMAN_LEG, "AnsweredBy": "human"})
    work(app)
    assert not [c for c in responses.calls if c.request.url.startswith(TWILIO_CALLS)]
    root = outcome(twilio, start_action(api, twilio),
                   DialCallStatus="completed", DialBridged="true")
    assert verbs(root) == ["Hangup"] and latest_handoff(api, CALL)["state"] == "completed"


# -- Destinations the first leg that connects would break ---------------------------------

@pytest.mark.parametrize("fields, field", [
    ({"transfer_mode": "warm_accept"}, "transfer_mode"),
    ({"transfer_mode": "warm_message"}, "transfer_mode"),
    ({"detect_voicemail": True}, "detect_voicemail"),
])
def test_simultaneous_ring_with_screening_or_amd_is_refused(api, fields, field):
    # Sip and Number pages: "the first call to pick up is connected to the current call and
    # the rest are hung up": a voicemail answering first would cancel every human.
    body = {"name": "Ring", "method": "sip_invite", "encryption": "udp_rtp",
            "route": ["sip:a@pbx.example.com", "sip:b@pbx.example.com"], **fields}
    refused = api.post("/v1/destinations", json=body)
    assert refused.status_code == 422 and field in refused.get_json()["error"]["fields"]
    created = make(api, "Ring", method="sip_invite", encryption="udp_rtp", route=body["route"])
    patched = api.patch(f"/v1/destinations/{created['id']}", json=fields)
    assert patched.status_code == 422 and field in patched.get_json()["error"]["fields"]


def test_srtp_over_clear_text_signalling_is_refused(api):
    # Secure Media page: secure=true goes with transport=tls; over UDP the keys are in clear.
    body = {"name": "Clear", "method": "sip_invite", "route": "sip:desk@pbx.example.com;transport=udp"}
    refused = api.post("/v1/destinations", json=body)
    assert refused.status_code == 422 and "transport=udp" in refused.get_json()["error"]["fields"]["encryption"][0]
    assert api.post("/v1/destinations", json={**body, "encryption": "udp_rtp"}).status_code == 201
    tls = api.post("/v1/destinations", json={**body, "name": "Tls", "route": "sip:desk@pbx.example.com;transport=tls"})
    assert tls.status_code == 201


# -- Caller ID on <Dial> (Dial page, callerId; errors 13214 and 13227) ---------------------

def test_caller_id_templates_onto_dial(api, twilio):
    make(api, "Mobile", method="sip_invite", route="+14155550123", caller_id="$called_number")
    dial = start(twilio).find("Dial")
    assert dial.get("callerId") == "+14155550199"  # the number the caller dialled (a Twilio number)
    assert "caller_id_missing" not in [w["code"] for w in latest_handoff(api, CALL)["warnings"]]


def test_without_a_caller_id_a_sip_caller_to_a_number_is_warned(api, twilio):
    created = make(api, "Mobile", method="sip_invite", route="+14155550123")
    assert [w["code"] for w in created["warnings"]] == ["caller_id_missing"]
    dial = start(twilio).find("Dial")
    assert dial.get("callerId") is None
    assert "caller_id_missing" in [w["code"] for w in latest_handoff(api, CALL)["warnings"]]


def test_default_caller_id_fills_in(config, valkey, client_of):
    from tests.helpers import Api

    flush(valkey.url)
    app = create_app(config.with_overrides(default_caller_id="+14155550177"))
    jobs.use(app.extensions["handoff"])
    try:
        api, twilio = Api(client_of(app)), Twilio(client_of(app))
        created = make(api, "Mobile", method="sip_invite", route="+14155550123")
        assert created["warnings"] == []
        assert start(twilio).find("Dial").get("callerId") == "+14155550177"
    finally:
        jobs.use(None)


@pytest.mark.parametrize("value", ["4155550100", "+1 415 555 0100", "$", "caller $caller_id"])
def test_a_caller_id_must_be_a_number_or_a_template(api, value):
    refused = api.post("/v1/destinations", json={"name": "M", "method": "sip_invite", "route": "+14155550123",
                                                  "caller_id": value})
    assert refused.status_code == 422 and "caller_id" in refused.get_json()["error"]["fields"]


# -- ConversationRelay's action after the service moved the call itself ---------------------

@responses.activate
def test_the_agent_session_ending_because_the_service_moved_the_call_starts_no_second_handoff(
        app, config, api, twilio):
    responses.add_passthru("http://127.0.0.1")
    responses.add(responses.POST, TWILIO_CALLS + CALL + ".json", json={"sid": CALL, "status": "in-progress"})
    make(api, "Billing")
    make(api, "Sales")
    twilio.post("/voice/call", call_params(CALL))
    created = api.post(f"/v1/conversations/{CALL}/handoff", json={"destination": "sales", "reason": "upgrade"})
    assert created.status_code == 201
    # Connect page: the action is requested "when the <Connect> verb ends", which the REST
    # update moving the call does. Before the worker has run, the answer is the handoff's.
    root = parse(twilio.post("/voice/agent/ended", call_params(CALL)))
    assert root.find("Refer/Sip").text == "sip:sales@pbx.example.com"
    work(app)  # the worker's redirect now finds the handoff under way: no second transfer
    assert not [c for c in responses.calls if c.request.url.startswith(TWILIO_CALLS)]
    handoffs = api.get("/v1/handoffs").get_json()["items"]
    assert len(handoffs) == 1 and handoffs[0]["state"] == "transferring"
    assert [s for s, _ in history(api)] == ["requested", "transferring"]


# -- Signatures behind a proxy that strips a path prefix ------------------------------------

def test_signatures_use_the_forwarded_prefix(config, valkey, client_of):
    # Twilio signs the URL it requested (https://www.twilio.com/docs/usage/security): behind
    # a router that strips /handoff, that URL carries the prefix the service never sees.
    app = create_app(config.with_overrides(public_base_url=None))
    client = client_of(app)
    proxy = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "calls.example.com", "X-Forwarded-Prefix": "/handoff"}
    good = Twilio(client, base="https://calls.example.com/handoff")
    answered = good.post("/voice/call", call_params(CALL), headers=proxy)
    assert answered.status_code == 200 and verbs(parse(answered))
    unprefixed = Twilio(client, base="https://calls.example.com")
    assert unprefixed.post("/voice/call", call_params(CALL), headers=proxy).status_code == 403
