"""What PolyAI's own pages show, run here unchanged. Each test names the page it follows, in
PolyAI's public documentation (https://docs.poly.ai, whose source is the repository
PolyAI-LDN/polyai-mintlify-doc: the page path is given after the URL)."""
from urllib.parse import unquote_plus

import pytest
import responses

import handoff
from handoff import Conversation
from handoff.services import Services
from tests.helpers import API_KEY, call_params, parse, work
from tests.polyai_schemas import check

BASE = "/v1/ws-1234/PROJECT-abcd"
KEY = {"x-api-key": API_KEY}
CALL = "CA" + "8" * 32
TWILIO_CALL_URL = f"https://api.twilio.com/2010-04-01/Accounts/{'AC' + '0' * 32}/Calls/{CALL}.json"
YAML = {"Content-Type": "application/yaml"}


@pytest.fixture
def configured(api):
    api.post("/v1/destinations", json={"name": "Front desk", "route": "sip:front@pbx.example.com"})
    api.post("/v1/destinations", json={"name": "BillingQueue", "route": "sip:billing@pbx.example.com"})
    api.post("/v1/destinations", json={"name": "CALL_CENTER", "route": "12345"})


def sent_twiml():
    """The TwiML the worker redirected the live call to (Twilio's Calls API)."""
    body = dict(x.split("=", 1) for x in responses.calls[-1].request.body.split("&"))
    return parse(unquote_plus(body["Twiml"]))


# -- conv.call_handoff ------------------------------------------------------------------------
def test_call_handoff_reason_defaults_to_the_destination_name(app, client, configured):
    """https://docs.poly.ai/tools/classes/conv-object (tools/classes/conv-object.mdx, call_handoff):
    "reason (str, optional) – escalation reason. Defaults to the destination name." The
    release notes' form (releases/notes/25.04.mdx) names no destination: the default's."""
    services = app.extensions["handoff"]
    created = check("chat/create", client.post(f"{BASE}/chat/create", headers=KEY, json={
        "integration_attributes": {"shared_id": "web-1"}}))
    conv = Conversation(created["conversation_id"], services=services)

    record = conv.call_handoff(destination="BillingQueue")
    assert record["reason"] == "BillingQueue"
    # What the live-chat connector reads (the Handoff API) carries it too.
    state = check("handoff_state", client.get(f"{BASE}/handoff_state?shared_id=web-1", headers=KEY))
    assert state["data"]["handoff_reason"] == "BillingQueue"

    other = Conversation.create(channel="webchat", services=services)
    assert other.call_handoff(utterance="Let me transfer you.")["reason"] == "Front desk"  # the default
    assert other.call_handoff(destination="billingqueue", reason="policy_violation")["reason"] == "policy_violation"


# -- a function's return value --------------------------------------------------------------
@responses.activate
def test_a_returned_refer_goes_to_refer_to_not_to_the_callers_number(app, twilio, config, configured):
    """https://docs.poly.ai/integrations/voice/sip/custom-sip (integrations/voice/sip/custom-sip.mdx,
    "SIP REFER"): `phone_number` is the number PolyAI used (the caller's), `refer_to` the
    SIP URI or number the call goes to."""
    responses.add(responses.POST, TWILIO_CALL_URL, json={"sid": CALL, "status": "in-progress"})
    twilio.post("/voice/call", call_params(CALL, From="+14155550100"))
    services = Services(config.with_overrides(allowed_route_patterns=("sip:*@example.com",)))
    conv = Conversation(CALL, services=services)

    record = handoff.from_polyai_return(conv, {"handoff": {"refer": {
        "phone_number": conv.caller_number, "refer_to": "sip:support@example.com",
        "sip_headers": {"X-Caller-ID": conv.caller_number}}}})
    assert record["sip_headers"]["X-Caller-ID"] == "+14155550100"
    work(app)
    assert sent_twiml().find("Refer/Sip").text.startswith("sip:support@example.com?")


