"""A widget and a connector written against PolyAI's published APIs, pointed at this service:
every answer is checked against PolyAI's own OpenAPI documents (tests/data/polyai/)."""
from datetime import timedelta

import pytest
from rq import SimpleWorker

from handoff import jobs
from tests.helpers import API_KEY
from tests.polyai_schemas import check, check_error_envelope

BASE = "/v1/ACCOUNT-1234/PROJECT-abcd"
WIDGET = {"x-api-key": API_KEY}  # PolyAI's widget and examples write the header in lower case
CONNECTOR = {"X-TOKEN": API_KEY}


@pytest.fixture
def configured(api):
    api.post("/v1/destinations", json={"name": "live_agent_queue", "route": "sip:queue@pbx.example.com"})
    api.post("/v1/destinations", json={"name": "Billing", "route": "sip:billing@pbx.example.com"})


def test_polyai_webchat_flow_end_to_end_then_a_human_claims(client, api, configured):
    # The widget starts a session the way PolyAI's does: no body at all.
    bare = client.post(f"{BASE}/chat/create", headers=WIDGET)
    assert bare.status_code == 200
    assert check("chat/create", bare)["response"]

    created = client.post(f"{BASE}/chat/create", headers=WIDGET, json={
        "integration_attributes": {"shared_id": "web-42", "customer_id": "12345", "source": "mobile_app"},
        "variant_id": "VARIANT-1", "channel": "webchat", "asr_lang_code": "en-US", "tts_lang_code": "en-US"})
    assert created.status_code == 200
    conversation_id = check("chat/create", created)["conversation_id"]

    chat = client.post(f"{BASE}/chat/respond", headers=WIDGET,
                       json={"conversation_id": conversation_id, "message": "hmm"})
    body = check("chat/respond", chat)
    assert body["end_conversation"] is False and "handoff" not in body

    routed = client.post(f"{BASE}/chat/respond", headers=WIDGET,
                         json={"conversation_id": conversation_id, "message": "I want a human"})
    body = check("chat/respond", routed)
    assert body["end_conversation"] is True
    assert body["handoff"] == {"destination": "live_agent_queue", "reason": "needs_human"}

    # The widget stops the bot at once and routes the user to live chat…
    closed = client.put(f"{BASE}/chat/close", headers=WIDGET, json={"conversation_id": conversation_id})
    assert check("chat/close", closed) == {"success": True}

    # …and the live-chat connector fetches the context, by shared id.
    state = client.get(f"{BASE}/handoff_state?shared_id=web-42", headers=CONNECTOR)
    assert state.status_code == 200
    assert check("handoff_state", state) == {"id": conversation_id, "shared_id": "web-42", "data": {
        "handoff_to": "live_agent_queue", "handoff_reason": "needs_human", "handoff_state": "handoff_initiated"}}
    v3 = client.get(f"/v3/ACCOUNT-1234/PROJECT-abcd/handoff_state?id={conversation_id}", headers=CONNECTOR)
    assert check("handoff_state", v3)["id"] == conversation_id

    # A human claims the handoff after chat/close: it waited for them.
    claim = api.post("/v1/handoffs/web-42/claim", json={"agent": "ana"})
    assert claim.status_code == 200 and claim.get_json()["state"] == "claimed"

    # The widget's late message is refused in PolyAI's envelope.
    late = client.post(f"{BASE}/chat/respond", headers=WIDGET,
                       json={"conversation_id": conversation_id, "message": "hello?"})
    assert late.status_code == 400 and check("chat/respond", late)["success"] is False

    # The conversation kept what the widget sent.
    stored = api.get(f"/v1/conversations/{conversation_id}").get_json()
    assert stored["shared_id"] == "web-42" and stored["channel"] == "webchat"
    assert stored["integration_attributes"] == {"shared_id": "web-42", "customer_id": "12345",
                                                "source": "mobile_app"}

    listed = client.get("/v3/ACCOUNT-1234/PROJECT-abcd/conversations?limit=1", headers=WIDGET)
    page = check("conversations", listed)
    assert len(page["conversations"]) == 1 and page["cursor"]
    rest = client.get(f"/v3/ACCOUNT-1234/PROJECT-abcd/conversations?cursor={page['cursor']}", headers=WIDGET)
    page = check("conversations", rest)
    assert page["cursor"] is None
    summary = page["conversations"][0]
    assert summary["id"] == conversation_id and summary["channel"] == "WEBCHAT"
    assert summary["in_progress"] is False and summary["handoff"] is True
    assert summary["handoff_destination"] == "live_agent_queue" and summary["variant_id"] == "VARIANT-1"
    assert [t["user_input"] for t in summary["turns"]] == ["", "hmm", "I want a human"]
    assert summary["num_turns"] == 3 and summary["account_id"] == "ACCOUNT-1234"


