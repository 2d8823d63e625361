"""Consult transfers over HTTP: the caller holds in a conference while the worker calls and
briefs the human through Twilio's REST API (faked with `responses`); Twilio's callbacks are
posted the way Twilio documents them.

Sources for the callback shapes:
- TwiML <Conference> (https://www.twilio.com/docs/voice/twiml/conference): the noun's
  startConferenceOnEnter / endConferenceOnExit / waitUrl attributes, and its statusCallback
  request parameters: ConferenceSid, FriendlyName, AccountSid, Timestamp,
  StatusCallbackEvent (`participant-join`, `participant-leave`, …), CallSid, Muted, Hold,
  Coaching, EndConferenceOnExit, StartConferenceOnEnter, SequenceNumber; `participant-leave`
  also carries ParticipantCallStatus and ReasonParticipantLeft (Twilio changelog, 2023-10-25);
  only ParticipantCallStatus is read here.
- Calls resource (https://www.twilio.com/docs/voice/api/call-resource): the status callback
  of a REST-created call posts CallStatus (`busy`, `no-answer`, `failed`, `completed`…);
  the async AMD callback posts AnsweredBy (`human`, `machine_start`, `fax`, `unknown`).
"""
import re
from urllib.parse import parse_qs

import pytest
import responses

from tests.helpers import API_KEY, BASE_URL, Twilio, call_params, latest_handoff, parse, path, verbs, work
from tests.helpers import add_destination as make


@pytest.fixture
def over_http():
    """These stories go over real HTTP (a threaded server on loopback)."""
    return True


ACCOUNT = "AC" + "0" * 32
CALL = "CA" + "7" * 32  # the caller
HUMAN = "CA" + "8" * 32  # the call the worker places to the human
CONFERENCE = "CF" + "a" * 32
API = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}"
PSTN = {"From": "+14155550100", "To": "+14155550199", "SipCallId": None, "SipDomain": None}


@pytest.fixture
def rest():
    """Twilio's REST API, faked; the tests' own HTTP to the service on loopback passes through."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add_passthru(re.compile(r"http://127\.0\.0\.1:\d+"))
        yield mock



def sent(rest):
    """Every REST request made so far: (method, URL, form fields)."""
    return [(c.request.method, c.request.url, {k: v[0] for k, v in parse_qs(c.request.body or "").items()})
            for c in rest.calls]


def expect_human_call(rest):
    rest.add(responses.POST, f"{API}/Calls.json", status=201, json={"sid": HUMAN, "status": "queued"})


def expect_update(rest, call_sid):
    rest.add(responses.POST, f"{API}/Calls/{call_sid}.json", status=200,
             json={"sid": call_sid, "status": "in-progress"})


def conference_event(twilio, url, event, call_sid, sequence, **extra):
    """A conference statusCallback as Twilio posts it (Conference page, statusCallback)."""
    params = {"AccountSid": ACCOUNT, "ConferenceSid": CONFERENCE, "FriendlyName": extra.pop("room"),
              "StatusCallbackEvent": event, "CallSid": call_sid, "Timestamp": "Thu, 26 Nov 2026 10:00:00 +0000",
              "SequenceNumber": str(sequence), "Muted": "false", "Hold": "false", "Coaching": "false",
              "EndConferenceOnExit": "true", "StartConferenceOnEnter": "false" if call_sid == CALL else "true",
              **extra}
    response = twilio.post(path(url), params)
    assert response.status_code == 200
    return response


def human_params(**extra):
    """The human's call as Twilio describes it on its own requests (an outbound-api call)."""
    return call_params(HUMAN, From="+14155550199", To="+14155550111", SipCallId=None, SipDomain=None,
                       Direction="outbound-api", **extra)


def start(twilio, api, leg=None, **fields):
    twilio.post("/voice/call", call_params(CALL, **(leg or {})))
    api.patch(f"/v1/conversations/{CALL}", json={"state": {"tier": "gold"}})
    for role, text in (("user", "I was charged twice"), ("agent", "I see two charges")):
        api.post(f"/v1/conversations/{CALL}/transcript", json={"role": role, "text": text})
    return parse(twilio.post("/voice/handoff", {**call_params(CALL, **(leg or {})), **fields}))


