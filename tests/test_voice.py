"""Voice webhooks as Twilio calls them: signed, form-encoded, TwiML back."""
import json

from tests.helpers import BASE_URL, call_params, parse, verbs
from tests.helpers import add_destination as make


def handoff_of(api, call_sid="CA" + "1" * 32):
    return api.get(f"/v1/conversations/{call_sid}").get_json()["handoff"]


def test_unsigned_and_forged_requests_get_403_with_empty_body(twilio):
    assert twilio.post("/voice/handoff", call_params(), sign=False).status_code == 403
    forged = twilio.post("/voice/handoff", call_params(), headers={"X-Twilio-Signature": "Zm9yZ2Vk"}, sign=False)
    assert forged.status_code == 403 and forged.get_data() == b""


def test_signature_covers_the_query_string(twilio, app):
    params = call_params()
    signature = twilio.validator.compute_signature(BASE_URL + "/voice/handoff?reason=a", params)
    tampered = app.test_client().post("/voice/handoff?reason=b", data=params,
                                      headers={"X-Twilio-Signature": signature})
    assert tampered.status_code == 403
    ok = app.test_client().post("/voice/handoff?reason=a", data=params, headers={"X-Twilio-Signature": signature})
    assert ok.status_code == 200


def test_signature_behind_a_proxy_without_public_base_url(app, config, valkey):
    from app import create_app
    from tests.helpers import Twilio

    proxied = create_app(config.with_overrides(public_base_url=None)).test_client()
    twilio = Twilio(proxied, base="https://voice.example.org")
    params = call_params()
    signature = twilio.validator.compute_signature("https://voice.example.org/voice/call", params)
    headers = {"X-Twilio-Signature": signature, "X-Forwarded-Proto": "https", "X-Forwarded-Host": "voice.example.org"}
    assert proxied.post("/voice/call", data=params, headers=headers).status_code == 200
    assert proxied.post("/voice/call", data=params, headers={"X-Twilio-Signature": signature}).status_code == 403


def test_refer_with_rendered_headers_and_persisted_handoff(api, twilio):
    make(api, sip_headers=[{"name": "X-Caller", "value": "$caller_id"},
                           {"name": "X-Customer", "value": "$customer.id"}])
    response = twilio.post("/voice/handoff", {
        **call_params(), "destination": "billing", "reason": "refund", "utterance": "Transferring you now.",
        "data": json.dumps({"order": "A-1"}), "sip_headers": json.dumps({"X-Priority": "high"})})
    assert response.status_code == 200 and response.mimetype == "text/xml"
    root = parse(response)
    assert verbs(root) == ["Say", "Refer"]
    assert root.find("Say").text == "Transferring you now."
    sip = root.find("Refer/Sip").text
    assert sip.startswith("sip:billing@pbx.example.com?X-Caller=%2B14155550100&X-Priority=high")
    handoff = handoff_of(api)
    assert root.find("Refer").get("action") == (
        f"{BASE_URL}/voice/handoff/{handoff['id']}/status?attempt=1&tried=billing")
    assert handoff["state"] == "transferring" and handoff["reason"] == "refund"
    assert handoff["data"] == {"order": "A-1"} and handoff["channel"] == "voice"
    assert handoff["sip_headers"] == {"X-Caller": "+14155550100", "X-Priority": "high"}
    assert handoff["destination"] == {"id": "billing", "name": "Billing", "method": "sip_refer",
                                      "route": "sip:billing@pbx.example.com"}
    assert [h["state"] for h in handoff["history"]] == ["requested", "transferring"]
    assert handoff["history"][1]["detail"] == {"destination": "billing", "attempt": 1}
    assert [w["code"] for w in handoff["warnings"]] == ["missing_variable"]
    assert api.get(f"/v1/handoffs/{handoff['id']}").get_json()["id"] == handoff["id"]