@responses.activate
def test_a_returned_number_that_is_the_destinations_own_route_needs_no_override(app, twilio, configured):
    """https://docs.poly.ai/tools/return-values (tools/return-values.mdx, `handoff`): "The `type`
    and `reason` fields match your configured handoff destination" - returning that
    destination's own number is not a route override, so ALLOWED_ROUTE_PATTERNS (unset
    here) is not asked."""
    responses.add(responses.POST, TWILIO_CALL_URL, json={"sid": CALL, "status": "in-progress"})
    twilio.post("/voice/call", call_params(CALL))
    services = app.extensions["handoff"]
    conv = Conversation(CALL, services=services)

    record = handoff.from_polyai_return(conv, {
        "utterance": "Let me transfer you to a specialist who can help with that.",
        "handoff": {"type": "CALL_CENTER", "reason": "SPEAK_TO", "refer": {"phone_number": "12345"}}})
    assert record["destination"]["name"] == "CALL_CENTER" and record["reason"] == "SPEAK_TO"
    work(app)
    assert sent_twiml().find("Refer/Sip").text == "sip:12345@sbc.example.com"

    # Another number is still an override, refused without ALLOWED_ROUTE_PATTERNS.
    with pytest.raises(handoff.errors.ValidationFailed):
        handoff.from_polyai_return(conv, {"handoff": {"type": "CALL_CENTER", "reason": "SPEAK_TO",
                                                      "refer": {"phone_number": "+15559990000"}}})


@responses.activate
def test_a_returned_invite_to_a_sip_uri_is_dialled_as_that_uri(app, api, twilio, config, configured):
    """https://docs.poly.ai/integrations/voice/sip/custom-sip (integrations/voice/sip/custom-sip.mdx,
    "SIP INVITE"): `phone_number` is a "SIP URI or PSTN number"."""
    api.post("/v1/destinations", json={"name": "Bridge", "method": "sip_invite",
                                        "route": "sip:bridge@pbx.example.com;transport=tls"})
    responses.add(responses.POST, TWILIO_CALL_URL, json={"sid": CALL, "status": "in-progress"})
    twilio.post("/voice/call", call_params(CALL))
    services = Services(config.with_overrides(allowed_route_patterns=("sip:*@pbx.example.com",)))
    conv = Conversation(CALL, services=services)
    handoff.from_polyai_return(conv, {"handoff": {"invite": {
        "phone_number": "sip:desk@pbx.example.com", "outbound_endpoint": "pbx.example.com",
        "sip_headers": {"X-Call-Type": "Support"}}}})
    work(app)
    assert sent_twiml().find("Dial/Sip").text == (
        "sip:desk@pbx.example.com;transport=tls;secure=true?X-Call-Type=Support")


# -- ADK config/handoffs.yaml ---------------------------------------------------------------------
def test_an_adk_invite_to_a_sip_uri_imports_as_that_uri(api):
    """https://docs.poly.ai/adk/reference/handoffs (adk/reference/handoffs.mdx): an `invite` has
    `phone_number`, `outbound_endpoint`, `outbound_encryption`; the phone number may be the
    SIP URI itself (https://docs.poly.ai/integrations/voice/sip/custom-sip: "SIP URI or PSTN
    number")."""
    text = """handoffs:
  - name: desk
    description: Bridged call to the desk
    is_default: true
    sip_config:
      method: invite
      phone_number: "sip:desk@pbx.example.com"
      outbound_endpoint: pbx.example.com
      outbound_encryption: TLS/SRTP
  - name: plain
    sip_config:
      method: invite
      phone_number: sip:plain@legacy.example.com
      outbound_encryption: UDP/RTP
"""
    done = api.post("/v1/destinations/import", data=text, headers=YAML)
    assert done.status_code == 200, done.get_json()
    items = {d["name"]: d for d in api.get("/v1/destinations").get_json()["items"]}
    assert items["desk"]["route"] == "sip:desk@pbx.example.com;transport=tls"
    assert items["plain"]["route"] == "sip:plain@legacy.example.com" and items["plain"]["encryption"] == "udp_rtp"


