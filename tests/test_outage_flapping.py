"""Redis gone for a moment in the middle of a call's fallback chain: the steps taken while it
was away are not lost on the caller when it is back."""
import json

import pytest
import responses

from tests.helpers import API_KEY, Twilio, call_params, latest_handoff, parse, path, verbs

CALL = "CA" + "5" * 32
BUSY = {"ReferCallStatus": "failed", "ReferSipResponseCode": "486"}


@pytest.fixture
def app(app_on_own_valkey):
    """Billing → Reception → Sales, each the previous one's fallback; Operator the default."""
    api = app_on_own_valkey.test_client()
    headers = {"X-API-Key": API_KEY}
    for body in ({"name": "Operator", "route": "sip:operator@pbx.example.com"},
                 {"name": "Sales", "route": "sip:sales@pbx.example.com"},
                 {"name": "Reception", "route": "sip:reception@pbx.example.com", "fallback": "sales"},
                 {"name": "Billing", "route": "sip:billing@pbx.example.com", "fallback": "reception"}):
        assert api.post("/v1/destinations", json=body, headers=headers).status_code == 201
    return app_on_own_valkey


def test_an_attempt_made_while_redis_was_down_continues_the_chain_when_it_is_back(app, own_valkey):
    twilio = Twilio(app.test_client())
    first = parse(twilio.post("/voice/handoff", call_params(CALL, destination="billing")))
    assert first.find("Refer/Sip").text.startswith("sip:billing@")

    own_valkey.stop()
    second = parse(twilio.post(path(first.find("Refer").get("action")), call_params(CALL, **BUSY)))
    assert second.find("Refer/Sip").text.startswith("sip:reception@")
    own_valkey.start()

    # Reception is busy too: the caller goes on to Sales, not off the call.
    third = parse(twilio.post(path(second.find("Refer").get("action")), call_params(CALL, **BUSY)))
    assert verbs(third) == ["Refer"] and third.find("Refer/Sip").text.startswith("sip:sales@")

    handoff = app.test_client().get("/v1/handoffs", headers={"X-API-Key": API_KEY}).get_json()["items"][0]
    assert handoff["state"] == "transferring"
    assert handoff["destination"]["id"] == "sales"


def test_an_attempt_timed_out_during_the_outage_still_continues_the_chain(app, own_valkey):
    from handoff.handoffs import Handoffs

    twilio = Twilio(app.test_client())
    first = parse(twilio.post("/voice/handoff", call_params(CALL, destination="billing")))
    handoff_id = path(first.find("Refer").get("action")).split("/")[3]
    own_valkey.stop()
    second = parse(twilio.post(path(first.find("Refer").get("action")), call_params(CALL, **BUSY)))
    own_valkey.start()
    # The sweep found attempt 1 without an outcome past its deadline (the busy one never
    # reached Redis) and failed the handoff.
    assert Handoffs(app.extensions["handoff"]).expire(handoff_id, 1)

    third = parse(twilio.post(path(second.find("Refer").get("action")), call_params(CALL, **BUSY)))
    assert third.find("Refer/Sip").text.startswith("sip:sales@")


def test_a_human_who_presses_1_during_an_outage_is_bridged_not_hung_up_on(app, own_valkey):
    api = app.test_client()
    assert api.post("/v1/destinations", headers={"X-API-Key": API_KEY}, json={
        "name": "Expert", "route": "sip:expert@pbx.example.com", "method": "sip_invite",
        "transfer_mode": "warm_accept", "encryption": "udp_rtp"}).status_code == 201
    twilio = Twilio(app.test_client())
    root = parse(twilio.post("/voice/handoff", call_params(CALL, destination="expert")))
    whisper = parse(twilio.post(path(root.find("Dial/Sip").get("url")), call_params("CA" + "e" * 32)))
    gather = whisper.find("Gather")

    own_valkey.stop()
    accepted = parse(twilio.post(path(gather.get("action")), {**call_params("CA" + "e" * 32), "Digits": "1"}))
    assert verbs(accepted) == []  # Twilio bridges the human to the caller
    refused = parse(twilio.post(path(gather.get("action")), {**call_params("CA" + "e" * 32), "Digits": "2"}))
    assert verbs(refused) == ["Hangup"]


TWILIO_CALL_URL = f"https://api.twilio.com/2010-04-01/Accounts/{'AC' + '0' * 32}/Calls/{CALL}.json"