def hold(twilio, api, rest, app, leg=None, **fields):
    """Up to the human's phone ringing: the caller on hold, the human's call placed."""
    root = start(twilio, api, leg, **fields)
    conference = root.find("Dial/Conference")
    conference_event(twilio, conference.get("statusCallback"), "participant-join", CALL, 1, room=conference.text)
    expect_human_call(rest)
    work(app)
    return root


def steps(api):
    return [(e["state"], e["detail"].get("step")) for e in latest_handoff(api, CALL)["history"]]


def test_accepted_the_caller_holds_the_human_is_briefed_accepts_and_joins(api, twilio, rest, app):
    make(api, "Reception")
    make(api, "Expert", method="sip_invite", transfer_mode="consult", route="+14155550111",
         extension="ww123#", caller_id="$called_number", ring_timeout=20, intro="public",
         hold_audio_url="https://cdn.example.com/hold.mp3",
         sip_headers=[{"name": "X-Customer-Tier", "value": "$tier"}])
    root = start(twilio, api, PSTN, destination="expert", reason="billing_dispute",
                 utterance="Let me get a specialist.")
    record = latest_handoff(api, CALL)
    hid = record["id"]
    # The caller: the utterance, then a conference named after the handoff where they wait
    # (startConferenceOnEnter=false: hold audio until the human, who starts it, joins).
    assert verbs(root) == ["Say", "Dial"] and root.find("Say").text == "Let me get a specialist."
    dial, conference = root.find("Dial"), root.find("Dial/Conference")
    assert dial.get("action") == f"{BASE_URL}/voice/handoff/{hid}/consult/status?attempt=1"
    assert conference.text == f"{hid}-1"
    assert conference.attrib == {
        "beep": "false", "startConferenceOnEnter": "false", "endConferenceOnExit": "true",
        "waitUrl": "https://cdn.example.com/hold.mp3", "waitMethod": "GET",
        "statusCallback": f"{BASE_URL}/voice/handoff/{hid}/consult/conference?attempt=1",
        "statusCallbackMethod": "POST", "statusCallbackEvent": "join leave"}
    assert record["state"] == "transferring" and len(rest.calls) == 0  # nobody called before the caller holds

    # Twilio: the caller joined the room. The worker calls the human.
    conference_event(twilio, conference.get("statusCallback"), "participant-join", CALL, 1, room=conference.text)
    conference_event(twilio, conference.get("statusCallback"), "participant-join", CALL, 1, room=conference.text)
    expect_human_call(rest)
    work(app)
    assert sent(rest) == [("POST", f"{API}/Calls.json", {
        "To": "+14155550111", "From": "+14155550199", "SendDigits": "ww123#", "Timeout": "20",
        "Url": f"{BASE_URL}/voice/handoff/{hid}/consult/whisper?attempt=1", "Method": "POST",
        "StatusCallback": f"{BASE_URL}/voice/handoff/{hid}/consult/call?attempt=1",
        "StatusCallbackMethod": "POST"})]
    assert steps(api) == [("requested", None), ("transferring", None), ("transferring", "consulting")]

    # The human answers: the briefing, then the accept gate.
    briefing = parse(twilio.post(path(sent(rest)[0][2]["Url"]), human_params(CallStatus="in-progress")))
    assert verbs(briefing) == ["Gather", "Hangup"]
    said = briefing.find("Gather/Say").text
    for part in ("Reason: billing dispute.", "Caller: + 1 4 1 5 5 5 5 0 1 0 0.", "Customer Tier: gold.",
                 "The assistant said: Let me get a specialist.", "The caller said: I was charged twice.",
                 "Press 1 to accept the call."):
        assert part in said, said
    gather = briefing.find("Gather")
    assert gather.get("numDigits") == "1"
    assert gather.get("action") == f"{BASE_URL}/voice/handoff/{hid}/consult/accept?attempt=1"

    # Press 1: into the caller's room, which starts as they enter and ends when they leave.
    joined = parse(twilio.post(path(gather.get("action")), human_params(Digits="1")))
    assert verbs(joined) == ["Dial"]
    room = joined.find("Dial/Conference")
    assert room.text == f"{hid}-1"
    assert (room.get("startConferenceOnEnter"), room.get("endConferenceOnExit")) == ("true", "true")
    assert latest_handoff(api, CALL)["state"] == "connected"
    assert steps(api)[-1] == ("connected", "accepted")

    # intro public: as the human joins, the reason is announced to the whole room.
    conference_event(twilio, conference.get("statusCallback"), "participant-join", HUMAN, 2, room=conference.text)
    rest.add(responses.POST, f"{API}/Conferences/{CONFERENCE}.json", status=200, json={"sid": CONFERENCE})
    work(app)
    assert sent(rest)[1] == ("POST", f"{API}/Conferences/{CONFERENCE}.json", {
        "AnnounceUrl": f"{BASE_URL}/voice/handoff/{hid}/consult/announce?attempt=1", "AnnounceMethod": "POST"})
    announced = parse(twilio.post(f"/voice/handoff/{hid}/consult/announce?attempt=1",
                                  {"AccountSid": ACCOUNT, "ConferenceSid": CONFERENCE}))
    assert [(v.tag, v.text) for v in announced] == [
        ("Say", "You are now connected. This call is about billing dispute.")]

    # The human hangs up after talking: the room ends, the caller's <Dial> returns.
    done = parse(twilio.post(path(dial.get("action")), call_params(CALL, **PSTN)))
    assert verbs(done) == ["Hangup"]
    record = latest_handoff(api, CALL)
    assert record["state"] == "completed" and steps(api)[-1] == ("completed", "ended")
    assert len(rest.calls) == 2  # nothing else was asked of Twilio
    events = api.get("/v1/handoffs/events").get_json()["items"]
    assert [e["state"] for e in events] == ["requested", "transferring", "transferring", "connected", "completed"]


