"""The Handoff and Conversations APIs as a live-chat connector uses them."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.helpers import API_KEY

KEY = {"X-API-Key": API_KEY}


def setup_destinations(api):
    api.post("/v1/destinations", json={"name": "Support", "route": "sip:support@pbx"})
    api.post("/v1/destinations", json={"name": "Billing", "route": "sip:billing@pbx"})


def chat_handoff(api, shared_id=None, **fields):
    conv = api.post("/v1/conversations", json={"channel": "webchat", "shared_id": shared_id,
                                                "state": {"customer": {"id": 7}}}).get_json()
    response = api.post(f"/v1/conversations/{conv['id']}/handoff", json=fields)
    assert response.status_code == 201, response.get_json()
    return conv, response.get_json()


def test_conversation_parts_are_validated_and_appended(api):
    conv = api.post("/v1/conversations", json={"channel": "webchat", "shared_id": "S-1"}).get_json()
    assert conv["transcript"] == [] and conv["handoff"] is None and conv["ended_at"] is None
    cid = conv["id"]
    assert api.post(f"/v1/conversations/{cid}/transcript", json={"role": "user", "text": "hi"}).status_code == 201
    assert api.post(f"/v1/conversations/{cid}/transcript", json={"role": "agent", "text": "hello"}).status_code == 201
    bad = api.post(f"/v1/conversations/{cid}/transcript", json={"role": "robot", "text": "x"})
    assert bad.status_code == 422 and "role" in bad.get_json()["error"]["fields"]
    assert api.post(f"/v1/conversations/{cid}/log", json={"level": "loud", "message": "x"}).status_code == 422
    api.post(f"/v1/conversations/{cid}/log", json={"level": "warning", "message": "slow"})
    api.post(f"/v1/conversations/{cid}/metrics", json={"name": "csat", "value": 5})
    api.post(f"/v1/conversations/{cid}/annotations", json={"label": "vip", "note": "n", "author": "ops"})
    assert api.post("/v1/conversations/nope/log", json={"message": "x"}).status_code == 404
    got = api.get(f"/v1/conversations/{cid}").get_json()
    assert [(t["role"], t["text"]) for t in got["transcript"]] == [("user", "hi"), ("agent", "hello")]
    assert got["log"][0]["level"] == "warning" and got["metrics"][0]["value"] == 5
    assert got["annotations"][0]["label"] == "vip" and got["annotations"][0]["at"]


def test_patch_merges_state(api):
    cid = api.post("/v1/conversations", json={"state": {"a": 1, "b": 2}}).get_json()["id"]
    body = api.patch(f"/v1/conversations/{cid}", json={"state": {"b": 3}, "shared_id": "X"}).get_json()
    assert body["state"] == {"a": 1, "b": 3} and body["shared_id"] == "X"


def test_patch_with_a_null_shared_id_clears_it(api):
    # The document lets shared_id be null in a PATCH: that is a change, not "leave it".
    cid = api.post("/v1/conversations", json={"shared_id": "S-old"}).get_json()["id"]
    body = api.patch(f"/v1/conversations/{cid}", json={"shared_id": None}).get_json()
    assert body["shared_id"] is None
    assert api.get("/v1/conversations?shared_id=S-old").get_json()["items"] == []
    assert api.patch(f"/v1/conversations/{cid}", json={"state": {"a": 1}}).get_json()["shared_id"] is None


def test_chat_handoff_is_pending_and_found_by_id_or_shared_id(api):
    setup_destinations(api)
    conv, first = chat_handoff(api, shared_id="S-9", destination="billing", reason="refund",
                               data={"order": 1}, sip_headers={"X-Cust": "$customer.id"})
    assert first["state"] == "pending" and first["channel"] == "webchat"
    assert first["destination"]["id"] == "billing" and first["shared_id"] == "S-9"
    _, second = chat_handoff(api, shared_id="S-9")
    assert second["destination"]["id"] == "support"  # the default
    assert api.get("/v1/handoffs/S-9").get_json()["id"] == second["id"]  # newest for a shared id
    assert api.get(f"/v1/handoffs/{first['id']}").get_json()["reason"] == "refund"
    assert api.get(f"/v1/conversations/{conv['id']}").get_json()["handoff"]["id"] == first["id"]
    assert api.get("/v1/handoffs/nothing").status_code == 404


def test_handoff_request_validation(api):
    setup_destinations(api)
    cid = api.post("/v1/conversations", json={}).get_json()["id"]
    bad = api.post(f"/v1/conversations/{cid}/handoff", json={"sip_headers": {"Bad": "x"}, "data": "no"})
    assert bad.status_code == 422 and set(bad.get_json()["error"]["fields"]) == {"sip_headers", "data"}
    assert api.post("/v1/conversations/ghost/handoff", json={}).status_code == 404


def test_patch_merges_data_and_outcome_by_shared_id_shows_on_the_conversation(api):
    setup_destinations(api)
    conv, handoff = chat_handoff(api, shared_id="S-2", data={"a": 1})
    body = api.patch(f"/v1/handoffs/{handoff['id']}", json={"data": {"b": 2}}).get_json()
    assert body["data"] == {"a": 1, "b": 2}
    api.post(f"/v1/handoffs/{handoff['id']}/claim", json={"agent": "ana"})
    done = api.post("/v1/handoffs/S-2/outcome", json={"resolution": "refunded", "resolved_by": "ana"})
    assert done.status_code == 200 and done.get_json()["state"] == "completed"
    assert api.get(f"/v1/conversations/{conv['id']}").get_json()["outcome"]["resolution"] == "refunded"
    assert api.post("/v1/handoffs/S-2/outcome", json={}).status_code == 422


def test_a_completed_handoff_cannot_be_abandoned(api):
    # An answer /v1/openapi.json lists (tests/response_conformance.py checks every answer).
    setup_destinations(api)
    _, handoff = chat_handoff(api)
    api.post(f"/v1/handoffs/{handoff['id']}/claim", json={"agent": "ana"})
    api.post(f"/v1/handoffs/{handoff['id']}/outcome", json={"resolution": "refunded"})
    late = api.patch(f"/v1/handoffs/{handoff['id']}", json={"state": "abandoned"})
    assert late.status_code == 409 and late.get_json()["error"]["code"] == "conflict"
    assert api.get(f"/v1/handoffs/{handoff['id']}").get_json()["state"] == "completed"


def test_handoff_state_reads_like_polyais(api):
    setup_destinations(api)
    conv, handoff = chat_handoff(api, shared_id="S-3", destination="billing", reason="refund", data={"k": "v"})
    body = api.get(f"/v1/handoff_state?id={conv['id']}").get_json()
    assert body == {"id": conv["id"], "shared_id": "S-3", "data": {
        "k": "v", "handoff_to": "Billing", "handoff_reason": "refund", "handoff_state": "handoff_initiated"}}
    assert api.get("/v1/handoff_state?shared_id=S-3&id=other").get_json()["id"] == conv["id"]
    assert api.get("/v1/handoff_state").status_code == 422
    assert api.get("/v1/handoff_state?shared_id=none").status_code == 404


def test_of_many_concurrent_claims_exactly_one_wins(api, live_server):
    setup_destinations(api)
    _, handoff = chat_handoff(api)
    barrier = threading.Barrier(12)

    def claim(n):
        barrier.wait()
        return requests.post(f"{live_server}/v1/handoffs/{handoff['id']}/claim",
                             json={"agent": f"agent-{n}"}, headers=KEY, timeout=10)

    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(claim, range(12)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * 11
    assert all(r.json()["error"]["code"] == "conflict" for r in responses if r.status_code == 409)
    winner = next(r.json() for r in responses if r.status_code == 200)
    assert winner["state"] == "claimed" and winner["claimed_by"].startswith("agent-")


def test_listing_pages_never_repeat_or_skip_while_new_items_arrive(api, live_server):
    setup_destinations(api)
    for _ in range(5):
        chat_handoff(api)
    stop = threading.Event()

    def writer():
        session = requests.Session()
        while not stop.is_set():
            cid = session.post(f"{live_server}/v1/conversations", json={}, headers=KEY).json()["id"]
            session.post(f"{live_server}/v1/conversations/{cid}/handoff", json={}, headers=KEY)

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    seen, cursor = [], None
    try:
        for _ in range(40):
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = requests.get(f"{live_server}/v1/handoffs", params=params, headers=KEY).json()
            seen += [h["id"] for h in page["items"]]
            cursor = page["next_cursor"]
    finally:
        stop.set()
        for t in threads:
            t.join()
    while True:  # drain what is left
        page = requests.get(f"{live_server}/v1/handoffs", params={"limit": 50, "cursor": cursor}, headers=KEY).json()
        seen += [h["id"] for h in page["items"]]
        cursor = page["next_cursor"]
        if not page["items"]:
            break
    everything = []
    c = None
    while True:
        page = api.get("/v1/handoffs", query_string={"limit": 500, **({"cursor": c} if c else {})}).get_json()
        everything += [h["id"] for h in page["items"]]
        c = page["next_cursor"]
        if not page["has_more"]:
            break
    assert len(seen) == len(set(seen)), "a page repeated an item"
    assert seen == everything, "a page skipped an item or changed order"
    assert len(everything) > 5


def test_filters(api):
    setup_destinations(api)
    chat_handoff(api, destination="billing", shared_id="F")
    chat_handoff(api)
    by_dest = api.get("/v1/handoffs?destination=billing").get_json()["items"]
    assert [h["destination"]["id"] for h in by_dest] == ["billing"]
    assert len(api.get("/v1/handoffs?state=pending&channel=webchat").get_json()["items"]) == 2
    assert api.get("/v1/handoffs?shared_id=F").get_json()["items"][0]["shared_id"] == "F"
    assert api.get("/v1/handoffs?state=bogus").status_code == 422
    assert api.get("/v1/handoffs?cursor=garbage!").status_code == 422
    assert len(api.get("/v1/conversations?has_handoff=true").get_json()["items"]) == 2


def test_event_feed_delivers_every_change_once_in_order(api):
    setup_destinations(api)
    _, handoff = chat_handoff(api)
    api.post(f"/v1/handoffs/{handoff['id']}/claim", json={"agent": "ana"})
    first = api.get("/v1/handoffs/events?limit=2").get_json()
    rest = api.get(f"/v1/handoffs/events?after={first['next_cursor']}").get_json()
    events = first["items"] + rest["items"]
    assert [(e["handoff_id"], e["state"]) for e in events] == [
        (handoff["id"], "requested"), (handoff["id"], "pending"), (handoff["id"], "claimed")]
    again = api.get(f"/v1/handoffs/events?after={rest['next_cursor']}").get_json()
    assert again["items"] == [] and again["next_cursor"] == rest["next_cursor"]
    assert api.get("/v1/handoffs/events?after=nope").status_code == 422
    assert api.get("/v1/handoffs/events?wait=31").status_code == 422


def test_event_feed_wait_returns_as_soon_as_something_happens(api, live_server):
    setup_destinations(api)
    cursor = api.get("/v1/handoffs/events").get_json()["next_cursor"]
    result = {}

    def poll():
        started = time.monotonic()
        params = {"wait": 10, **({"after": cursor} if cursor else {})}
        result["body"] = requests.get(f"{live_server}/v1/handoffs/events", params=params, headers=KEY).json()
        result["took"] = time.monotonic() - started

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.5)
    chat_handoff(api)
    poller.join(15)
    assert result["body"]["items"] and result["body"]["items"][0]["state"] == "requested"
    assert 0.4 < result["took"] < 5


def test_what_agent_code_logs_is_served_as_the_api_document_says(app, api):
    # The agent's logger takes any text (a payload dumped whole, an empty line) and any
    # metric name; GET /v1/conversations/<id> must still answer within its document.
    from handoff import Conversation

    conv = Conversation.create(services=app.extensions["handoff"])
    conv.log.info("x" * 20_000)
    conv.log("", level="notice")
    conv.write_metric("m" * 300, 1)
    read = api.get(f"/v1/conversations/{conv.id}")
    assert read.status_code == 200
    assert [len(entry["message"]) for entry in read.get_json()["log"]] == [20_000, 0]


def test_python_api_uses_the_same_code_path(app, api):
    from handoff import Conversation

    setup_destinations(api)
    api.post("/v1/destinations", json={"name": "billing-desk", "route": "sip:b@pbx",
                                        "sip_headers": [{"name": "X-Tier", "value": "$tier"}]})
    services = app.extensions["handoff"]
    conv = Conversation.create(state={"customer_id": "C-42", "tier": "gold"}, services=services)
    conv.log("verified caller")
    conv.write_metric("turns", 3)

    def transfer_to_billing(conv):
        return conv.call_handoff(destination="billing-desk", reason="refund_request",
                                 utterance="Let me transfer you to a billing specialist.",
                                 sip_headers={"X-Customer-ID": conv.state["customer_id"], "X-Verified": "true"})

    handoff = transfer_to_billing(conv)
    assert handoff["state"] == "pending" and handoff["destination"]["name"] == "billing-desk"
    assert handoff["sip_headers"] == {"X-Tier": "gold", "X-Customer-ID": "C-42", "X-Verified": "true"}
    stored = api.get(f"/v1/conversations/{conv.id}").get_json()
    assert stored["handoff"]["id"] == handoff["id"] and stored["log"][0]["message"] == "verified caller"
    assert stored["metrics"][0] == {"name": "turns", "value": 3, "at": stored["metrics"][0]["at"]}


def test_a_waiting_poll_gathers_a_burst_into_one_answer(api, live_server):
    setup_destinations(api)
    cursor = api.get("/v1/handoffs/events").get_json()["next_cursor"]
    result = {}

    def poll():
        params = {"wait": 10, **({"after": cursor} if cursor else {})}
        result["body"] = requests.get(f"{live_server}/v1/handoffs/events", params=params, headers=KEY).json()

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.3)
    _, handoff = chat_handoff(api)
    api.post(f"/v1/handoffs/{handoff['id']}/claim", json={"agent": "ana"})  # a separate write, right after
    poller.join(15)
    assert [e["state"] for e in result["body"]["items"]] == ["requested", "pending", "claimed"]
