"""Outbound calls: Twilio places them with answering-machine detection; every outcome routes."""
import re
from urllib.parse import parse_qs

import pytest
import responses

from app import create_app
from tests.helpers import API_KEY, BASE_URL, call_params, parse, verbs, work


@pytest.fixture
def over_http():
    """These stories go over real HTTP (a threaded server on loopback)."""
    return True

ACCOUNT = "AC" + "0" * 32
CALL = "CA" + "4" * 32
CALLS_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Calls.json"
CALL_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL}.json"


@pytest.fixture
def rest():
    """Twilio's REST API, faked; the tests' own HTTP to the service on loopback passes through."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru(re.compile(r"http://127\.0\.0\.1:\d+"))
        yield mock



def place(api, rest, **extra):
    rest.add(responses.POST, CALLS_URL, status=201, json={"sid": CALL, "status": "queued"})
    body = {"to": "+14155550123", "from": "+14155550199", "shared_id": "campaign-1",
            "state": {"offer": "renewal"}, **extra}
    created = api.post("/v1/calls", json=body)
    assert created.status_code == 201, created.get_json()
    return created.get_json()


def outbound_call_params(**extra):
    return call_params(CALL, From="+14155550199", To="+14155550123", SipCallId=None, SipDomain=None,
                       Direction="outbound-api", **extra)


def test_placing_a_call_asks_twilio_for_async_amd(api, rest):
    conversation = place(api, rest)
    assert conversation["id"] == CALL and conversation["classification"] is None
    assert conversation["state"] == {"offer": "renewal"} and conversation["shared_id"] == "campaign-1"
    sent = parse_qs(rest.calls[0].request.body)
    assert sent["MachineDetection"] == ["DetectMessageEnd"] and sent["AsyncAmd"] == ["true"]
    assert sent["AsyncAmdStatusCallback"] == [f"{BASE_URL}/voice/amd"]
    assert sent["Url"] == [f"{BASE_URL}/voice/outbound"] and sent["StatusCallback"] == [f"{BASE_URL}/voice/status"]


def test_twilio_refusing_the_number_is_a_validation_error(api, rest):
    rest.add(responses.POST, CALLS_URL, status=400, json={
        "code": 21217, "message": "Phone number is not a valid phone number", "status": 400})
    refused = api.post("/v1/calls", json={"to": "+14155550123", "from": "+14155550199"})
    assert refused.status_code == 422 and "21217" in refused.get_json()["error"]["fields"]["to"][0]
    assert api.post("/v1/calls", json={"to": "1001", "from": "+1"}).status_code == 422


def test_human_goes_to_the_agent(api, twilio, rest):
    place(api, rest, agent_url="https://agent.example.com/outbound")
    answered = parse(twilio.post("/voice/outbound", outbound_call_params()))
    assert verbs(answered) == ["Redirect"] and answered.find("Redirect").text == "https://agent.example.com/outbound"
    twilio.post("/voice/amd", {**outbound_call_params(), "AnsweredBy": "human"})
    assert api.get(f"/v1/conversations/{CALL}").get_json()["classification"] == "human"


def test_without_an_agent_the_router_greets_the_human(api, twilio, rest):
    place(api, rest)
    assert verbs(parse(twilio.post("/voice/outbound", outbound_call_params()))) == ["Gather", "Redirect"]


def test_voicemail_gets_the_message_after_the_beep(api, twilio, app, rest):
    place(api, rest, on_voicemail={"action": "message", "message": "Hi, this is Acme about your renewal."})
    rest.add(responses.POST, CALL_URL, json={"sid": CALL})
    twilio.post("/voice/amd", {**outbound_call_params(), "AnsweredBy": "machine_end_beep"})
    work(app)
    assert api.get(f"/v1/conversations/{CALL}").get_json()["classification"] == "voicemail"
    update = parse_qs(rest.calls[-1].request.body)
    root = parse(update["Twiml"][0])
    assert verbs(root) == ["Say", "Hangup"] and root.find("Say").text == "Hi, this is Acme about your renewal."


@pytest.mark.parametrize("worker_between", [True, False])
def test_a_retried_amd_callback_leaves_the_message_once(api, twilio, app, rest, worker_between):
    """Twilio may deliver a callback again (retries carry I-Twilio-Idempotency-Token:
    https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides); a second
    update would restart the message on the voicemail box, which records it garbled."""
    place(api, rest, on_voicemail={"action": "message", "message": "Hi, this is Acme about your renewal."})
    rest.add(responses.POST, CALL_URL, json={"sid": CALL})
    callback = {**outbound_call_params(), "AnsweredBy": "machine_end_beep"}
    retry = {"I-Twilio-Idempotency-Token": "amd-token-1"}
    twilio.post("/voice/amd", callback, headers=retry)
    if worker_between:
        work(app)
    twilio.post("/voice/amd", callback, headers=retry)
    work(app)
    assert [c.request.url for c in rest.calls].count(CALL_URL) == 1


@pytest.mark.parametrize("answered_by, classification", [("machine_start", "voicemail"), ("fax", "fax")])
def test_voicemail_without_message_and_fax_are_hung_up(api, twilio, app, answered_by, classification, rest):
    place(api, rest)
    rest.add(responses.POST, CALL_URL, json={"sid": CALL, "status": "completed"})
    twilio.post("/voice/amd", {**outbound_call_params(), "AnsweredBy": answered_by})
    work(app)
    assert api.get(f"/v1/conversations/{CALL}").get_json()["classification"] == classification
    assert parse_qs(rest.calls[-1].request.body) == {"Status": ["completed"]}


def test_unknown_is_left_with_whoever_answered(api, twilio, app, rest):
    place(api, rest)
    twilio.post("/voice/amd", {**outbound_call_params(), "AnsweredBy": "unknown"})
    work(app)
    assert api.get(f"/v1/conversations/{CALL}").get_json()["classification"] == "unknown"
    assert len(rest.calls) == 1  # only the create: nothing to redirect


def test_a_number_not_in_service_ends_and_is_recorded(api, twilio, rest):
    place(api, rest)
    twilio.post("/voice/status", {**outbound_call_params(), "CallStatus": "failed", "SipResponseCode": "404"})
    conversation = api.get(f"/v1/conversations/{CALL}").get_json()
    assert conversation["classification"] == "not_in_service" and conversation["ended_at"]


def test_amd_callback_must_be_signed(twilio):
    assert twilio.post("/voice/amd", {"CallSid": CALL, "AnsweredBy": "human"}, sign=False).status_code == 403


def test_placing_a_call_without_twilio_credentials_is_a_conflict_not_a_retry(config, client_of):
    """No retry mends a missing TWILIO_ACCOUNT_SID: a 409 naming it, as a test call answers,
    not a 503 "try again shortly"."""
    client = client_of(create_app(config.with_overrides(twilio_account_sid="")))
    refused = client.post("/v1/calls", json={"to": "+14155550123", "from": "+14155550199"},
                          headers={"Authorization": f"Bearer {API_KEY}"})
    assert refused.status_code == 409 and "TWILIO_ACCOUNT_SID" in refused.get_json()["error"]["message"]