def test_declined_the_caller_is_moved_to_the_next_destination(api, twilio, rest, app):
    make(api, "Reception")
    make(api, "Expert", transfer_mode="consult", route="sip:expert@pbx.example.com",
         sip_headers=[{"name": "X-Customer-Tier", "value": "$tier"}])
    root = hold(twilio, api, rest, app, destination="expert")  # a SIP caller this time
    hid = latest_handoff(api, CALL)["id"]
    # sip_refer + consult: the human is called at the route as is, headers on the URI.
    assert sent(rest)[0][2]["To"] == "sip:expert@pbx.example.com?X-Customer-Tier=gold"
    assert sent(rest)[0][2]["From"] == "+14155550199"  # no caller ID set: the number the caller called
    twilio.post(f"/voice/handoff/{hid}/consult/whisper?attempt=1", human_params())
    refused = parse(twilio.post(f"/voice/handoff/{hid}/consult/accept?attempt=1", human_params(Digits="2")))
    assert verbs(refused) == ["Say", "Hangup"]

    expect_update(rest, CALL)
    work(app)
    method, url, body = sent(rest)[1]
    assert (method, url) == ("POST", f"{API}/Calls/{CALL}.json")
    moved = parse(body["Twiml"])
    assert moved.find("Refer/Sip").text == "sip:reception@pbx.example.com"
    assert moved.find("Refer").get("action") == (
        f"{BASE_URL}/voice/handoff/{hid}/status?attempt=2&tried=expert,reception")
    assert len(rest.calls) == 2  # the human hung up by themselves: no leg to end
    record = latest_handoff(api, CALL)
    assert steps(api)[2:] == [("transferring", "consulting"), ("transferring", "declined"), ("transferring", None)]
    assert record["history"][-1]["detail"] == {
        "destination": "reception", "attempt": 2,
        "after": {"destination": "expert", "attempt": 1, "result": "declined"}}

    # The human's call ending and the caller leaving the room (our redirect) change nothing.
    twilio.post(f"/voice/handoff/{hid}/consult/call?attempt=1", human_params(CallStatus="completed"))
    conference = root.find("Dial/Conference")
    conference_event(twilio, conference.get("statusCallback"), "participant-leave", CALL, 3, room=conference.text,
                     ParticipantCallStatus="in-progress")
    work(app)
    assert len(rest.calls) == 2 and latest_handoff(api, CALL)["state"] == "transferring"


