"""The Procfile deployment over real HTTP: gunicorn web + rq worker, as a PaaS runs them.

Twilio is played by signed HTTP requests; the handoff webhook receiver is a real local
HTTP server; the worker process delivers to it."""
import hashlib
import hmac
import json
import time
from urllib.parse import urlsplit

import pytest
import requests
from twilio.request_validator import RequestValidator

from handoff.jobs import SWEEP_JOB_ID
from handoff.redis_server import EmbeddedServer, client_for
from tests.deployment import Deployment
from tests.helpers import API_KEY, AUTH_TOKEN, call_params, parse, verbs
from tests.test_jobs import Receiver
from tests.test_observability import moved

SECRET = "deploy-secret"
KEY = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, receiver):
    data = tmp_path_factory.mktemp("deploy")
    valkey = EmbeddedServer(data / "redis").start()
    deployment = Deployment({
        "REDIS_URL": valkey.url, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "HANDOFF_API_KEYS": API_KEY, "SIP_DOMAIN": "sbc.example.com", "DATA_DIR": str(data / "app"),
        "HANDOFF_WEBHOOK_URL": receiver.url, "HANDOFF_WEBHOOK_SECRET": SECRET,
        "HANDOFF_WEBHOOK_RETRY_INTERVALS": "1,1,1", "WEB_CONCURRENCY": "2",
        "LOG_FORMAT": "json",
    })
    deployment.env["PUBLIC_BASE_URL"] = deployment.url
    deployment.start()
    yield deployment
    deployment.stop()
    valkey.stop()


# For a client whose answers a test keeps until after it stops the deployment: a kept answer
# keeps its kept-alive connection open, and a stopping gunicorn waits for an idle connection
# until its read timeout (WEB_READ_TIMEOUT, 10 s) before it exits.
ONE_REQUEST = {"Connection": "close"}


class Caller:
    """Twilio, over HTTP, signing each request for the URL it posts to."""

    def __init__(self, base):
        self.base = base
        self.validator = RequestValidator(AUTH_TOKEN)

    def post(self, url, params, sign=True):
        url = url if url.startswith("http") else self.base + url
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, params)} if sign else {}
        return requests.post(url, data=params, headers={**headers, **ONE_REQUEST}, timeout=10)


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


def test_a_call_story_busy_then_fallback_then_answered(deployed, receiver):
    api = requests.Session()
    api.headers.update(KEY)
    for body in ({"name": "Reception", "route": "1000"},
                 {"name": "Overflow", "method": "sip_invite", "route": "sip:overflow@pbx.example.com"},
                 {"name": "Billing", "route": "sip:billing@pbx.example.com", "fallback": "overflow",
                  "sip_headers": [{"name": "X-Caller", "value": "$caller_id"}]}):
        assert api.post(deployed.url + "/v1/destinations", json=body).status_code == 201
    twilio = Caller(deployed.url)
    call = call_params("CA" + "d" * 32)
    assert twilio.post("/voice/call", call, sign=False).status_code == 403
    assert twilio.post("/voice/call", call).status_code == 200
    root = parse(twilio.post("/voice/handoff?destination=billing&reason=refund", {
        **call, "utterance": "Transferring you to billing."}).text)
    assert verbs(root) == ["Say", "Refer"]
    assert root.find("Refer/Sip").text == "sip:billing@pbx.example.com?X-Caller=%2B14155550100"
    root = parse(twilio.post(root.find("Refer").get("action"), {**call, "ReferCallStatus": "busy",
                                                                "NotifySipResponseCode": "486"}).text)
    dial = root.find("Dial")
    assert dial.find("Sip").text == "sip:overflow@pbx.example.com;transport=tls;secure=true"
    root = parse(twilio.post(dial.get("action"), {**call, "DialCallStatus": "completed",
                                                  "DialCallDuration": "31"}).text)
    assert verbs(root) == ["Hangup"]
    twilio.post("/voice/status", {**call, "CallStatus": "completed"})
    handoff = api.get(f"{deployed.url}/v1/conversations/{call['CallSid']}").json()["handoff"]
    states = ["requested", "transferring", "transferring", "connected", "completed"]
    assert [h["state"] for h in handoff["history"]] == states
    # The worker delivers every state change, signed, to the receiver.
    mine = lambda: [json.loads(b) for _, b in receiver.requests if json.loads(b)["handoff"]["id"] == handoff["id"]]  # noqa: E731
    assert wait_for(lambda: len(mine()) == len(states)), deployed.log_text()
    assert sorted(e["state"] for e in mine()) == sorted(states)
    for headers, body in receiver.requests:
        assert headers["X-Handoff-Signature"] == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def test_receiver_down_then_up(deployed, receiver):
    api = requests.Session()
    api.headers.update(KEY)
    api.post(deployed.url + "/v1/destinations", json={"name": "Desk", "route": "sip:desk@pbx"})
    before = len(receiver.requests)
    receiver.statuses = [503, 503]
    conv = api.post(deployed.url + "/v1/conversations", json={"channel": "webchat"}).json()
    handoff = api.post(f"{deployed.url}/v1/conversations/{conv['id']}/handoff", json={}).json()
    mine = lambda: [json.loads(b)["state"] for _, b in receiver.requests[before:]  # noqa: E731
                    if json.loads(b)["handoff"]["id"] == handoff["id"]]
    # Two deliveries refused with 503, each retried by the worker's scheduler and taken.
    assert wait_for(lambda: len(mine()) == 4), deployed.log_text()
    assert sorted(mine()) == ["pending", "pending", "requested", "requested"]


