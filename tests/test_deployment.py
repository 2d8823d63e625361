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

from handoff.redis_server import EmbeddedServer
from tests.conftest import API_KEY, AUTH_TOKEN, call_params
from tests.deployment import Deployment
from tests.test_jobs import Receiver
from tests.helpers import parse, verbs

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
        "HANDOFF_WEBHOOK_RETRY_INTERVALS": "1,1,1", "WEB_CONCURRENCY": "2", "WEB_THREADS": "16",
    })
    deployment.env["PUBLIC_BASE_URL"] = deployment.url
    deployment.start()
    yield deployment
    deployment.stop()
    valkey.stop()


class Caller:
    """Twilio, over HTTP, signing each request for the URL it posts to."""

    def __init__(self, base):
        self.base = base
        self.validator = RequestValidator(AUTH_TOKEN)

    def post(self, url, params, sign=True):
        url = url if url.startswith("http") else self.base + url
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, params)} if sign else {}
        return requests.post(url, data=params, headers=headers, timeout=10)


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
        response = requests.post(first.url + "/v1/destinations", headers=KEY,
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