def test_inbound_sip_headers_become_state_and_feed_templates(api, twilio):
    make(api, sip_headers=[{"name": "X-Account", "value": "$x_account"}])
    call = call_params(**{"SipHeader_X-Account": "ACME-7"})
    assert twilio.post("/voice/call", call).status_code == 200
    conversation = api.get(f"/v1/conversations/{call['CallSid']}").get_json()
    assert conversation["state"]["sip_headers"] == {"X-Account": "ACME-7"}
    assert conversation["from"] == "sip:+14155550100@sbc.example.com" and conversation["channel"] == "voice"
    root = parse(twilio.post("/voice/handoff", call))
    assert root.find("Refer/Sip").text.endswith("?X-Account=ACME-7")


def test_invite_over_tls_srtp_and_to_a_number(api, twilio):
    make(api, name="Queue", method="sip_invite", route="2001", ring_timeout=20,
         sip_headers=[{"name": "X-Q", "value": "1"}])
    make(api, name="Mobile", method="sip_invite", route="+14155550123", encryption="udp_rtp")
    root = parse(twilio.post("/voice/handoff", {**call_params(), "destination": "queue"}))
    dial = root.find("Dial")
    assert dial.get("timeout") == "20"
    assert dial.find("Sip").text == "sip:2001@sbc.example.com;transport=tls;secure=true?X-Q=1"
    root = parse(twilio.post("/voice/handoff", {**call_params("CA" + "2" * 32), "destination": "Mobile"}))
    assert root.find("Dial/Number").text == "+14155550123"


def test_bye_hands_the_leg_back(api, twilio):
    make(api, name="SBC", method="sip_bye")
    root = parse(twilio.post("/voice/handoff", {**call_params(), "utterance": "One moment."}))
    assert verbs(root) == ["Say", "Hangup"]


def test_unknown_destination_goes_to_default_with_warning(api, twilio):
    make(api)
    root = parse(twilio.post("/voice/handoff", {**call_params(), "destination": "nowhere"}))
    assert root.find("Refer/Sip").text == "sip:billing@pbx.example.com"
    assert [w["code"] for w in handoff_of(api)["warnings"]] == ["unknown_destination"]


def test_no_destinations_apologises_and_hangs_up(api, twilio):
    root = parse(twilio.post("/voice/handoff", call_params()))
    assert verbs(root) == ["Say", "Hangup"]
    assert handoff_of(api)["state"] == "failed"


def test_bad_input_still_transfers(api, twilio):
    make(api)
    root = parse(twilio.post("/voice/handoff", {**call_params(), "data": "{not json",
                                                "sip_headers": json.dumps({"Evil\r\n": "x"})}))
    assert verbs(root) == ["Refer"]
    codes = [w["code"] for w in handoff_of(api)["warnings"]]
    assert codes == ["bad_data", "bad_sip_headers"]
    assert handoff_of(api)["data"] == {"raw": "{not json"}


def test_missing_call_sid_still_gets_twiml(api, twilio):
    make(api)
    root = parse(twilio.post("/voice/handoff", {"From": "sip:+1415@sbc", "SipCallId": "x@sbc"}))
    assert verbs(root) == ["Refer"]


def test_inbound_call_goes_to_the_agent_url(app, config, api):
    from app import create_app
    from tests.helpers import Twilio

    with_agent = create_app(config.with_overrides(agent_url="https://agent.example.com/twiml"))
    root = parse(Twilio(with_agent.test_client()).post("/voice/call", call_params()))
    assert verbs(root) == ["Redirect"] and root.find("Redirect").text == "https://agent.example.com/twiml"


def test_unexpected_error_still_transfers_to_default(api, twilio, monkeypatch):
    make(api)
    from handoff.handoffs import Handoffs

    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(Handoffs, "start_voice", broken)
    response = twilio.post("/voice/handoff", call_params())
    assert response.status_code == 200
    assert parse(response).find("Refer/Sip").text == "sip:billing@pbx.example.com"