def test_a_connector_written_from_the_openapi_document(deployed):
    """Poll the feed, claim, read transcript and context, push the outcome by shared_id."""
    spec = requests.get(deployed.url + "/v1/openapi.json", timeout=10).json()
    paths = spec["paths"]
    for path in ("/v1/handoffs/events", "/v1/handoffs/{ref}/claim", "/v1/conversations/{conversation_id}",
                 "/v1/handoffs/{ref}/outcome"):
        assert path in paths, sorted(paths)
    bot = requests.Session()
    bot.headers.update(KEY)
    cursor = bot.get(deployed.url + "/v1/handoffs/events").json()["next_cursor"]
    # The AI side: a chat that ends in a handoff.
    conv = bot.post(deployed.url + "/v1/conversations", json={
        "channel": "webchat", "shared_id": "ticket-77", "state": {"plan": "pro"}}).json()
    bot.post(f"{deployed.url}/v1/conversations/{conv['id']}/transcript", json={"role": "user", "text": "refund please"})
    bot.post(f"{deployed.url}/v1/conversations/{conv['id']}/handoff", json={"reason": "refund"})
    # The connector.
    connector = requests.Session()
    connector.headers.update({"X-API-Key": API_KEY})
    params = {"wait": 5, **({"after": cursor} if cursor else {})}
    events = connector.get(deployed.url + "/v1/handoffs/events", params=params, timeout=10).json()["items"]
    pending = next(e for e in events if e["state"] == "pending")
    claimed = connector.post(f"{deployed.url}/v1/handoffs/{pending['handoff_id']}/claim", json={"agent": "ana"})
    assert claimed.status_code == 200
    context = connector.get(f"{deployed.url}/v1/conversations/{claimed.json()['conversation_id']}").json()
    assert context["transcript"][0]["text"] == "refund please" and context["state"] == {"plan": "pro"}
    assert connector.post(f"{deployed.url}/v1/handoffs/{pending['handoff_id']}/claim",
                          json={"agent": "bo"}).status_code == 409
    done = connector.post(deployed.url + "/v1/handoffs/ticket-77/outcome",
                          json={"resolution": "refunded", "resolved_by": "ana"})
    assert done.status_code == 200 and done.json()["state"] == "completed"
    assert bot.get(f"{deployed.url}/v1/conversations/{conv['id']}").json()["outcome"]["resolution"] == "refunded"