# -- Conversations API v3 ------------------------------------------------------------------------
def test_conversations_are_listed_per_client_env(client, twilio, api):
    """https://docs.poly.ai/api-reference/conversations/introduction (api-reference/conversations/v3/openapi.json):
    `client_env` is one of sandbox, pre-release, live, default live; each conversation says its
    `environment`. A call to a test number (`/voice/call?env=sandbox`) is a sandbox one."""
    live = api.post("/v1/conversations", json={"channel": "voice"}).get_json()
    twilio.post("/voice/call?env=sandbox", call_params(CALL))

    def listed(query=""):
        response = client.get(f"/v3/ws-1234/PROJECT-abcd/conversations{query}", headers=KEY)
        return [(c["id"], c["environment"]) for c in check("conversations", response)["conversations"]]

    assert listed() == [(live["id"], "live")] and listed("?client_env=live") == [(live["id"], "live")]
    assert listed("?client_env=sandbox") == [(CALL, "sandbox")]
    assert listed("?client_env=pre-release") == []
    bogus = client.get("/v3/ws-1234/PROJECT-abcd/conversations?client_env=staging", headers=KEY)
    assert bogus.status_code == 400 and "client_env" in check("conversations", bogus)["error_message"]


# -- Handoff API ------------------------------------------------------------------------------------
def test_handoff_state_by_shared_id_reads_what_the_agent_stored_before_any_handoff(app, api, client):
    """https://docs.poly.ai/voice-channel/handoffs (voice-channel/handoffs.mdx, "Handoff context
    handover"): the Handoff API returns "the handoff object stored in conv.state.handoff ...
    retrievable by id or shared_id"; https://docs.poly.ai/api-reference/handoff/introduction
    (api-reference/handoff/openapi.json): "If both are provided, shared_id takes precedence"."""
    services = app.extensions["handoff"]
    created = check("chat/create", client.post(f"{BASE}/chat/create", headers=KEY, json={
        "integration_attributes": {"shared_id": "crm-77"}}))
    conv = Conversation(created["conversation_id"], services=services)
    conv.state.handoff = {"customer_id": "12345", "handoff_reason": "successfully_identified"}

    for query in ("shared_id=crm-77", f"shared_id=crm-77&id={conv.id}", "shared_id=crm-77&id=CO-other"):
        body = check("handoff_state", client.get(f"{BASE}/handoff_state?{query}", headers=KEY))
        assert body == {"id": conv.id, "shared_id": "crm-77", "data": {
            "customer_id": "12345", "handoff_reason": "successfully_identified"}}

    # The same when the shared id and the state come through the native API.
    other = api.post("/v1/conversations", json={"channel": "voice"}).get_json()
    api.patch(f"/v1/conversations/{other['id']}", json={"shared_id": "five9-1",
                                                        "state": {"handoff": {"queue": "gold"}}})
    body = check("handoff_state", client.get(f"{BASE}/handoff_state?shared_id=five9-1", headers=KEY))
    assert body == {"id": other["id"], "shared_id": "five9-1", "data": {"queue": "gold"}}
    missing = client.get(f"{BASE}/handoff_state?shared_id=nobody", headers=KEY)
    assert missing.status_code == 404 and check("handoff_state", missing)["error_message"]