def test_handoff_state_data_shows_the_data_returned_to_polyai(client, api, configured):
    created = check("chat/create", client.post(f"{BASE}/chat/create", headers=WIDGET, json={}))
    cid = created["conversation_id"]
    client.post(f"{BASE}/chat/respond", headers=WIDGET, json={"conversation_id": cid, "message": "agent"})
    body = check("handoff_state", client.get(f"{BASE}/handoff_state?id={cid}", headers=CONNECTOR))
    assert "shared_id" not in body  # PolyAI's schema: a string, or absent; never null
    assert body["data"]["handoff_to"] == "live_agent_queue" and body["data"]["handoff_state"] == "handoff_initiated"


def test_handoff_state_keeps_what_the_agent_set(client, api, configured):
    conv = api.post("/v1/conversations", json={"channel": "webchat", "shared_id": "S-7", "state": {
        "handoff": {"customer_id": "12345", "handoff_reason": "successfully_identified",
                    "handoff_state": "customer_refund"}}}).get_json()
    # Only the agent's state so far: the connector can already read it.
    early = check("handoff_state", client.get(f"{BASE}/handoff_state?id={conv['id']}", headers=CONNECTOR))
    assert early["data"] == {"customer_id": "12345", "handoff_reason": "successfully_identified",
                             "handoff_state": "customer_refund"}
    api.post(f"/v1/conversations/{conv['id']}/handoff", json={"destination": "billing", "reason": "refund",
                                                               "data": {"order": "A-1"}})
    for path in (f"{BASE}/handoff_state?shared_id=S-7&id=ignored", f"/v1/handoff_state?id={conv['id']}"):
        response = client.get(path, headers={**CONNECTOR, "Authorization": f"Bearer {API_KEY}"})
        body = check("handoff_state", response)
        assert body == {"id": conv["id"], "shared_id": "S-7", "data": {
            "customer_id": "12345", "handoff_reason": "successfully_identified",
            "handoff_state": "customer_refund", "order": "A-1", "handoff_to": "Billing"}}


def test_errors_come_in_polyais_envelopes(client, api, configured):
    no_key = client.post(f"{BASE}/chat/create")
    assert no_key.status_code == 401 and check("chat/create", no_key)["error_code"] == "UNAUTHORIZED"
    wrong = client.get(f"{BASE}/handoff_state?id=x", headers={"X-API-KEY": "nope"})
    assert wrong.status_code == 401 and "error_message" in check("handoff_state", wrong)
    bearer_only = client.post(f"{BASE}/chat/create", headers={"Authorization": f"Bearer {API_KEY}"})
    assert bearer_only.status_code == 401  # PolyAI's routes take PolyAI's headers

    missing = client.post(f"{BASE}/chat/respond", headers=WIDGET, json={"conversation_id": "CO-nope", "message": "x"})
    assert missing.status_code == 404 and check("chat/respond", missing)["error_code"] == "CONVERSATION_NOT_FOUND"
    bad = client.post(f"{BASE}/chat/respond", headers=WIDGET, json={"message": "x"})
    assert bad.status_code == 400 and "conversation_id" in check("chat/respond", bad)["error_message"]
    garbage = client.put(f"{BASE}/chat/close", headers={**WIDGET, "Content-Type": "application/json"}, data="{")
    assert garbage.status_code == 400 and check("chat/close", garbage)["data"] is None
    unknown_close = client.put(f"{BASE}/chat/close", headers=WIDGET, json={"conversation_id": "CO-nope"})
    assert unknown_close.status_code == 404 and check("chat/close", unknown_close)
    bad_channel = client.post(f"{BASE}/chat/create", headers=WIDGET, json={"channel": "fax"})
    assert bad_channel.status_code == 400 and check("chat/create", bad_channel)

    neither = client.get(f"{BASE}/handoff_state", headers=CONNECTOR)
    assert neither.status_code == 400 and check("handoff_state", neither)["error_message"]
    nothing = client.get(f"{BASE}/handoff_state?shared_id=nobody", headers=CONNECTOR)
    assert nothing.status_code == 404 and check("handoff_state", nothing)["error_message"]

    bad_limit = client.get("/v3/A/P/conversations?limit=0", headers=WIDGET)
    assert bad_limit.status_code == 400 and check("conversations", bad_limit)
    bad_cursor = client.get("/v3/A/P/conversations?cursor=zzz", headers=WIDGET)
    assert bad_cursor.status_code == 400 and check("conversations", bad_cursor)
    # The native routes keep their own shapes.
    assert api.get("/v1/handoff_state").status_code == 422


