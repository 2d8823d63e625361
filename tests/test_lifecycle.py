"""What happens after the transfer TwiML is sent: outcomes, fallbacks, retries, hang-ups."""
from urllib.parse import parse_qs, urlsplit

from tests.helpers import BASE_URL, call_params, latest_handoff, parse, verbs
from tests.helpers import add_destination as make

CALL = "CA" + "7" * 32


def start(twilio, **params):
    root = parse(twilio.post("/voice/handoff", {**call_params(CALL), **params}))
    return root


def action_path(root):
    verb = root.find("Refer") if root.find("Refer") is not None else root.find("Dial")
    url = verb.get("action")
    assert url.startswith(BASE_URL)
    return url[len(BASE_URL):]


def callback(twilio, path, **params):
    return twilio.post(path, {**call_params(CALL), **params})


def chain(api):
    """Billing → Overflow → (default) Reception; Overflow rings as a SIP INVITE."""
    reception = make(api, "Reception")
    overflow = make(api, "Overflow", method="sip_invite", encryption="udp_rtp")
    make(api, "Billing", fallback=overflow["id"])
    return reception


def test_refer_answered_connects_then_call_end_completes(api, twilio):
    chain(api)
    root = start(twilio, destination="billing")
    answer = parse(callback(twilio, action_path(root), ReferCallStatus="in-progress",
                            ReferSipResponseCode="202", NotifySipResponseCode="200"))
    assert verbs(answer) == ["Hangup"]
    assert handoff(api)["state"] == "connected"
    assert handoff(api)["history"][-1]["detail"] == {"destination": "billing", "attempt": 1,
                                                     "result": "in-progress", "sip_code": 200}
    twilio.post("/voice/status", {**call_params(CALL), "CallStatus": "completed"})
    assert handoff(api)["state"] == "completed"
    assert api.get(f"/v1/conversations/{CALL}").get_json()["ended_at"]


def test_busy_then_fallback_then_answered(api, twilio):
    chain(api)
    first = start(twilio, destination="billing", utterance="Connecting you.")
    second = parse(callback(twilio, action_path(first), ReferCallStatus="busy",
                            ReferSipResponseCode="202", NotifySipResponseCode="486"))
    assert verbs(second) == ["Dial"]  # the utterance is said once, not on every attempt
    assert second.find("Dial/Sip").text == "sip:overflow@pbx.example.com"
    assert parse_qs(urlsplit(action_path(second)).query) == {"attempt": ["2"], "tried": ["billing,overflow"]}
    done = parse(callback(twilio, action_path(second), DialCallStatus="completed",
                          DialCallDuration="42", DialSipResponseCode="200"))
    assert verbs(done) == ["Hangup"]
    record = handoff(api)
    assert [h["state"] for h in record["history"]] == [
        "requested", "transferring", "transferring", "connected", "completed"]
    assert record["history"][2]["detail"] == {"destination": "overflow", "attempt": 2, "after": {
        "destination": "billing", "attempt": 1, "result": "busy", "sip_code": 486}}
    assert record["destination"]["id"] == "overflow"


def test_every_destination_fails_then_apology(api, twilio):
    chain(api)
    root = start(twilio, destination="billing")
    root = parse(callback(twilio, action_path(root), ReferCallStatus="failed", ReferSipResponseCode="405"))
    root = parse(callback(twilio, action_path(root), DialCallStatus="no-answer"))
    assert root.find("Refer/Sip").text == "sip:reception@pbx.example.com"  # the default, last
    root = parse(callback(twilio, action_path(root), ReferCallStatus="failed", NotifySipResponseCode="503"))
    assert verbs(root) == ["Say", "Hangup"]
    record = handoff(api)
    assert record["state"] == "failed"
    assert record["history"][-1]["detail"]["reason"] == "no_destination_left"
    assert [h["detail"].get("destination") for h in record["history"][1:4]] == ["billing", "overflow", "reception"]


def test_a_fallback_loop_never_loops_the_call(api, twilio):
    a = make(api, "A")
    b = make(api, "B", fallback=a["id"])
    api.patch(f"/v1/destinations/{a['id']}", json={"fallback": b["id"]})
    root = start(twilio, destination="a")
    tried = []
    for _ in range(5):
        if root.find("Refer") is None:
            break
        tried.append(root.find("Refer/Sip").text)
        root = parse(callback(twilio, action_path(root), ReferCallStatus="failed"))
    assert tried == ["sip:a@pbx.example.com", "sip:b@pbx.example.com"]
    assert verbs(root) == ["Say", "Hangup"]


def test_sip_error_code_on_a_completed_dial_is_a_failure(api, twilio):
    make(api, "Spare")  # the default
    make(api, "Desk", method="sip_invite", encryption="udp_rtp")
    root = start(twilio, destination="desk")
    root = parse(callback(twilio, action_path(root), DialCallStatus="completed", DialSipResponseCode="480"))
    assert root.find("Refer/Sip").text == "sip:spare@pbx.example.com"
    assert handoff(api)["history"][2]["detail"]["after"]["sip_code"] == 480


def test_duplicate_callbacks_do_not_advance_twice(api, twilio):
    chain(api)
    root = start(twilio, destination="billing")
    path = action_path(root)
    first = callback(twilio, path, ReferCallStatus="busy").get_data(as_text=True)
    again = callback(twilio, path, ReferCallStatus="busy").get_data(as_text=True)
    assert first == again
    assert [h["state"] for h in handoff(api)["history"]] == ["requested", "transferring", "transferring"]


def test_duplicate_webhooks_create_one_record(api, twilio):
    make(api, "Billing")
    token = {"I-Twilio-Idempotency-Token": "tok-1"}
    a = twilio.post("/voice/handoff", call_params(CALL), headers=token).get_data(as_text=True)
    b = twilio.post("/voice/handoff", call_params(CALL), headers=token).get_data(as_text=True)
    assert a == b
    assert len(api.get("/v1/handoffs").get_json()["items"]) == 1
    twilio.post("/voice/call", call_params(CALL))
    twilio.post("/voice/call", call_params(CALL))
    assert len(api.get("/v1/conversations").get_json()["items"]) == 1


def test_caller_hangs_up_mid_transfer(api, twilio):
    chain(api)
    start(twilio, destination="billing")
    twilio.post("/voice/status", {**call_params(CALL), "CallStatus": "completed"})
    assert handoff(api)["state"] == "abandoned"


def test_refer_canceled_means_the_caller_left(api, twilio):
    chain(api)
    root = start(twilio, destination="billing")
    callback(twilio, action_path(root), ReferCallStatus="canceled", NotifySipResponseCode="180")
    assert handoff(api)["state"] == "abandoned"


def test_bye_handoff_completes_when_the_call_ends(api, twilio):
    make(api, "SBC", method="sip_bye")
    start(twilio)
    twilio.post("/voice/status", {**call_params(CALL), "CallStatus": "completed"})
    assert handoff(api)["state"] == "completed"


def test_twilio_fallback_url_goes_to_the_default(api, twilio):
    make(api, "Reception")
    make(api, "Other")
    root = parse(twilio.post("/voice/fallback", {**call_params(CALL), "ErrorCode": "11200",
                                                 "ErrorUrl": "https://x/voice/call"}))
    assert root.find("Refer/Sip").text == "sip:reception@pbx.example.com"
    assert handoff(api)["data"] == {"ErrorCode": "11200", "ErrorUrl": "https://x/voice/call"}


def handoff(api):
    return latest_handoff(api, CALL)