def test_conversations_page_by_offset_too(api, client):
    """https://docs.poly.ai/api-reference/conversations/introduction ("Offset-based pagination
    (legacy)"; api-reference/conversations/v3/openapi.json `offset`, `next_offset`): "When
    results exceed the limit, the response includes `next_offset`"; a `cursor` wins over
    `offset`."""
    ids = [api.post("/v1/conversations", json={"channel": "webchat"}).get_json()["id"] for _ in range(5)]

    def page(query):
        response = client.get(f"/v3/ws-1234/PROJECT-abcd/conversations?{query}", headers=KEY)
        return check("conversations", response)

    seen, offset = [], 0
    while offset is not None:
        body = page(f"limit=2&offset={offset}")
        seen += [c["id"] for c in body["conversations"]]
        offset = body.get("next_offset")
    assert seen == ids
    first = page("limit=2")
    assert first["next_offset"] == 2 and [c["id"] for c in first["conversations"]] == ids[:2]
    by_cursor = page(f"limit=2&offset=4&cursor={first['cursor']}")
    assert [c["id"] for c in by_cursor["conversations"]] == ids[2:4] and "next_offset" not in by_cursor
    assert "next_offset" not in page("limit=5") and page("offset=9")["conversations"] == []
    for bad in ("offset=-1", "offset=x"):
        refused = client.get(f"/v3/ws-1234/PROJECT-abcd/conversations?{bad}", headers=KEY)
        assert refused.status_code == 400 and "offset" in check("conversations", refused)["error_message"]


def test_conversations_filters_by_variant_and_searches_transcripts(api, client):
    """https://docs.poly.ai/api-reference/conversations/introduction ("Retrieval modes",
    "Optional filters"; api-reference/conversations/v3/openapi.json): `variant_id`,
    `variant_name` (one of the two); `query_type=transcript` with `query` (and `turn_type`
    user or agent) is a full-text search, `start_time` and `end_time` then required,
    `query_type` and `sample` exclusive. What this service cannot do (semantic search, random
    sampling) is refused, not ignored."""
    chat = lambda body: check("chat/create", client.post(f"{BASE}/chat/create", headers=KEY, json=body))
    orleans = chat({"variant_id": "VARIANT-orleans"})["conversation_id"]
    paris = chat({})["conversation_id"]
    for cid, text in ((orleans, "I want to cancel my reservation"), (paris, "opening hours?")):
        client.post(f"{BASE}/chat/respond", headers=KEY, json={"conversation_id": cid, "message": text})
    api.post(f"/v1/conversations/{paris}/transcript", json={"role": "agent", "text": "We can CANCEL it online."})
    window = "start_time=2000-01-01T00:00:00Z&end_time=2999-01-01T00:00:00Z"

    def ids(query):
        response = client.get(f"/v3/ws-1234/PROJECT-abcd/conversations?{query}", headers=KEY)
        return [c["id"] for c in check("conversations", response)["conversations"]]

    assert ids("variant_id=VARIANT-orleans") == [orleans]
    assert ids("variant_name=Orleans") == []  # this service keeps no variant names
    assert ids(f"query_type=transcript&query=cancel&{window}") == [orleans, paris]
    assert ids(f"query_type=transcript&query=cancel&turn_type=user&{window}") == [orleans]
    assert ids(f"query_type=transcript&query=Cancel%20it&turn_type=agent&{window}") == [paris]

    for bad in ("variant_id=V&variant_name=N", f"query_type=transcript&{window}",
                "query_type=transcript&query=cancel", f"query_type=transcript&query=x&sample=random&{window}",
                f"query_type=fuzzy&query=x&{window}", f"query_type=semantic&query=billing&{window}",
                f"sample=random&{window}", f"query_type=transcript&query=x&turn_type=bot&{window}"):
        refused = client.get(f"/v3/ws-1234/PROJECT-abcd/conversations?{bad}", headers=KEY)
        assert refused.status_code == 400, bad
        check("conversations", refused)


