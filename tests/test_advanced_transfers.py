"""Warm transfers, voicemail detection, failure dispositions, call legs, timeouts, toll fraud."""
import pytest
from rq import SimpleWorker

from app import create_app
from tests.helpers import Twilio, call_params, latest_handoff, parse, path, verbs
from tests.helpers import add_destination as make


@pytest.fixture
def over_http():
    """These stories go over real HTTP (a threaded server on loopback)."""
    return True

CALL = "CA" + "6" * 32


def start(twilio, **params):
    return parse(twilio.post("/voice/handoff", {**call_params(CALL), **params}))


def test_warm_modes_and_voicemail_detection_need_sip_invite(api):
    refused = api.post("/v1/destinations", json={"name": "W", "route": "sip:w@p", "transfer_mode": "warm_message"})
    assert refused.status_code == 422 and "sip_invite" in refused.get_json()["error"]["fields"]["transfer_mode"][0]
    refused = api.post("/v1/destinations", json={"name": "V", "route": "sip:v@p", "detect_voicemail": True})
    assert refused.status_code == 422 and "detect_voicemail" in refused.get_json()["error"]["fields"]
    assert api.post("/v1/destinations", json={"name": "X", "route": "sip:x@p", "on_failure": "explode"}).status_code == 422


def test_summary_header_carries_reason_utterance_and_last_turns_capped(api, twilio):
    make(api, "Desk", transfer_mode="blind_with_summary_header",
         sip_headers=[{"name": "X-Big", "value": "$big"}])
    twilio.post("/voice/call", call_params(CALL))
    for role, text in (("user", "my card was charged twice"), ("agent", "I see two charges")):
        api.post(f"/v1/conversations/{CALL}/transcript", json={"role": role, "text": text})
    api.patch(f"/v1/conversations/{CALL}", json={"state": {"big": "z" * 500}})
    root = start(twilio, reason="double_charge", utterance="Transferring you.")
    record = handoff(api)
    summary = record["sip_headers"]["X-Transfer-Summary"]
    assert summary.startswith("reason: double_charge; said: Transferring you.; last:")
    assert "user: my card was charged twice | agent: I see two charges" in summary
    assert len(summary) <= 300
    uri = root.find("Refer/Sip").text
    assert "X-Transfer-Summary=reason:%20double_charge" in uri
    assert len(uri.split("?", 1)[1]) < 1024


def test_warm_message_whispers_to_the_human_before_the_bridge(api, twilio):
    make(api, "Team", method="sip_invite", transfer_mode="warm_message", encryption="udp_rtp",
         sip_headers=[{"name": "X-Customer-Tier", "value": "$tier"}])
    twilio.post("/voice/call", call_params(CALL))
    api.patch(f"/v1/conversations/{CALL}", json={"state": {"tier": "gold"}})
    root = start(twilio, reason="refund_request")
    sip = root.find("Dial/Sip")
    assert sip.get("url") and sip.get("statusCallback") is None
    assert twilio.post(path(sip.get("url")), call_params(CALL), sign=False).status_code == 403
    whisper = parse(twilio.post(path(sip.get("url")), {**call_params("CA" + "e" * 32), "AnsweredBy": "human"}))
    assert verbs(whisper) == ["Say"]
    text = whisper.find("Say").text
    assert "Reason: refund request." in text and "Customer Tier: gold." in text
    assert "Caller: + 1 4 1 5 5 5 5 0 1 0 0." in text
    assert handoff(api)["state"] == "connected"


def test_warm_accept_gate(api, twilio):
    make(api, "Expert", method="sip_invite", transfer_mode="warm_accept", encryption="udp_rtp")
    make(api, "Backup", method="sip_invite", encryption="udp_rtp")
    api.patch("/v1/destinations/expert", json={"fallback": "backup"})
    root = start(twilio, destination="expert")
    whisper = parse(twilio.post(path(root.find("Dial/Sip").get("url")), call_params("CA" + "e" * 32)))
    assert verbs(whisper) == ["Gather", "Hangup"]
    gather = whisper.find("Gather")
    assert gather.get("numDigits") == "1" and "Press 1" in gather.find("Say").text
    refused = parse(twilio.post(path(gather.get("action")), {**call_params("CA" + "e" * 32), "Digits": "2"}))
    assert verbs(refused) == ["Hangup"]
    # Twilio then reports the dial; a refused leg fails the attempt (not_accepted), the chain moves on.
    nxt = parse(twilio.post(path(root.find("Dial").get("action")), {**call_params(CALL), "DialCallStatus": "completed"}))
    assert nxt.find("Dial/Sip").text == "sip:backup@pbx.example.com"
    assert handoff(api)["history"][-1]["detail"]["after"]["result"] == "not_accepted"
    accepted_root = nxt
    sip = accepted_root.find("Dial/Sip")
    assert sip.get("url") is None and sip.get("statusCallbackEvent") == "answered"
    twilio.post(path(sip.get("statusCallback")), {**call_params("CA" + "f" * 32), "CallStatus": "in-progress"})
    assert handoff(api)["state"] == "connected"


