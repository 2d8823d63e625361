"""How the worker and the API read Twilio's REST errors: what is worth another try and what
is final, as Twilio documents them, and what a caller, a connector or the page then sees.

- 429 (error 20429, https://www.twilio.com/docs/api/errors/20429): "An API Request that
  receives an error 429 response is never processed and is always safe to retry."
- A 4xx such as 21220 "Call is not in-progress" (Call resource, update:
  https://www.twilio.com/docs/voice/api/call-resource#update-a-call-resource) will not change.
- No answer at all (connection refused, a timeout): nothing was decided; tried again, and
  when the tries run out the handoff says so instead of staying `requested`.
"""
from urllib.parse import parse_qs

import pytest
import requests
import responses

from tests.helpers import add_destination, call_params, parse, work

ACCOUNT = "AC" + "0" * 32
CALL = "CA" + "6" * 32
CALLS_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Calls.json"
CALL_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL}.json"
TOO_MANY = {"code": 20429, "message": "Too Many Requests", "status": 429}


@pytest.fixture
def rest():
    """Twilio's REST API, faked; every request the test set up must have been made."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def api_handoff(api, twilio):
    add_destination(api, "Billing", route="sip:billing@pbx.example.com")
    twilio.post("/voice/call", call_params(CALL))
    created = api.post(f"/v1/conversations/{CALL}/handoff", json={"reason": "billing"})
    assert created.status_code == 201
    return created.get_json()["id"]


def test_a_429_on_the_redirect_is_tried_again_and_the_caller_is_moved(app, api, twilio, rest):
    rest.add(responses.POST, CALL_URL, status=429, json=TOO_MANY)
    rest.add(responses.POST, CALL_URL, json={"sid": CALL, "status": "in-progress"})
    handoff_id = api_handoff(api, twilio)
    work(app)
    assert len(rest.calls) == 2
    assert parse(parse_qs(rest.calls[1].request.body)["Twiml"][0]).find("Refer/Sip").text == \
        "sip:billing@pbx.example.com"
    handoff = api.get(f"/v1/handoffs/{handoff_id}").get_json()
    assert handoff["state"] == "transferring" and handoff["warnings"] == []


def test_twilio_unreachable_for_every_try_fails_the_handoff_instead_of_leaving_it_requested(
        app, api, twilio, rest, config):
    for _ in range(len(config.webhook_retry_intervals) + 1):
        rest.add(responses.POST, CALL_URL, body=requests.ConnectionError("connection refused"))
    handoff_id = api_handoff(api, twilio)
    work(app)
    assert len(rest.calls) == len(config.webhook_retry_intervals) + 1  # every try made
    handoff = api.get(f"/v1/handoffs/{handoff_id}").get_json()
    assert handoff["state"] == "failed"
    assert [w["code"] for w in handoff["warnings"]] == ["call_update_failed"]
    assert handoff["history"][-1]["detail"]["reason"] == "call_update_failed"


def test_a_429_placing_an_outbound_call_is_a_503_to_try_again_not_a_422(api, rest):
    rest.add(responses.POST, CALLS_URL, status=429, json=TOO_MANY)
    response = api.post("/v1/calls", json={"to": "+14155550123", "from": "+14155550199"})
    assert response.status_code == 503, response.get_json()
    assert response.get_json()["error"]["code"] == "unavailable"


def test_a_test_call_twilio_could_not_take_yet_is_tried_again(app, api, rest):
    add_destination(api, "Desk", method="sip_invite", route="sip:desk@pbx.example.com")
    rest.add(responses.POST, CALLS_URL, status=503, json={"code": 20500, "message": "down", "status": 503})
    rest.add(responses.POST, CALLS_URL, status=201, json={"sid": CALL, "status": "queued"})
    assert api.post("/v1/destinations/desk/test_call", json={}).status_code == 202
    work(app)
    assert len(rest.calls) == 2
    assert api.get("/v1/destinations/desk").get_json()["last_test"]["status"] == "calling"


def test_a_test_call_twilio_never_answered_is_shown_failed_not_queued_for_ever(app, api, rest, config):
    add_destination(api, "Desk", method="sip_invite", route="sip:desk@pbx.example.com")
    for _ in range(len(config.webhook_retry_intervals) + 1):
        rest.add(responses.POST, CALLS_URL, body=requests.ConnectTimeout("timed out"))
    assert api.post("/v1/destinations/desk/test_call", json={}).status_code == 202
    work(app)
    last = api.get("/v1/destinations/desk").get_json()["last_test"]
    assert last["status"] == "failed" and "Twilio" in last["detail"]


def test_a_goodbye_too_long_for_an_inline_update_still_hangs_up(app, twilio, rest):
    """An agent's `{"utterance", "hangup": true}` is said and the call ended with one call
    update whose TwiML Twilio caps at 4000 characters (error 32018,
    https://www.twilio.com/docs/api/errors/32018). A longer goodbye was refused and the
    call was never hung up; the goodbye is shortened to fit instead."""
    from handoff import Conversation

    rest.add(responses.POST, CALL_URL, json={"sid": CALL, "status": "in-progress"})
    twilio.post("/voice/call", call_params(CALL))
    Conversation(CALL, services=app.extensions["handoff"]).hangup(utterance="Thanks & goodbye. " * 300)
    work(app)
    twiml = parse_qs(rest.calls[0].request.body)["Twiml"][0]
    assert len(twiml) <= 4000
    root = parse(twiml)
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert root.find("Say").text.startswith("Thanks & goodbye. Thanks & goodbye.")