def test_a_chat_handoff_a_human_claimed_reads_as_completed(api, client):
    """https://docs.poly.ai/call-data/conversations-api/handoff-states
    (call-data/conversations-api/handoff-states.mdx): `handoff_initiated` becomes
    `handoff_completed` when the "Live agent accepts"; a connector claiming the chat is that."""
    api.post("/v1/destinations", json={"name": "live_agent_queue", "route": "sip:queue@pbx.example.com"})
    created = check("chat/create", client.post(f"{BASE}/chat/create", headers=KEY, json={
        "integration_attributes": {"shared_id": "web-5"}}))
    client.post(f"{BASE}/chat/respond", headers=KEY, json={"conversation_id": created["conversation_id"],
                                                           "message": "a human please"})

    def state():
        body = check("handoff_state", client.get(f"{BASE}/handoff_state?shared_id=web-5", headers=KEY))
        return body["data"]["handoff_state"]

    assert state() == "handoff_initiated"
    assert api.post("/v1/handoffs/web-5/claim", json={"agent": "ana"}).status_code == 200
    assert state() == "handoff_completed"


def test_an_errors_id_is_its_correlation_header(client):
    """https://docs.poly.ai/api-reference/chat/introduction (api-reference/chat/openapi.json,
    `Error.error_id`): "Unique request identifier from the X-PolyAI-Correlation-Id header"."""
    refused = client.post(f"{BASE}/chat/respond", headers=KEY, json={"conversation_id": "CO-nope"})
    body = check("chat/respond", refused)
    assert refused.status_code == 404 and refused.headers["X-PolyAI-Correlation-Id"] == body["error_id"]
    unauthorized = client.get("/v3/ws-1234/PROJECT-abcd/conversations")
    assert unauthorized.headers["X-PolyAI-Correlation-Id"] == check("conversations", unauthorized)["error_id"]


@responses.activate
def test_a_returned_utterance_with_hangup_is_said_before_the_call_ends(app, twilio, configured):
    """https://docs.poly.ai/tools/return-values (tools/return-values.mdx, "utterance + hangup"):
    "Say a closing message before ending the call"."""
    responses.add(responses.POST, TWILIO_CALL_URL, json={"sid": CALL, "status": "in-progress"})
    twilio.post("/voice/call", call_params(CALL))
    services = app.extensions["handoff"]
    conv = Conversation(CALL, services=services)
    assert handoff.from_polyai_return(conv, {"utterance": "Thanks for calling, have a great day!",
                                             "hangup": True}) is None
    work(app)
    root = sent_twiml()
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert root.find("Say").text == "Thanks for calling, have a great day!"


def test_integration_attributes_are_any_object(api, client):
    """https://docs.poly.ai/api-reference/chat/introduction (api-reference/chat/openapi.json,
    `CreateChatRequest.integration_attributes`: "type": "object", nothing more): a numeric
    shared id is still the conversation's shared id (as text); one that is not text or a
    number is kept with the rest, not refused."""
    numeric = check("chat/create", client.post(f"{BASE}/chat/create", headers=KEY, json={
        "integration_attributes": {"shared_id": 4711, "user_id": 12345}}))
    stored = api.get(f"/v1/conversations/{numeric['conversation_id']}").get_json()
    assert stored["shared_id"] == "4711" and stored["integration_attributes"] == {"shared_id": 4711, "user_id": 12345}

    nested = client.post(f"{BASE}/chat/create", headers=KEY, json={
        "integration_attributes": {"shared_id": {"five9": "S-1"}, "flag": True}})
    assert nested.status_code == 200
    stored = api.get(f"/v1/conversations/{check('chat/create', nested)['conversation_id']}").get_json()
    assert stored["shared_id"] is None and stored["integration_attributes"]["shared_id"] == {"five9": "S-1"}


def test_pinned_ids_in_both_of_polyais_forms(config, client_of):
    """https://docs.poly.ai/api-reference/chat/introduction ("Finding your account_id and
    project_id", api-reference/chat/introduction.mdx): "both the slug form (visible in the
    URL) and the prefixed form are accepted in API paths" - so the pins take a list."""
    from app import create_app

    pinned = client_of(create_app(config.with_overrides(polyai_account_id="ws-fd112d8f, acme-uk",
                                                        polyai_project_id="PROJECT-191bfa2a,acme-team-4")))
    for base in ("/v1/ws-fd112d8f/PROJECT-191bfa2a", "/v1/acme-uk/acme-team-4"):
        created = pinned.post(f"{base}/chat/create", headers=KEY)
        assert created.status_code == 200 and check("chat/create", created)["conversation_id"]
    other = pinned.post("/v1/acme-us/acme-team-4/chat/create", headers=KEY)
    assert other.status_code == 404 and check("chat/create", other)["error_code"] == "ACCOUNT_NOT_FOUND"