def test_a_next_transfer_too_long_for_an_inline_update_is_fetched_from_a_url(api, twilio, rest, app):
    """TwiML given inline to a call update is capped at 4000 characters (error 32018,
    https://www.twilio.com/docs/api/errors/32018); a Twilio refusal there would leave the
    caller on hold for good. A longer next transfer (ten targets rung at once, each with
    its headers) is sent as a URL Twilio fetches instead (Call resource: Url or Twiml)."""
    routes = [f"sip:desk{n}@pbx.example.com" for n in range(10)]
    make(api, "Team", method="sip_invite", route=routes,
         sip_headers=[{"name": f"X-Note-{n}", "value": "x" * 80} for n in range(4)])
    make(api, "Expert", transfer_mode="consult", route="sip:expert@pbx.example.com", fallback="team")
    hold(twilio, api, rest, app, destination="expert")
    hid = latest_handoff(api, CALL)["id"]
    twilio.post(f"/voice/handoff/{hid}/consult/accept?attempt=1", human_params(Digits="2"))
    expect_update(rest, CALL)
    work(app)
    _, url, body = sent(rest)[1]
    assert url == f"{API}/Calls/{CALL}.json" and "Twiml" not in body
    assert body["Method"] == "POST"
    # What Twilio then fetches is the next transfer, whole.
    answer = twilio.post(path(body["Url"]), call_params(CALL)).get_data(as_text=True)
    assert len(answer) > 4000
    fetched = parse(answer)
    assert [sip.text.split("?")[0] for sip in fetched.findall("Dial/Sip")] == [
        r + ";transport=tls;secure=true" for r in routes]
    assert len(fetched.findall("Dial/Sip")) == 10


def test_a_second_human_call_ending_does_not_undo_the_accepted_one(api, twilio, rest, app):
    """A call the worker placed twice (a create whose answer was lost to a timeout, then
    tried again: Twilio's Calls resource has no idempotency key) rings the human twice. The
    status callback of the call nobody answered (`no-answer`) is not the human's call ending:
    the human who accepted on the recorded call still joins the caller."""
    make(api, "Reception")
    make(api, "Expert", transfer_mode="consult", route="sip:expert@pbx.example.com")
    hold(twilio, api, rest, app, destination="expert")
    hid = latest_handoff(api, CALL)["id"]
    twilio.post(f"/voice/handoff/{hid}/consult/whisper?attempt=1", human_params())
    joined = parse(twilio.post(f"/voice/handoff/{hid}/consult/accept?attempt=1", human_params(Digits="1")))
    assert joined.find("Dial/Conference") is not None
    stray = call_params("CA" + "9" * 32, From="+14155550199", To="sip:expert@pbx.example.com", SipCallId=None,
                        SipDomain=None, Direction="outbound-api", CallStatus="no-answer")
    twilio.post(f"/voice/handoff/{hid}/consult/call?attempt=1", stray)
    work(app)
    assert len(rest.calls) == 1  # nobody moved, no leg ended
    assert latest_handoff(api, CALL)["state"] == "connected"


def test_no_answer_with_on_failure_hangup_apologises(api, twilio, rest, app):
    make(api, "Reception")
    make(api, "Expert", method="sip_invite", transfer_mode="consult", route="+14155550111",
         caller_id="+14155550122", on_failure="hangup")
    hold(twilio, api, rest, app, PSTN, destination="expert")
    hid = latest_handoff(api, CALL)["id"]
    assert sent(rest)[0][2]["From"] == "+14155550122"
    assert "SendDigits" not in sent(rest)[0][2] and "MachineDetection" not in sent(rest)[0][2]
    # Nobody answered within the ring timeout (the Calls resource's status callback).
    twilio.post(f"/voice/handoff/{hid}/consult/call?attempt=1",
                human_params(CallStatus="no-answer", CallDuration="0"))
    expect_update(rest, CALL)
    work(app)
    moved = parse(sent(rest)[1][2]["Twiml"])
    assert verbs(moved) == ["Say", "Hangup"] and "sorry" in moved.find("Say").text.lower()
    record = latest_handoff(api, CALL)
    assert record["state"] == "failed"
    assert steps(api)[-2:] == [("transferring", "no_answer"), ("failed", None)]
    assert record["history"][-1]["detail"]["disposition"] == "hangup"
    # A retried callback changes nothing and asks nothing more of Twilio.
    twilio.post(f"/voice/handoff/{hid}/consult/call?attempt=1", human_params(CallStatus="no-answer"))
    work(app)
    assert len(rest.calls) == 2


