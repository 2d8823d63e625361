"""Preview (exactly what a handoff would answer, nothing created) and test calls (Twilio's
REST API faked; the status callback posted as Twilio posts it)."""
import re
from urllib.parse import parse_qs

import pytest
import responses
from rq import SimpleWorker

from app import create_app
from tests.helpers import Api, add_destination, call_params, parse, path

ACCOUNT = "AC" + "0" * 32
CALLS_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Calls.json"
CALL = "CA" + "7" * 32

LEGS = {
    "sip": {},
    "pstn": {"From": "+14155550100", "To": "+14155550199", "SipCallId": None, "SipDomain": None},
    "client": {"From": "client:alice", "To": "+14155550199", "SipCallId": None, "SipDomain": None},
}


def anonymous(twiml: str) -> str:
    """The TwiML without what differs between two runs: the handoff id and the CallSid."""
    return re.sub(r"CA[0-9a-f]{32}", "CA…", re.sub(r"HO[0-9a-f]{32}", "HO…", twiml))


def count(api, what):
    return len(api.get(f"/v1/{what}?limit=500").get_json()["items"])


@pytest.mark.parametrize("leg", sorted(LEGS))
def test_preview_is_what_a_real_handoff_answers(api, twilio, leg):
    add_destination(api, "Billing", route="sip:billing@pbx.example.com",
                    sip_headers=[{"name": "X-Reason", "value": "$reason"},
                                 {"name": "X-Customer", "value": "$customer.id"}])
    params = call_params(CALL, **LEGS[leg])
    body = {"leg": leg, "reason": "refund", "utterance": "One moment.", "from": params["From"], "to": params["To"]}
    preview = api.post("/v1/destinations/billing/preview", json=body)
    assert preview.status_code == 200
    shown = preview.get_json()
    assert count(api, "handoffs") == 0 and count(api, "conversations") == 0  # nothing created

    real = twilio.post("/voice/handoff", {**params, "destination": "billing", "reason": "refund",
                                          "utterance": "One moment."})
    assert anonymous(shown["twiml"]) == anonymous(real.get_data(as_text=True))
    handoff = api.get(f"/v1/conversations/{CALL}").get_json()["handoff"]
    assert shown["sip_headers"] == handoff["sip_headers"] == {"X-Reason": "refund"}
    assert shown["warnings"] == handoff["warnings"]
    assert {w["code"] for w in shown["warnings"]} >= {"missing_variable"}
    if leg != "sip":
        assert "refer_unsupported_leg" in {w["code"] for w in shown["warnings"]}


def test_preview_renders_sample_state_and_refuses_bad_input(api):
    add_destination(api, "Billing", sip_headers=[{"name": "X-Customer", "value": "$customer.id"}])
    shown = api.post("/v1/destinations/billing/preview",
                     json={"leg": "sip", "state": {"customer": {"id": "C-42"}}}).get_json()
    assert shown["sip_headers"] == {"X-Customer": "C-42"} and shown["warnings"] == []
    assert "X-Customer=C-42" in parse(shown["twiml"]).find("Refer/Sip").text
    assert api.post("/v1/destinations/billing/preview", json={"leg": "fax"}).status_code == 422
    assert api.post("/v1/destinations/nope/preview", json={"leg": "sip"}).status_code == 404


@pytest.fixture
def rest():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru(re.compile(r"http://127\.0\.0\.1:\d+"))
        yield mock


def work(services):
    SimpleWorker([services.queue], connection=services.queue.connection).work(burst=True)