def test_conversations_filters(client, api):
    voice = api.post("/v1/conversations", json={"channel": "voice", "from": "+14155550100",
                                                "to": "+14155550199"}).get_json()
    chat = check("chat/create", client.post(f"{BASE}/chat/create", headers=WIDGET))
    client.put(f"{BASE}/chat/close", headers=WIDGET, json={"conversation_id": chat["conversation_id"]})
    api.post(f"/v1/conversations/{voice['id']}/metrics", json={"name": "csat", "value": 5})
    api.post(f"/v1/conversations/{voice['id']}/metrics", json={"name": "csat", "value": 4})

    def ids(query):
        response = client.get(f"/v3/A/P/conversations?{query}", headers=WIDGET)
        return [c["id"] for c in check("conversations", response)["conversations"]]

    assert ids("") == [voice["id"], chat["conversation_id"]]
    assert ids("channel=VOICE-SIP") == [voice["id"]] and ids("channel=webchat") == [chat["conversation_id"]]
    assert ids("in_progress=true") == [voice["id"]] and ids("in_progress=false") == [chat["conversation_id"]]
    assert ids("start_time=2999-01-01T00:00:00Z") == [] and ids("end_time=2000-01-01T00:00:00Z") == []
    summary = check("conversations", client.get("/v3/A/P/conversations?channel=VOICE-SIP", headers=WIDGET))
    first = summary["conversations"][0]
    assert first["from_number"] == "+14155550100" and first["metrics"] == {"csat": ["5", "4"]}


def test_pinned_account_and_project(config, client_of, api):
    from app import create_app

    pinned = client_of(create_app(config.with_overrides(polyai_account_id="ACCOUNT-1234",
                                                        polyai_project_id="PROJECT-abcd")))
    assert pinned.post(f"{BASE}/chat/create", headers=WIDGET).status_code == 200
    other = pinned.post("/v1/ACCOUNT-1234/PROJECT-other/chat/create", headers=WIDGET)
    assert other.status_code == 404 and check("chat/create", other)["error_code"] == "PROJECT_NOT_FOUND"
    assert pinned.post("/v1/ACCOUNT-x/PROJECT-abcd/chat/create", headers=WIDGET).status_code == 404


def test_a_pending_chat_handoff_is_abandoned_only_after_the_pending_timeout(app, client, api, configured):
    services = app.extensions["handoff"]
    cid = check("chat/create", client.post(f"{BASE}/chat/create", headers=WIDGET))["conversation_id"]
    client.post(f"{BASE}/chat/respond", headers=WIDGET, json={"conversation_id": cid, "message": "agent"})
    client.put(f"{BASE}/chat/close", headers=WIDGET, json={"conversation_id": cid})
    handoff_id = api.get(f"/v1/conversations/{cid}").get_json()["handoff"]["id"]

    def sweep():
        services.queue.enqueue(jobs.sweep_transfers)  # what the worker's scheduled sweep runs
        SimpleWorker([services.queue], connection=services.queue.connection).work(burst=True)
        return api.get(f"/v1/handoffs/{handoff_id}").get_json()

    assert sweep()["state"] == "pending"  # closing the bot session is not the user leaving
    started = services.clock()
    services.clock = lambda: started + timedelta(seconds=3601)  # HANDOFF_PENDING_TIMEOUT: 3600 s
    record = sweep()
    assert record["state"] == "abandoned" and record["history"][-1]["detail"] == {"reason": "pending_timeout"}
    assert api.post(f"/v1/handoffs/{handoff_id}/claim", json={"agent": "ana"}).status_code == 409


def test_a_connector_says_the_user_left(api, client, configured):
    cid = check("chat/create", client.post(f"{BASE}/chat/create", headers=WIDGET))["conversation_id"]
    client.post(f"{BASE}/chat/respond", headers=WIDGET, json={"conversation_id": cid, "message": "agent"})
    handoff_id = api.get(f"/v1/conversations/{cid}").get_json()["handoff"]["id"]
    assert api.patch(f"/v1/handoffs/{handoff_id}", json={"state": "claimed"}).status_code == 422
    left = api.patch(f"/v1/handoffs/{handoff_id}", json={"state": "abandoned"})
    assert left.status_code == 200 and left.get_json()["state"] == "abandoned"
    assert api.patch(f"/v1/handoffs/{handoff_id}", json={}).status_code == 422


def test_a_body_over_a_mebibyte_is_refused_in_polyais_envelope(client):
    huge = client.post(f"{BASE}/chat/respond", headers={**WIDGET, "Content-Type": "application/json"},
                       data="x" * (1024 * 1024 + 1))
    assert huge.status_code == 413
    assert check_error_envelope(huge)["error_code"] == "PAYLOAD_TOO_LARGE"