def test_pressing_one_accepts(api, twilio):
    make(api, "Expert", method="sip_invite", transfer_mode="warm_accept", encryption="udp_rtp")
    root = start(twilio)
    whisper = parse(twilio.post(path(root.find("Dial/Sip").get("url")), call_params("CA" + "e" * 32)))
    accepted = parse(twilio.post(path(whisper.find("Gather").get("action")),
                                 {**call_params("CA" + "e" * 32), "Digits": "1"}))
    assert verbs(accepted) == []  # an empty answer: Twilio bridges the legs
    assert handoff(api)["state"] == "connected"


def test_a_voicemail_box_never_answers_a_transfer(api, twilio):
    make(api, "Reception")
    make(api, "Sales", method="sip_invite", detect_voicemail=True, encryption="udp_rtp")
    root = start(twilio, destination="sales")
    sip = root.find("Dial/Sip")
    assert sip.get("machineDetection") == "Enable" and sip.get("url")
    screening = parse(twilio.post(path(sip.get("url")), {**call_params("CA" + "e" * 32), "AnsweredBy": "machine_start"}))
    assert verbs(screening) == ["Hangup"]
    nxt = parse(twilio.post(path(root.find("Dial").get("action")), {**call_params(CALL), "DialCallStatus": "completed"}))
    assert nxt.find("Refer/Sip").text == "sip:reception@pbx.example.com"
    assert handoff(api)["history"][-1]["detail"]["after"]["result"] == "voicemail"


@pytest.mark.parametrize("disposition", ["hangup", "voicemail", "return_to_agent"])
def test_failure_dispositions(api, twilio, app, config, client_of, disposition):
    make(api, "Reception")
    make(api, "Desk", on_failure=disposition)
    agent_app = create_app(config.with_overrides(agent_url="https://agent.example.com/voice?bot=1"))
    caller = Twilio(client_of(agent_app))
    root = parse(caller.post("/voice/handoff", {**call_params(CALL), "destination": "desk"}))
    after = parse(caller.post(path(root.find("Refer").get("action")), {**call_params(CALL), "ReferCallStatus": "busy"}))
    record = handoff(api)
    if disposition == "hangup":
        assert verbs(after) == ["Say", "Hangup"] and record["state"] == "failed"
        assert record["history"][-1]["detail"]["disposition"] == "hangup"
    elif disposition == "return_to_agent":
        assert verbs(after) == ["Redirect"]
        assert after.find("Redirect").text == (
            f"https://agent.example.com/voice?bot=1&handoff_id={record['id']}&reason=busy")
        assert record["state"] == "failed"
    else:
        assert verbs(after) == ["Say", "Record", "Say", "Hangup"]
        record_url = after.find("Record").get("action")
        done = parse(caller.post(path(record_url), {**call_params(CALL), "RecordingUrl": "https://api.twilio.com/rec/RE1",
                                                    "RecordingDuration": "14"}))
        assert verbs(done) == ["Say", "Hangup"]
        record = handoff(api)
        assert record["state"] == "completed"
        assert record["data"]["voicemail"] == {"url": "https://api.twilio.com/rec/RE1", "duration": 14}
        events = api.get("/v1/handoffs/events").get_json()["items"]
        assert events[-1] == {**events[-1], "handoff_id": record["id"], "state": "completed"}