def test_embedded_redis_is_started_shared_and_persisted(tmp_path):
    """No REDIS_URL: web starts Valkey under DATA_DIR, the worker finds it, data survives."""
    env = {"TWILIO_AUTH_TOKEN": AUTH_TOKEN, "HANDOFF_API_KEYS": API_KEY, "DATA_DIR": str(tmp_path / "var")}
    first = Deployment(env).start()
    try:
        response = requests.post(first.url + "/v1/destinations", headers={**KEY, **ONE_REQUEST},
                                 json={"name": "Kept", "route": "sip:kept@pbx"})
        assert response.status_code == 201
        assert (tmp_path / "var" / "valkey.port").exists()
        assert wait_for(lambda: "Listening on handoff" in first.logs["worker"].read_text()
                        or "*** Listening" in first.logs["worker"].read_text()), first.log_text()
    finally:
        first.stop()
    assert not (tmp_path / "var" / "valkey.port").exists()  # web stopped its server cleanly
    assert (tmp_path / "var" / "appendonlydir").is_dir()
    second = Deployment(env, processes=("web",)).start()
    try:
        names = [d["name"] for d in requests.get(second.url + "/v1/destinations", headers=KEY).json()["items"]]
        assert names == ["Kept"]
    finally:
        second.stop()


def test_health_and_readiness(deployed):
    assert requests.get(deployed.url + "/healthz").json() == {"status": "ok"}
    assert requests.get(deployed.url + "/readyz").status_code == 200
    assert urlsplit(deployed.url).hostname == "127.0.0.1"


def test_every_destination_fails_then_apology_and_duplicate_callbacks(deployed):
    api = requests.Session()
    api.headers.update(KEY)
    api.post(deployed.url + "/v1/destinations", json={"name": "Nightdesk", "route": "sip:night@pbx.example.com"})
    twilio = Caller(deployed.url)
    call = call_params("CA" + "f1" * 16)
    root = parse(twilio.post("/voice/handoff?destination=nightdesk", call).text)
    action = root.find("Refer").get("action")
    first = twilio.post(action, {**call, "ReferCallStatus": "failed", "ReferSipResponseCode": "503"}).text
    again = twilio.post(action, {**call, "ReferCallStatus": "failed", "ReferSipResponseCode": "503"}).text
    assert first == again  # Twilio's retry changes nothing
    # nightdesk → (its fallback: none) → the default, Reception, then nothing is left.
    root = parse(first)
    root = parse(twilio.post(root.find("Refer").get("action"), {**call, "ReferCallStatus": "busy"}).text)
    assert verbs(root) == ["Say", "Hangup"]
    handoff = api.get(f"{deployed.url}/v1/conversations/{call['CallSid']}").json()["handoff"]
    assert handoff["state"] == "failed"
    assert [h["state"] for h in handoff["history"]] == ["requested", "transferring", "transferring", "failed"]


def test_caller_hangs_up_mid_transfer(deployed):
    twilio = Caller(deployed.url)
    call = call_params("CA" + "f2" * 16)
    twilio.post("/voice/handoff", call)
    twilio.post("/voice/status", {**call, "CallStatus": "completed"})
    handoff = requests.get(f"{deployed.url}/v1/conversations/{call['CallSid']}", headers=KEY).json()["handoff"]
    assert handoff["state"] == "abandoned"