def test_voicemail_ends_the_human_leg_and_the_caller_leaves_a_message(api, twilio, rest, app):
    make(api, "Reception")
    make(api, "Expert", method="sip_invite", transfer_mode="consult", detect_voicemail=True,
         route="sip:expert@pbx.example.com;transport=tls", on_failure="voicemail",
         sip_headers=[{"name": "X-Customer-Tier", "value": "$tier"}])
    hold(twilio, api, rest, app, destination="expert")
    hid = latest_handoff(api, CALL)["id"]
    created = sent(rest)[0][2]
    assert created["To"] == "sip:expert@pbx.example.com;transport=tls;secure=true?X-Customer-Tier=gold"
    assert (created["MachineDetection"], created["AsyncAmd"]) == ("Enable", "true")
    assert created["AsyncAmdStatusCallback"] == f"{BASE_URL}/voice/handoff/{hid}/consult/amd?attempt=1"
    assert created["AsyncAmdStatusCallbackMethod"] == "POST"
    # The async AMD callback: a machine picked up.
    twilio.post(f"/voice/handoff/{hid}/consult/amd?attempt=1",
                human_params(AnsweredBy="machine_start", MachineDetectionDuration="1820"))
    expect_update(rest, HUMAN)
    expect_update(rest, CALL)
    work(app)
    assert sorted((url, tuple(body)) for _, url, body in sent(rest)[1:]) == [
        (f"{API}/Calls/{CALL}.json", ("Twiml",)), (f"{API}/Calls/{HUMAN}.json", ("Status",))]
    assert {url: body for _, url, body in sent(rest)[1:]}[f"{API}/Calls/{HUMAN}.json"] == {"Status": "completed"}
    moved = parse({url: body for _, url, body in sent(rest)[1:]}[f"{API}/Calls/{CALL}.json"]["Twiml"])
    assert verbs(moved) == ["Say", "Record", "Say", "Hangup"]
    record = latest_handoff(api, CALL)
    assert record["state"] == "transferring"
    assert steps(api)[-2:] == [("transferring", "voicemail"), ("transferring", None)]
    assert record["history"][-2]["detail"]["answered_by"] == "machine_start"
    # Twilio's status callback for the leg we ended changes nothing.
    twilio.post(f"/voice/handoff/{hid}/consult/call?attempt=1", human_params(CallStatus="completed"))
    work(app)
    assert len(rest.calls) == 3


@pytest.mark.parametrize("reported_by", ["conference event", "dial action"])
def test_caller_gone_while_waiting_ends_the_human_leg(api, twilio, rest, app, reported_by):
    make(api, "Reception")
    make(api, "Expert", method="sip_invite", transfer_mode="consult", route="+14155550111")
    root = hold(twilio, api, rest, app, PSTN, destination="expert")
    hid = latest_handoff(api, CALL)["id"]
    conference = root.find("Dial/Conference")
    if reported_by == "conference event":
        conference_event(twilio, conference.get("statusCallback"), "participant-leave", CALL, 2,
                         room=conference.text, ParticipantCallStatus="completed")
    else:
        gone = parse(twilio.post(path(root.find("Dial").get("action")),
                                 call_params(CALL, CallStatus="completed", **PSTN)))
        assert verbs(gone) == ["Hangup"]
    expect_update(rest, HUMAN)
    work(app)
    assert sent(rest)[1] == ("POST", f"{API}/Calls/{HUMAN}.json", {"Status": "completed"})
    record = latest_handoff(api, CALL)
    assert record["state"] == "abandoned" and steps(api)[-1] == ("abandoned", "caller_left")
    # The human picking up now hears that the caller has gone; pressing 1 joins nothing.
    late = parse(twilio.post(f"/voice/handoff/{hid}/consult/whisper?attempt=1", human_params()))
    assert verbs(late) == ["Say", "Hangup"] and "no longer waiting" in late.find("Say").text
    # Twilio's other reports of the same hang-up (the caller's <Dial> action, the call's
    # status callback) change nothing either.
    assert verbs(parse(twilio.post(path(root.find("Dial").get("action")),
                                   call_params(CALL, CallStatus="completed", **PSTN)))) == ["Hangup"]
    twilio.post("/voice/status", call_params(CALL, CallStatus="completed", **PSTN))
    work(app)
    assert len(rest.calls) == 2 and latest_handoff(api, CALL)["history"] == record["history"]