@pytest.mark.parametrize("agent_url", ["wss://agent.example.com/relay", "ws://agent.example.com/relay"])
def test_return_to_a_relay_agent_goes_on_down_the_chain_instead_of_redirecting(api, config, client_of, agent_url):
    """A ConversationRelay agent is a WebSocket, which <Redirect> cannot fetch (Twilio's
    Redirect page: "an absolute or relative URL" of TwiML), ws:// as much as wss://."""
    make(api, "Reception")
    make(api, "Desk", on_failure="return_to_agent")
    caller = Twilio(client_of(create_app(config.with_overrides(agent_url=agent_url))))
    root = parse(caller.post("/voice/handoff", {**call_params(CALL), "destination": "desk"}))
    after = parse(caller.post(path(root.find("Refer").get("action")), {**call_params(CALL), "ReferCallStatus": "busy"}))
    assert after.find("Refer/Sip").text == "sip:reception@pbx.example.com"
    assert "no_agent_url" in [w["code"] for w in handoff(api)["warnings"]]


def test_a_pstn_caller_sent_to_refer_is_bridged_instead(api, twilio):
    make(api, "Billing", sip_headers=[{"name": "X-Caller", "value": "$caller_id"}])
    pstn = call_params(CALL, From="+14155550100", To="+14155550199", SipCallId=None, SipDomain=None)
    root = parse(twilio.post("/voice/handoff", pstn))
    assert verbs(root) == ["Dial"]
    assert root.find("Dial/Sip").text == "sip:billing@pbx.example.com;transport=tls;secure=true?X-Caller=%2B14155550100"
    assert [w["code"] for w in handoff(api)["warnings"]] == ["refer_unsupported_leg"]
    client = call_params("CA" + "c" * 32, From="client:alice", To="+14155550199", SipCallId=None, SipDomain=None)
    assert verbs(parse(twilio.post("/voice/handoff", client))) == ["Dial"]


def test_a_refer_route_over_udp_is_bridged_for_a_phone_caller_as_it_says(api, twilio):
    """Bridged with <Dial> for a PSTN caller, a REFER destination's route that names its
    transport keeps it: `;secure=true` (SRTP) belongs with `;transport=tls` (Twilio's Secure
    Media page, https://www.twilio.com/docs/voice/secure-media), which such a route is not."""
    make(api, "Desk", route="sip:desk@pbx.example.com;transport=udp")
    pstn = call_params(CALL, From="+14155550100", To="+14155550199", SipCallId=None, SipDomain=None)
    root = parse(twilio.post("/voice/handoff", pstn))
    assert root.find("Dial/Sip").text == "sip:desk@pbx.example.com;transport=udp"


def test_a_transfer_with_no_outcome_times_out(api, twilio, app):
    from datetime import timedelta

    from handoff import jobs

    make(api, "Billing")
    start(twilio)
    services = app.extensions["handoff"]
    services.queue.enqueue(jobs.sweep_transfers)  # the worker starts this chain at boot
    SimpleWorker([services.queue], connection=services.queue.connection).work(burst=True)
    assert handoff(api)["state"] == "transferring"  # not due yet
    started = services.clock()
    services.clock = lambda: started + timedelta(seconds=181)  # HANDOFF_TRANSFER_TIMEOUT is 180 s
    registry = services.queue.scheduled_job_registry
    assert registry.get_job_ids() == [jobs.SWEEP_JOB_ID]  # the sweep scheduled its next run
    services.queue.enqueue_job(services.queue.fetch_job(jobs.SWEEP_JOB_ID))  # the scheduler's move, now
    SimpleWorker([services.queue], connection=services.queue.connection).work(burst=True)
    record = handoff(api)
    assert record["state"] == "failed" and record["history"][-1]["detail"]["reason"] == "timeout"
    assert api.get("/v1/handoffs/events").get_json()["items"][-1]["state"] == "failed"


def test_a_screened_dial_is_not_timed_out_while_twilio_may_still_ring_and_screen_it(api, twilio, app):
    """A <Dial> may ring up to 120 s, wait 30 s for the machine check, then whisper and wait
    for a 1 (the Dial, Number and Sip pages: https://www.twilio.com/docs/voice/twiml/dial):
    more than the 180 s timeout. Failed at 181 s, a human pressing 1 would reach a caller
    whose handoff says failed, and Twilio's no-answer after it would hang the caller up."""
    from datetime import timedelta

    from handoff.handoff_core import DIAL_LONGEST
    from handoff.handoffs import Handoffs

    make(api, "Expert", method="sip_invite", transfer_mode="warm_accept", detect_voicemail=True,
         ring_timeout=120, encryption="udp_rtp")
    start(twilio)
    services = app.extensions["handoff"]
    started = services.clock()
    services.clock = lambda: started + timedelta(seconds=181)
    assert Handoffs(services).expire_due() == 0 and handoff(api)["state"] == "transferring"
    services.clock = lambda: started + timedelta(seconds=DIAL_LONGEST + 1)
    assert Handoffs(services).expire_due() == 1 and handoff(api)["state"] == "failed"