def test_router_refund_caller_reaches_billing_and_chat_ends_pending(deployed):
    api = requests.Session()
    api.headers.update(KEY)
    api.post(deployed.url + "/v1/topics", json={
        "name": "Refunds", "phrases": ["refund"],
        "action": {"type": "handoff", "destination": "billing", "utterance": "Billing will sort that out."}})
    twilio = Caller(deployed.url)
    call = call_params("CA" + "f3" * 16)
    greeting = parse(twilio.post("/voice/call", call).text)
    root = parse(twilio.post(greeting.find("Gather").get("action"), {**call, "SpeechResult": "I'd like a refund"}).text)
    assert root.find("Say").text == "Billing will sort that out."
    assert root.find("Refer/Sip").text.startswith("sip:billing@pbx.example.com")
    chat = api.post(deployed.url + "/v1/chat/create", json={}).json()
    answer = api.post(deployed.url + "/v1/chat/respond", json={"conversation_id": chat["conversation_id"],
                                                             "message": "refund please"}).json()
    assert answer["end_conversation"] is True
    pending = api.get(deployed.url + "/v1/handoffs", params={"state": "pending", "channel": "webchat"}).json()
    assert answer["handoff"]["id"] in [h["id"] for h in pending["items"]]


def test_warm_accept_and_a_pstn_caller_on_a_refer_destination(deployed):
    api = requests.Session()
    api.headers.update(KEY)
    api.post(deployed.url + "/v1/destinations", json={
        "name": "Expert", "method": "sip_invite", "route": "sip:expert@pbx.example.com",
        "transfer_mode": "warm_accept", "encryption": "udp_rtp"})
    twilio = Caller(deployed.url)
    call = call_params("CA" + "f4" * 16)
    root = parse(twilio.post("/voice/handoff?destination=expert&reason=refund", call).text)
    whisper = parse(twilio.post(root.find("Dial/Sip").get("url"), call_params("CA" + "e4" * 16)).text)
    accepted = parse(twilio.post(whisper.find("Gather").get("action"), {**call_params("CA" + "e4" * 16), "Digits": "1"}).text)
    assert verbs(accepted) == []
    assert api.get(f"{deployed.url}/v1/conversations/{call['CallSid']}").json()["handoff"]["state"] == "connected"
    pstn = call_params("CA" + "f5" * 16, From="+14155550100", To="+14155550199", SipCallId=None, SipDomain=None)
    bridged = parse(twilio.post("/voice/handoff?destination=billing", pstn).text)
    assert verbs(bridged) == ["Dial"]


def test_redis_stopped_mid_call(tmp_path):
    """The Procfile web process with its Redis really stopped, then started again."""
    valkey = EmbeddedServer(tmp_path / "redis").start()
    deployment = Deployment({"REDIS_URL": valkey.url, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "HANDOFF_API_KEYS": API_KEY,
                             "DATA_DIR": str(tmp_path / "app")}, processes=("web",))
    deployment.env["PUBLIC_BASE_URL"] = deployment.url
    deployment.start()
    try:
        requests.post(deployment.url + "/v1/destinations", headers=KEY,
                      json={"name": "Desk", "route": "sip:desk@pbx.example.com"})
        twilio = Caller(deployment.url)
        call = call_params("CA" + "f6" * 16)
        root = parse(twilio.post("/voice/handoff", call).text)  # mid-call: the transfer started
        valkey.stop()
        started = time.monotonic()
        after_busy = twilio.post(root.find("Refer").get("action"), {**call, "ReferCallStatus": "busy"})
        fresh_call = twilio.post("/voice/call", call_params("CA" + "f7" * 16))
        took = time.monotonic() - started
        assert after_busy.status_code == 200 and fresh_call.status_code == 200 and took < 4.0
        assert parse(fresh_call.text).find("Refer/Sip").text == "sip:desk@pbx.example.com"
        assert requests.get(deployment.url + "/readyz").status_code == 503
        assert "Redis unreachable" in deployment.logs["web"].read_text()
        valkey.start()
        assert wait_for(lambda: requests.get(deployment.url + "/readyz").status_code == 200)
    finally:
        deployment.stop()
        valkey.stop()