@responses.activate
def test_a_call_moved_just_before_redis_failed_is_not_moved_again_by_the_jobs_retry(app, own_valkey):
    """An API handoff on a live call: Twilio takes the redirect, then Redis fails before the
    handoff records it. rq tries the job again; the caller, already ringing the human, must
    not be pulled out and dialled a second time."""
    from handoff import jobs
    from handoff.redis_server import REDIS_ERRORS

    def moved_then_redis_fails(request):
        if own_valkey.process is not None and not responses.calls:
            own_valkey.stop()
        return 200, {}, json.dumps({"sid": CALL, "status": "in-progress"})

    responses.add_callback(responses.POST, TWILIO_CALL_URL, callback=moved_then_redis_fails)
    client = app.test_client()
    headers = {"X-API-Key": API_KEY}
    Twilio(client).post("/voice/call", call_params(CALL))
    handoff_id = client.post(f"/v1/conversations/{CALL}/handoff", headers=headers,
                             json={"destination": "sales"}).get_json()["id"]
    jobs.use(app.extensions["handoff"])
    try:
        with pytest.raises(REDIS_ERRORS):
            jobs.redirect_call(handoff_id)
        own_valkey.start()
        jobs.redirect_call(handoff_id)  # rq's retry of the failed job
    finally:
        jobs.use(None)
    assert len(responses.calls) == 1
    handoff = client.get(f"/v1/handoffs/{handoff_id}", headers=headers).get_json()
    assert handoff["state"] == "transferring" and handoff["destination"]["id"] == "sales"


def test_a_caller_moved_on_from_a_consult_just_before_redis_failed_is_not_moved_again(app, own_valkey, api, twilio):
    """The human declined a consult; the worker moves the caller (on hold) to the next
    destination over REST, and Redis fails before that is recorded. rq's retry must not
    restart the caller's transfer to Reception."""
    from handoff import consult_calls, jobs
    from handoff.redis_server import REDIS_ERRORS
    from tests.test_consult import API, hold, human_params
    from tests.test_consult import CALL as CONSULT_CALL

    jobs.use(app.extensions["handoff"])
    try:
        with responses.RequestsMock() as rest:
            api.patch("/v1/destinations/reception", json={"fallback": None})
            api.post("/v1/destinations", json={"name": "Expert", "route": "sip:expert@pbx.example.com",
                                               "transfer_mode": "consult", "fallback": "reception"})
            hold(twilio, api, rest, app, destination="expert")
            hid = latest_handoff(api, CONSULT_CALL)["id"]
            twilio.post(f"/voice/handoff/{hid}/consult/whisper?attempt=1", human_params())
            twilio.post(f"/voice/handoff/{hid}/consult/accept?attempt=1", human_params(Digits="2"))

            def moved_then_redis_fails(request):
                if own_valkey.process is not None and len(rest.calls) == 1:
                    own_valkey.stop()
                return 200, {}, json.dumps({"sid": CONSULT_CALL, "status": "in-progress"})

            rest.add_callback(responses.POST, f"{API}/Calls/{CONSULT_CALL}.json", callback=moved_then_redis_fails)
            with pytest.raises(REDIS_ERRORS):
                consult_calls.move_caller(hid, 1)
            own_valkey.start()
            consult_calls.move_caller(hid, 1)  # rq's retry of the failed job
            moves = [c for c in rest.calls if c.request.url == f"{API}/Calls/{CONSULT_CALL}.json"]
            assert len(moves) == 1
    finally:
        jobs.use(None)


@responses.activate
def test_an_outbound_call_asked_for_while_redis_is_down_is_not_placed(app, own_valkey):
    """The API answers 503 'try again shortly': the callee must not be rung meanwhile (and
    again on the retry), by a call nothing records."""
    responses.add(responses.POST, f"https://api.twilio.com/2010-04-01/Accounts/{'AC' + '0' * 32}/Calls.json",
                  status=201, json={"sid": "CA" + "d" * 32, "status": "queued"})
    own_valkey.stop()
    refused = app.test_client().post("/v1/calls", headers={"X-API-Key": API_KEY},
                                     json={"to": "+14155550123", "from": "+14155550199"})
    assert refused.status_code == 503 and refused.get_json()["error"]["code"] == "unavailable"
    assert len(responses.calls) == 0