def test_a_refer_that_fails_after_its_timeout_moves_the_caller_on_instead_of_hanging_up(api, twilio, app):
    """<Refer> waits for the final NOTIFY before it requests its action
    (https://www.twilio.com/docs/voice/twiml/refer), which a PBX that queues the transfer may
    send minutes later. The sweep has failed the handoff by then; a busy after it means the
    caller is still on the call, so the chain goes on."""
    from datetime import timedelta

    from handoff.handoffs import Handoffs

    make(api, "Billing")
    make(api, "Backup")
    api.patch("/v1/destinations/billing", json={"fallback": "backup"})
    root = start(twilio, destination="billing")
    services = app.extensions["handoff"]
    started = services.clock()
    services.clock = lambda: started + timedelta(seconds=181)  # HANDOFF_TRANSFER_TIMEOUT is 180 s
    assert Handoffs(services).expire_due() == 1 and handoff(api)["state"] == "failed"
    late = parse(twilio.post(path(root.find("Refer").get("action")), {
        **call_params(CALL), "ReferCallStatus": "busy", "ReferSipResponseCode": "202", "NotifySipResponseCode": "486"}))
    assert late.find("Refer/Sip").text == "sip:backup@pbx.example.com"
    record = handoff(api)
    assert [(e["state"], e["detail"].get("reason")) for e in record["history"][-2:]] == [
        ("failed", "timeout"), ("transferring", None)]
    assert record["history"][-1]["detail"]["after"]["result"] == "busy"


def test_a_pending_chat_handoff_does_not_hold_back_a_transfer_timeout(api, twilio, app):
    """Deadlines are streams whose entry ids are due times, taken in order: each kind keeps
    its own, so a chat's hour-long pending timeout set first does not delay a call's."""
    from datetime import timedelta

    from handoff.handoffs import Handoffs

    make(api, "Billing")
    chat = api.post("/v1/conversations", json={"channel": "webchat"}).get_json()["id"]
    pending = api.post(f"/v1/conversations/{chat}/handoff", json={}).get_json()
    assert pending["state"] == "pending"
    start(twilio)
    services = app.extensions["handoff"]
    started = services.clock()
    services.clock = lambda: started + timedelta(seconds=181)  # HANDOFF_TRANSFER_TIMEOUT is 180 s
    assert Handoffs(services).expire_due() == 1
    assert handoff(api)["state"] == "failed"
    assert api.get(f"/v1/handoffs/{pending['id']}").get_json()["state"] == "pending"


def test_the_sweep_takes_the_deadlines_that_fell_due_first_whichever_stream_holds_them(api, twilio, app):
    """A sweep handles at most `limit` deadlines: the oldest due, not a transfer stream's
    first, or a backlog of transfer deadlines would hold back every chat's pending timeout."""
    from datetime import timedelta

    from handoff.handoffs import Handoffs

    make(api, "Billing")
    services = app.extensions["handoff"]
    started = services.clock()
    chat = api.post("/v1/conversations", json={"channel": "webchat"}).get_json()["id"]
    pending = api.post(f"/v1/conversations/{chat}/handoff", json={}).get_json()  # due after 3600 s
    services.clock = lambda: started + timedelta(seconds=3500)
    start(twilio)  # its transfer is due after 180 s more: at 3680 s
    services.clock = lambda: started + timedelta(seconds=3700)
    assert Handoffs(services).expire_due(limit=1) == 1
    assert api.get(f"/v1/handoffs/{pending['id']}").get_json()["state"] == "abandoned"
    assert handoff(api)["state"] == "transferring"
    assert Handoffs(services).expire_due(limit=1) == 1
    assert handoff(api)["state"] == "failed"