def test_relay_agent_hands_off_and_flex_gets_the_context(tmp_path):
    """AGENT_URL=wss://…: ConversationRelay in; handoffData to billing; a Flex destination."""
    valkey = EmbeddedServer(tmp_path / "redis").start()
    deployment = Deployment({"REDIS_URL": valkey.url, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "HANDOFF_API_KEYS": API_KEY,
                             "DATA_DIR": str(tmp_path / "app"), "AGENT_URL": "wss://agent.example.com/relay"},
                            processes=("web",))
    deployment.env["PUBLIC_BASE_URL"] = deployment.url
    deployment.start()
    try:
        api = requests.Session()
        api.headers.update({**KEY, **ONE_REQUEST})
        api.post(deployment.url + "/v1/destinations", json={"name": "Reception", "route": "sip:reception@pbx"})
        api.post(deployment.url + "/v1/destinations", json={
            "name": "Billing", "route": "sip:billing@pbx", "sip_headers": [{"name": "X-Customer-ID", "value": "$customer.id"}]})
        api.post(deployment.url + "/v1/destinations", json={
            "name": "Flex", "method": "twilio_flex", "route": "WW" + "0" * 32})
        twilio = Caller(deployment.url)
        call = call_params("CA" + "f8" * 16)
        connect = parse(twilio.post("/voice/call", call).text).find("Connect")
        assert connect.find("ConversationRelay").get("url") == "wss://agent.example.com/relay"
        handoff_data = json.dumps({"destination": "billing", "reason": "refund", "state": {"customer": {"id": "C-9"}}})
        root = parse(twilio.post(connect.get("action"), {**call, "HandoffData": handoff_data}).text)
        assert root.find("Refer/Sip").text == "sip:billing@pbx?X-Customer-ID=C-9"
        flex_call = call_params("CA" + "f9" * 16)
        twilio.post("/voice/call", flex_call)
        flex = parse(twilio.post(connect.get("action"), {**flex_call, "HandoffData": json.dumps(
            {"destination": "flex", "reason": "vip", "state": {"tier": "gold"}})}).text)
        task = json.loads(flex.find("Enqueue/Task").text)
        assert task["reason"] == "vip" and task["state"] == {"tier": "gold"} and task["caller"] == "+14155550100"
    finally:
        deployment.stop()
        valkey.stop()


def scrape(deployed) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    response = requests.get(deployed.url + "/metrics", headers=KEY, timeout=10)
    assert response.status_code == 200, response.text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def test_metrics_count_every_process_of_the_deployment(deployed, receiver):
    """A handoff moves the web's counters (in whichever gunicorn worker took each webhook)
    and the worker's (its webhook deliveries), all in one scrape."""
    assert requests.get(deployed.url + "/metrics", timeout=10).status_code == 401
    api = requests.Session()
    api.headers.update(KEY)
    api.post(deployed.url + "/v1/destinations", json={"name": "Backup", "route": "sip:backup@pbx.example.com"})
    api.post(deployed.url + "/v1/destinations", json={"name": "Metered", "route": "sip:metered@pbx.example.com",
                                                      "fallback": "backup"})
    before = scrape(deployed)
    receiver.statuses = [503]  # the first delivery is refused once, then retried
    twilio = Caller(deployed.url)
    call = call_params("CA" + "e1" * 16)
    root = parse(twilio.post("/voice/handoff?destination=metered", call).text)
    root = parse(twilio.post(root.find("Refer").get("action"), {**call, "ReferCallStatus": "busy",
                                                                "NotifySipResponseCode": "486"}).text)
    twilio.post(root.find("Refer").get("action"), {**call, "ReferCallStatus": "in-progress"})
    twilio.post("/voice/status", {**call, "CallStatus": "completed"})
    # requested, transferring, transferring, connected, completed: five deliveries and a retry.
    after = wait_for(lambda: (lambda s: s if moved(before, s, "handoff_webhook_deliveries_total",
                                                   result="delivered") >= 5 else None)(scrape(deployed)))
    assert after, deployed.log_text()
    assert moved(before, after, "handoff_webhook_deliveries_total", result="retried") == 1
    assert moved(before, after, "handoff_handoffs_started_total", destination="metered", method="sip_refer") == 1
    assert moved(before, after, "handoff_attempts_total", destination="metered", result="busy", sip_code="486") == 1
    assert moved(before, after, "handoff_attempts_total", destination="backup", outcome="connected") == 1
    assert moved(before, after, "handoff_handoffs_finished_total", destination="backup", state="completed") == 1
    assert moved(before, after, "handoff_http_request_duration_seconds_count", route="/voice/handoff") == 1
    assert any(name == "handoff_queue_jobs" for name, _ in after)