def test_caller_gone_before_the_human_call_is_placed(api, twilio, rest, app):
    make(api, "Reception")
    make(api, "Expert", method="sip_invite", transfer_mode="consult", route="+14155550111")
    root = start(twilio, api, PSTN, destination="expert")
    conference = root.find("Dial/Conference")
    conference_event(twilio, conference.get("statusCallback"), "participant-join", CALL, 1, room=conference.text)
    conference_event(twilio, conference.get("statusCallback"), "participant-leave", CALL, 2, room=conference.text,
                     ParticipantCallStatus="completed")
    work(app)  # the worker places no call: nobody is waiting any more
    assert len(rest.calls) == 0 and latest_handoff(api, CALL)["state"] == "abandoned"


def test_human_gone_before_joining_moves_the_caller_on(api, twilio, rest, app):
    make(api, "Reception")
    make(api, "Backup", method="sip_invite", route="+14155550133")
    make(api, "Expert", method="sip_invite", transfer_mode="consult", route="+14155550111", fallback="backup")
    hold(twilio, api, rest, app, PSTN, destination="expert")
    hid = latest_handoff(api, CALL)["id"]
    twilio.post(f"/voice/handoff/{hid}/consult/whisper?attempt=1", human_params())
    # The human hung up during the briefing (their call's status callback).
    twilio.post(f"/voice/handoff/{hid}/consult/call?attempt=1", human_params(CallStatus="completed", CallDuration="7"))
    expect_update(rest, CALL)
    work(app)
    moved = parse(sent(rest)[1][2]["Twiml"])
    assert moved.find("Dial/Number").text == "+14155550133"
    assert moved.find("Dial").get("action") == f"{BASE_URL}/voice/handoff/{hid}/status?attempt=2&tried=expert,backup"
    assert steps(api)[-2:] == [("transferring", "human_left"), ("transferring", None)]
    # The late accept of a human who already left joins nothing.
    late = parse(twilio.post(f"/voice/handoff/{hid}/consult/accept?attempt=1", human_params(Digits="1")))
    assert verbs(late) == ["Say", "Hangup"]
    assert latest_handoff(api, CALL)["state"] == "transferring" and len(rest.calls) == 2


def test_a_429_moving_the_caller_on_is_tried_again_not_left_on_hold(api, twilio, rest, app):
    """Twilio's 429 (error 20429, https://www.twilio.com/docs/api/errors/20429) is "never
    processed and is always safe to retry": read as final, the caller, whose attempt is
    already decided, would hear hold music until they hung up."""
    make(api, "Reception")
    make(api, "Expert", method="sip_invite", transfer_mode="consult", route="+14155550111")
    hold(twilio, api, rest, app, PSTN, destination="expert")
    hid = latest_handoff(api, CALL)["id"]
    twilio.post(f"/voice/handoff/{hid}/consult/whisper?attempt=1", human_params())
    twilio.post(f"/voice/handoff/{hid}/consult/accept?attempt=1", human_params(Digits="2"))
    rest.add(responses.POST, f"{API}/Calls/{CALL}.json", status=429,
             json={"code": 20429, "message": "Too Many Requests", "status": 429})
    expect_update(rest, CALL)
    work(app)
    moves = [body for method, url, body in sent(rest) if url == f"{API}/Calls/{CALL}.json"]
    assert len(moves) == 2  # a PSTN caller: the SIP route is bridged with <Dial>
    assert parse(moves[1]["Twiml"]).find("Dial/Sip").text.startswith("sip:reception@pbx.example.com")