@pytest.mark.parametrize("twilio_says, shown", [
    ({"CallStatus": "completed", "CallDuration": "4"}, {"status": "answered", "sip_code": None}),
    ({"CallStatus": "busy", "SipResponseCode": "486"}, {"status": "busy", "sip_code": 486}),
    ({"CallStatus": "no-answer", "SipResponseCode": "487"}, {"status": "no-answer", "sip_code": 487}),
    ({"CallStatus": "failed", "SipResponseCode": "404"}, {"status": "failed", "sip_code": 404}),
])
def test_a_test_call_rings_the_route_and_shows_the_result(api, twilio, services, rest, twilio_says, shown):
    add_destination(api, "Desk", method="sip_invite", route="sip:desk@pbx.example.com;transport=tls")
    rest.add(responses.POST, CALLS_URL, status=201, json={"sid": CALL, "status": "queued"})
    asked = api.post("/v1/destinations/desk/test_call", json={"message": "Testing the desk line."})
    assert asked.status_code == 202 and asked.get_json()["status"] == "queued"
    assert api.get("/v1/destinations/desk").get_json()["last_test"]["status"] == "queued"
    work(services)
    sent = parse_qs(rest.calls[0].request.body)
    assert sent["To"] == ["sip:desk@pbx.example.com;transport=tls;secure=true"]
    assert sent["From"] == ["handoff-test"]
    assert "<Say>Testing the desk line.</Say>" in sent["Twiml"][0]
    assert api.get("/v1/destinations/desk").get_json()["last_test"]["status"] == "calling"

    status_url = sent["StatusCallback"][0]
    callback = {"CallSid": CALL, "AccountSid": ACCOUNT, "From": "handoff-test",
                "To": "sip:desk@pbx.example.com", "Direction": "outbound-api", **twilio_says}
    assert twilio.post(path(status_url), callback).status_code == 200
    assert twilio.post(path(status_url), callback, sign=False).status_code == 403
    last = api.get("/v1/destinations/desk").get_json()["last_test"]
    assert {"status": last["status"], "sip_code": last["sip_code"]} == shown and last["finished_at"]


def test_a_test_call_needs_a_caller_id_for_a_number_and_twilio_credentials(api, config, app):
    add_destination(api, "Mobile", method="sip_invite", route="+14155550123")
    refused = api.post("/v1/destinations/mobile/test_call", json={})
    assert refused.status_code == 422 and "from" in refused.get_json()["error"]["fields"]
    add_destination(api, "Leave", method="sip_bye", route=None)
    assert api.post("/v1/destinations/leave/test_call", json={}).status_code == 422
    without = Api(create_app(config.with_overrides(twilio_account_sid="")).test_client())
    refused = without.post("/v1/destinations/mobile/test_call", json={"from": "+14155550199"})
    assert refused.status_code == 409 and "TWILIO_ACCOUNT_SID" in refused.get_json()["error"]["message"]


def test_twilio_refusing_the_test_call_shows_on_the_card(api, services, rest):
    add_destination(api, "Desk", method="sip_invite", route="sip:desk@pbx.example.com")
    rest.add(responses.POST, CALLS_URL, status=400, json={"code": 21210, "message": "bad from", "status": 400})
    api.post("/v1/destinations/desk/test_call", json={})
    work(services)
    last = api.get("/v1/destinations/desk").get_json()["last_test"]
    assert last["status"] == "failed" and "bad from" in last["detail"]


def test_the_page_preview_reads_sample_state_as_strictly_as_the_api(app, api):
    from tests.test_studio import Studio

    add_destination(api, "Billing", sip_headers=[{"name": "X-Customer", "value": "$customer.id"}])
    studio = Studio(app.test_client())
    page = "/studio/handoffs/billing/preview?leg=sip&state="
    shown = studio.get(page + '{"customer": {"id": "C-42"}}')
    assert shown.status_code == 200 and "X-Customer=C-42" in shown.get_data(as_text=True)
    # Not JSON: NaN (Python's json reads it), and nesting Python's json cannot even parse
    # (a RecursionError, not a ValueError). Both are the field's error, as on the API.
    for state in ('{"customer": {"id": NaN}}', '{"a": ' + "[" * 1500 + "]" * 1500 + "}"):
        refused = studio.get(page + state)
        assert refused.status_code == 422
        assert "Sample state must be a JSON object" in refused.get_data(as_text=True)