def test_json_logs_name_the_call_in_web_and_worker(deployed, receiver):
    requests.post(deployed.url + "/v1/destinations", headers=KEY, json={"name": "Logged", "route": "sip:logged@pbx"})
    twilio = Caller(deployed.url)
    call = call_params("CA" + "e2" * 16)
    answer = twilio.post("/voice/handoff?destination=nowhere", call)
    request_id = answer.headers["X-Request-ID"]
    handoff_id = parse(answer.text).find("Refer").get("action").split("/")[5]

    def mine(process: str) -> list[dict]:
        lines = [json.loads(text) for text in deployed.logs[process].read_text().splitlines() if text.startswith("{")]
        return [line for line in lines if line.get("handoff_id") == handoff_id]

    assert wait_for(lambda: any("deliver_event" in line["message"] for line in mine("worker"))), deployed.log_text()
    for line in mine("web") + mine("worker"):
        assert line["call_sid"] == line["conversation_id"] == call["CallSid"], line
    access = [line for line in mine("web") if line["logger"] == "gunicorn.access"]
    assert access and f"request_id={request_id}" in access[0]["message"] and access[0]["request_id"] == request_id


def test_an_answered_long_poll_leaves_no_access_line_and_a_refused_one_does(deployed):
    """A connector under load polls once per page of events; its answered long polls are
    counted in /metrics, not written one line each (handoff/gunicorn_worker.py)."""
    feed = deployed.url + "/v1/handoffs/events"
    first = requests.get(feed, headers=KEY, params={"limit": 1}, timeout=10)
    cursor = first.json()["next_cursor"] or "0-0"
    answered = requests.get(feed, params={"after": cursor, "wait": 0.2}, timeout=10,
                            headers={**KEY, "X-Request-ID": "poll-answered"})
    refused = requests.get(feed, params={"after": cursor, "wait": 0.2}, timeout=10,
                           headers={"X-API-Key": "not-a-key", "X-Request-ID": "poll-refused"})
    assert answered.status_code == 200 and refused.status_code == 401

    def access_lines() -> list[str]:
        lines = [json.loads(text) for text in deployed.logs["web"].read_text().splitlines() if text.startswith("{")]
        return [line["message"] for line in lines if line.get("logger") == "gunicorn.access"]

    assert wait_for(lambda: any("request_id=poll-refused" in line for line in access_lines())), deployed.log_text()
    assert not any("request_id=poll-answered" in line for line in access_lines())
    assert any("request_id=" + first.headers["X-Request-ID"] in line for line in access_lines())


def test_the_workers_log_shows_its_jobs_but_not_each_five_second_sweep(deployed, receiver):
    """rq writes four INFO lines a job; the transfer-timeout sweep runs every 5 s, and its
    would be ~70,000 lines a day around the jobs an operator reads (handoff/worker.py)."""
    twilio = Caller(deployed.url)
    twilio.post("/voice/handoff", call_params("CA" + "e3" * 16))
    sweep_results = f"rq:results:{SWEEP_JOB_ID}"  # rq keeps each run's result under its job id
    with client_for(deployed.env["REDIS_URL"], timeout=5) as redis:
        assert wait_for(lambda: redis.xlen(sweep_results) >= 1, timeout=20), deployed.log_text()
    rq_lines = [json.loads(text)["message"] for text in deployed.logs["worker"].read_text().splitlines()
                if text.startswith("{") and json.loads(text).get("logger") == "rq.worker"]
    assert any("deliver_event" in line for line in rq_lines), deployed.log_text()
    assert not [line for line in rq_lines if "sweep" in line]