def test_the_room_ending_around_a_waiting_caller_moves_them_in_the_answer(api, twilio, rest, app):
    make(api, "Reception")
    make(api, "Expert", method="sip_invite", transfer_mode="consult", route="+14155550111")
    root = hold(twilio, api, rest, app, PSTN, destination="expert")
    # The conference was ended (say, from the Console): the caller is still on the line.
    conference = root.find("Dial/Conference")
    conference_event(twilio, conference.get("statusCallback"), "participant-leave", CALL, 3, room=conference.text,
                     ParticipantCallStatus="in-progress")
    expect_update(rest, HUMAN)
    after = parse(twilio.post(path(root.find("Dial").get("action")), call_params(CALL, **PSTN)))
    assert after.find("Dial/Sip").text.startswith("sip:reception@pbx.example.com")
    work(app)
    assert sent(rest)[1] == ("POST", f"{API}/Calls/{HUMAN}.json", {"Status": "completed"})
    assert steps(api)[-2:] == [("transferring", "conference_ended"), ("transferring", None)]


def test_consult_callbacks_are_signed(api, twilio, rest, app):
    make(api, "Expert", method="sip_invite", transfer_mode="consult", route="+14155550111")
    root = start(twilio, api, PSTN)
    url = path(root.find("Dial/Conference").get("statusCallback"))
    assert twilio.post(url, {"CallSid": CALL, "StatusCallbackEvent": "participant-join"}, sign=False).status_code == 403
    hid = latest_handoff(api, CALL)["id"]
    for step in ("whisper", "accept", "call", "amd", "status", "announce"):
        assert twilio.post(f"/voice/handoff/{hid}/consult/{step}?attempt=1", human_params(),
                           sign=False).status_code == 403
    work(app)
    assert len(rest.calls) == 0


def test_extension_is_dialled_after_answer_on_ordinary_transfers(api, twilio):
    make(api, "Desk", method="sip_invite", route="+14155550111", extension="ww4021#")
    root = start(twilio, api, PSTN)
    number = root.find("Dial/Number")
    assert (number.text, number.get("sendDigits")) == ("+14155550111", "ww4021#")


def test_with_redis_down_a_consult_destination_is_transferred_without_consulting(app_on_own_valkey, own_valkey):
    client = app_on_own_valkey.test_client()
    body = {"name": "Expert", "method": "sip_invite", "transfer_mode": "consult", "route": "+14155550111",
            "extension": "1#", "encryption": "udp_rtp"}
    assert client.post("/v1/destinations", json=body, headers={"X-API-Key": API_KEY}).status_code == 201
    own_valkey.stop()
    root = parse(Twilio(client).post("/voice/handoff", call_params(CALL, **PSTN)))
    # Nothing could follow a conference now (no store, no worker): the human is dialled.
    assert root.find("Dial/Conference") is None
    assert (root.find("Dial/Number").text, root.find("Dial/Number").get("sendDigits")) == ("+14155550111", "1#")


@pytest.mark.parametrize("method", ["sip_invite", "sip_refer"])
def test_a_consult_with_no_outcome_times_out_and_the_caller_moves_on(api, twilio, rest, app, method):
    from datetime import timedelta

    from handoff import jobs
    from handoff.handoff_core import DIAL_LONGEST

    make(api, "Reception")
    make(api, "Expert", method=method, transfer_mode="consult", route="+14155550111")
    hold(twilio, api, rest, app, PSTN, destination="expert")
    services = app.extensions["handoff"]
    started = services.clock()
    services.clock = lambda: started + timedelta(seconds=181)  # past HANDOFF_TRANSFER_TIMEOUT:
    services.queue.enqueue(jobs.sweep_transfers)  # the human may still be ringing or briefed
    work(app)
    assert len(rest.calls) == 1 and steps(api)[-1] == ("transferring", "consulting")
    services.clock = lambda: started + timedelta(seconds=DIAL_LONGEST + 1)  # a call to a human: not before
    services.queue.enqueue(jobs.sweep_transfers)
    expect_update(rest, HUMAN)
    expect_update(rest, CALL)
    work(app)
    urls = sorted(url for _, url, _ in sent(rest)[1:])
    assert urls == [f"{API}/Calls/{CALL}.json", f"{API}/Calls/{HUMAN}.json"]
    moved = parse({url: body for _, url, body in sent(rest)}[f"{API}/Calls/{CALL}.json"]["Twiml"])
    assert moved.find("Dial/Sip").text.startswith("sip:reception@pbx.example.com")
    assert steps(api)[-2:] == [("transferring", "timeout"), ("transferring", None)]