def test_a_deadline_due_before_the_newest_one_is_filed_at_that_time(services):
    """A shorter timeout configured since: the deadline falls due with the newest one, late."""
    from handoff.store.base import queue_deadline

    with services.store.redis.pipeline() as pipe:
        queue_deadline(pipe, "HO1:1", 1_000.0)
        queue_deadline(pipe, "HO2:1", 900.0)
        pipe.execute()
    assert services.store.due_transfers(999.9) == []
    assert [member for member, _ in services.store.due_transfers(1_000.0)] == ["HO1:1", "HO2:1"]


def test_a_deadline_due_before_one_already_swept_is_still_filed(api, twilio, app):
    """A stream keeps the last id it gave after its entries are deleted and takes none at or
    below it: a deadline written by a process whose clock is behind the sweeping worker's by
    more than the timeout falls due at the next sweep instead of failing the write."""
    from datetime import timedelta

    from handoff.handoffs import Handoffs

    make(api, "Billing")
    services = app.extensions["handoff"]
    started = services.clock()
    start(twilio)
    services.clock = lambda: started + timedelta(seconds=400)  # the worker's clock
    assert Handoffs(services).expire_due() == 1  # its deadline was the stream's last entry
    services.clock = lambda: started  # a web process's, 400 s behind
    second = "CA" + "7" * 32
    root = parse(twilio.post("/voice/handoff", call_params(second)))
    assert root.find("Refer") is not None
    assert latest_handoff(api, second)["state"] == "transferring"
    services.clock = lambda: started + timedelta(seconds=400)
    assert Handoffs(services).expire_due() == 1
    assert latest_handoff(api, second)["state"] == "failed"


def test_a_deadline_stored_before_in_a_sorted_set_still_times_out(api, twilio, app):
    from datetime import timedelta

    from handoff.handoffs import Handoffs
    from handoff.store import Keys

    make(api, "Billing")
    start(twilio)
    services = app.extensions["handoff"]
    redis, older = services.store.redis, Keys.as_sorted_set(Keys.transfer_deadlines)
    [(entry_id, fields)] = redis.xrange(Keys.transfer_deadlines)
    redis.xdel(Keys.transfer_deadlines, entry_id)
    redis.zadd(older, {fields["m"]: int(entry_id.split("-")[0]) / 1000})  # as versions before wrote it
    started = services.clock()
    services.clock = lambda: started + timedelta(seconds=181)
    assert Handoffs(services).expire_due() == 1
    assert handoff(api)["state"] == "failed" and not redis.exists(older)


def test_a_timeout_after_the_outcome_changes_nothing(api, twilio, app):
    make(api, "Billing")
    root = start(twilio)
    twilio.post(path(root.find("Refer").get("action")), {**call_params(CALL), "ReferCallStatus": "in-progress"})
    from handoff.handoffs import Handoffs

    assert Handoffs(app.extensions["handoff"]).expire(handoff(api)["id"], 1) is False
    assert handoff(api)["state"] == "connected"


def test_route_overrides_only_within_allowed_patterns(api, app, config, twilio, client_of):
    make(api, "Billing")
    cid = api.post("/v1/conversations", json={"channel": "webchat"}).get_json()["id"]
    refused = api.post(f"/v1/conversations/{cid}/handoff", json={"route": "+19005550100"})
    assert refused.status_code == 422 and "ALLOWED_ROUTE_PATTERNS" in refused.get_json()["error"]["fields"]["route"][0]
    # Over voice the caller still moves: the override is ignored, with a warning.
    root = start(twilio, route="sip:attacker@evil.example")
    assert root.find("Refer/Sip").text == "sip:billing@pbx.example.com"
    assert [w["code"] for w in handoff(api)["warnings"]] == ["route_refused"]
    allowed = Twilio(client_of(create_app(config.with_overrides(allowed_route_patterns=("sip:*@pbx.example.com",)))))
    root = parse(allowed.post("/voice/handoff", {**call_params("CA" + "b" * 32), "route": "sip:vip@pbx.example.com",
                                                 "sip_headers": '{"X-Route": "sip:evil@x"}'}))
    assert root.find("Refer/Sip").text == "sip:vip@pbx.example.com?X-Route=sip:evil%40x"  # a header is never a route


def handoff(api):
    return latest_handoff(api, CALL)