def test_a_conversations_state_includes_the_built_in_keys(app, api, client, twilio):
    """https://docs.poly.ai/api-reference/conversations/introduction ("Conversation object",
    api-reference/conversations/introduction.mdx): `state` "Includes both built-in keys (e.g.
    `from_`, `to`, `call_sid`) and any custom variables your agent writes"."""
    twilio.post("/voice/call", call_params(CALL, From="+14155550100", To="+14155550199", SipCallId=None))
    api.patch(f"/v1/conversations/{CALL}", json={"state": {"customer_id": "12345", "to": "kept as the agent wrote it"}})
    page = check("conversations", client.get("/v3/ws-1234/PROJECT-abcd/conversations", headers=KEY))
    assert page["conversations"][0]["state"] == {"from_": "+14155550100", "to": "kept as the agent wrote it",
                                                 "call_sid": CALL, "customer_id": "12345"}
    chat = check("chat/create", client.post(f"{BASE}/chat/create", headers=KEY))["conversation_id"]
    summaries = check("conversations", client.get("/v3/ws-1234/PROJECT-abcd/conversations", headers=KEY))
    assert [c["state"] for c in summaries["conversations"] if c["id"] == chat] == [{}]


def test_conv_handoffs_names_the_configured_destinations(app, configured):
    """https://docs.poly.ai/tools/classes/conv-object (tools/classes/conv-object.mdx, handoffs):
    "Dictionary of configured hand-off destinations", `if "support" in conv.handoffs`."""
    conv = Conversation.create(channel="webchat", services=app.extensions["handoff"])
    assert list(conv.handoffs) == ["Front desk", "BillingQueue", "CALL_CENTER"]
    assert "BillingQueue" in conv.handoffs and "support" not in conv.handoffs
    assert conv.handoffs["CALL_CENTER"]["route"] == "12345"


def test_a_header_given_none_is_left_out_not_sent_as_none(app, configured):
    """https://docs.poly.ai/voice-channel/handoffs (voice-channel/handoffs.mdx, "Writing context
    from a function") passes `"X-Customer-ID": conv.state.customer_id`, which is None until
    the agent stored one: the header is left out with a `missing_variable` warning, as a
    template with no value is, rather than sent as the text "None"."""
    conv = Conversation.create(channel="webchat", services=app.extensions["handoff"])
    record = conv.call_handoff(destination="BillingQueue", reason="refund_request",
                               sip_headers={"X-Customer-ID": conv.state.customer_id, "X-Verified": "true"})
    assert record["sip_headers"] == {"X-Verified": "true"}
    assert [w["code"] for w in record["warnings"]] == ["missing_variable"]
    assert "X-Customer-ID" in record["warnings"][0]["message"]


def test_a_limit_above_a_page_is_served_a_page_at_a_time(api, client):
    """https://docs.poly.ai/api-reference/conversations/introduction ("Optional filters",
    api-reference/conversations/introduction.mdx) allows `limit` 1-5000; the OpenAPI document
    (api-reference/conversations/v3/openapi.json) caps it at 1000: a larger one is answered
    (at most 1000 to a page, then a cursor), not refused."""
    api.post("/v1/conversations", json={"channel": "webchat"})
    page = client.get("/v3/ws-1234/PROJECT-abcd/conversations?limit=5000", headers=KEY)
    assert page.status_code == 200 and len(check("conversations", page)["conversations"]) == 1