def test_a_human_still_being_briefed_is_not_timed_out_on_a_refer_destination(api, twilio, rest, app):
    """A consult's human is called over REST whatever the destination's method, and Twilio
    always reports how that call ends (Calls resource, status callback): the timeout is only
    for outcomes that never come. A human who picked up near the end of a 120 s ring and is
    hearing the briefing at HANDOFF_TRANSFER_TIMEOUT (180 s) must still be able to accept."""
    from datetime import timedelta

    from handoff import jobs

    make(api, "Reception")
    make(api, "Expert", transfer_mode="consult", route="sip:expert@pbx.example.com", ring_timeout=120)
    hold(twilio, api, rest, app, destination="expert")  # method sip_refer, the default
    hid = latest_handoff(api, CALL)["id"]
    services = app.extensions["handoff"]
    started = services.clock()
    services.clock = lambda: started + timedelta(seconds=115)
    twilio.post(f"/voice/handoff/{hid}/consult/whisper?attempt=1", human_params())
    services.clock = lambda: started + timedelta(seconds=190)  # the briefing ends, they press 1
    services.queue.enqueue(jobs.sweep_transfers)
    work(app)
    joined = parse(twilio.post(f"/voice/handoff/{hid}/consult/accept?attempt=1", human_params(Digits="1")))
    assert joined.find("Dial/Conference") is not None, verbs(joined)
    assert len(rest.calls) == 1  # neither the human's leg ended nor the caller moved
    assert latest_handoff(api, CALL)["state"] == "connected"


def test_an_extension_takes_precedence_over_voicemail_detection_with_a_warning(api, twilio, rest, app):
    make(api, "Expert", method="sip_invite", transfer_mode="consult", route="+14155550111",
         extension="9", detect_voicemail=True)
    hold(twilio, api, rest, app, PSTN)
    created = sent(rest)[0][2]
    # Twilio ignores MachineDetection on a call that sends digits: asking for it would only
    # promise an AMD callback that never comes.
    assert created["SendDigits"] == "9" and "MachineDetection" not in created
    assert [w["code"] for w in latest_handoff(api, CALL)["warnings"]] == ["voicemail_detection_skipped"]


class TestASandboxCall:
    """A test number (`/voice/call?env=sandbox`) meets the sandbox draft throughout a consult."""

    @pytest.fixture
    def config(self, config):
        return config.with_overrides(config_promotion=True)

    def test_the_human_called_and_the_next_destination_are_the_drafts(self, api, twilio, rest, app):
        make(api, "Reception")
        make(api, "Backup", method="sip_invite", route="+14155550133")
        make(api, "Expert", method="sip_invite", transfer_mode="consult", route="+14155550111")
        assert api.post("/v1/config/promote").status_code == 200
        # The draft only: another number for the human, and a fallback live callers lack.
        assert api.patch("/v1/destinations/expert", json={
            "route": "+14155550122", "fallback": "backup"}).status_code == 200

        twilio.post("/voice/call?env=sandbox", call_params(CALL, **PSTN))
        root = parse(twilio.post("/voice/handoff", call_params(CALL, destination="expert", **PSTN)))
        hid = latest_handoff(api, CALL)["id"]
        conference = root.find("Dial/Conference")
        conference_event(twilio, conference.get("statusCallback"), "participant-join", CALL, 1, room=conference.text)
        expect_human_call(rest)
        work(app)
        assert sent(rest)[0][2]["To"] == "+14155550122"

        twilio.post(f"/voice/handoff/{hid}/consult/whisper?attempt=1", human_params())
        twilio.post(f"/voice/handoff/{hid}/consult/accept?attempt=1", human_params(Digits="2"))
        expect_update(rest, CALL)
        work(app)
        moved = parse(sent(rest)[1][2]["Twiml"])
        assert moved.find("Dial/Number").text == "+14155550133"
        assert moved.find("Dial").get("action") == (
            f"{BASE_URL}/voice/handoff/{hid}/status?attempt=2&tried=expert,backup")
