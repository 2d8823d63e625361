"""Background jobs with a real rq worker loop: signed webhooks and live-call redirects."""
import hashlib
import hmac
import json
from http.server import BaseHTTPRequestHandler

import pytest
import responses
from rq.registry import FailedJobRegistry

from app import create_app
from handoff import jobs
from tests.helpers import API_KEY, LoopbackReceiver, call_params, parse, work

CALL = "CA" + "5" * 32
SECRET = "whsec-test"


class Receiver(LoopbackReceiver):
    """A real HTTP endpoint on loopback that answers with the statuses it is told to."""

    def __init__(self):
        self.requests = []
        self.statuses = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(Handler)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def hooked(app, config, receiver):
    app = create_app(config.with_overrides(webhook_url=receiver.url, webhook_secret=SECRET))
    jobs.use(app.extensions["handoff"])
    yield app
    jobs.use(None)



def make_destination(client):
    response = client.post("/v1/destinations", json={"name": "Billing", "route": "sip:b@pbx"},
                           headers={"X-API-Key": API_KEY})
    assert response.status_code == 201


def test_state_changes_are_posted_signed_with_an_idempotency_key(hooked, receiver):
    from tests.helpers import Twilio

    client = hooked.test_client()
    make_destination(client)
    Twilio(client).post("/voice/handoff", call_params(CALL))
    work(hooked)
    assert len(receiver.requests) == 2
    states = []
    for headers, body in receiver.requests:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Handoff-Signature"] == expected
        event = json.loads(body)
        assert headers["Idempotency-Key"] == event["id"]
        states.append(event["state"])
        assert event["handoff"]["conversation_id"] == CALL
    assert states == ["requested", "transferring"]


def test_receiver_down_then_up_is_retried(hooked, receiver):
    from tests.helpers import Twilio

    client = hooked.test_client()
    make_destination(client)
    receiver.statuses = [503, 502]  # the first two deliveries fail, the retries succeed
    Twilio(client).post("/voice/handoff", call_params(CALL))
    work(hooked)
    keys = [headers["Idempotency-Key"] for headers, _ in receiver.requests]
    assert len(keys) == 4 and len(set(keys)) == 2  # each event retried once, same key
    handoff = client.get(f"/v1/conversations/{CALL}", headers={"X-API-Key": API_KEY}).get_json()["handoff"]
    assert handoff["warnings"] == []


def test_receiver_down_for_good_is_visible(hooked, receiver):
    from tests.helpers import Twilio

    client = hooked.test_client()
    make_destination(client)
    receiver.statuses = [500] * 20
    Twilio(client).post("/voice/handoff", call_params(CALL))
    work(hooked)
    services = hooked.extensions["handoff"]
    assert len(FailedJobRegistry(queue=services.queue)) == 2
    handoff = client.get(f"/v1/conversations/{CALL}", headers={"X-API-Key": API_KEY}).get_json()["handoff"]
    assert {w["code"] for w in handoff["warnings"]} == {"webhook_failed"}
    assert len(receiver.requests) == 6  # one try and two retries per event


TWILIO_CALL_URL = f"https://api.twilio.com/2010-04-01/Accounts/{'AC' + '0' * 32}/Calls/{CALL}.json"


@responses.activate
def test_api_handoff_on_a_live_call_redirects_it_through_twilio(app, api, twilio):
    responses.add(responses.POST, TWILIO_CALL_URL, json={"sid": CALL, "status": "in-progress"})
    api.post("/v1/destinations", json={"name": "Billing", "route": "sip:b@pbx",
                                        "sip_headers": [{"name": "X-Caller", "value": "$caller_id"}]})
    twilio.post("/voice/call", call_params(CALL))
    created = api.post(f"/v1/conversations/{CALL}/handoff", json={"reason": "asked", "utterance": "Hold on."})
    assert created.status_code == 201 and created.get_json()["state"] == "requested"
    work(app)
    assert len(responses.calls) == 1
    sent = dict(x.split("=", 1) for x in responses.calls[0].request.body.split("&"))
    from urllib.parse import unquote_plus

    root = parse(unquote_plus(sent["Twiml"]))
    assert root.find("Say").text == "Hold on."
    assert root.find("Refer/Sip").text == "sip:b@pbx?X-Caller=%2B14155550100"
    handoff = api.get(f"/v1/handoffs/{created.get_json()['id']}").get_json()
    assert handoff["state"] == "transferring" and handoff["sip_headers"] == {"X-Caller": "+14155550100"}
    work(app)  # a second run of the job changes nothing
    assert len(responses.calls) == 1


@responses.activate
def test_twilio_refusing_the_redirect_fails_the_handoff(app, api, twilio):
    responses.add(responses.POST, TWILIO_CALL_URL, status=400, json={
        "code": 21220, "message": "Call is not in-progress. Cannot redirect.", "status": 400})
    api.post("/v1/destinations", json={"name": "Billing", "route": "sip:b@pbx"})
    twilio.post("/voice/call", call_params(CALL))
    created = api.post(f"/v1/conversations/{CALL}/handoff", json={}).get_json()
    work(app)
    handoff = api.get(f"/v1/handoffs/{created['id']}").get_json()
    assert handoff["state"] == "failed"
    assert handoff["history"][-1]["detail"]["twilio_code"] == 21220
    assert [w["code"] for w in handoff["warnings"]] == ["call_update_failed"]


@responses.activate
def test_twilio_server_errors_are_retried(app, api, twilio):
    responses.add(responses.POST, TWILIO_CALL_URL, status=503, json={"code": 20500, "message": "down", "status": 503})
    responses.add(responses.POST, TWILIO_CALL_URL, json={"sid": CALL})
    api.post("/v1/destinations", json={"name": "Billing", "route": "sip:b@pbx"})
    twilio.post("/voice/call", call_params(CALL))
    created = api.post(f"/v1/conversations/{CALL}/handoff", json={}).get_json()
    work(app)
    assert len(responses.calls) == 2
    assert api.get(f"/v1/handoffs/{created['id']}").get_json()["state"] == "transferring"


@responses.activate
def test_claiming_a_live_call_handoff_does_not_stop_its_transfer(app, api, twilio):
    responses.add(responses.POST, TWILIO_CALL_URL, json={"sid": CALL})
    api.post("/v1/destinations", json={"name": "Billing", "route": "sip:b@pbx"})
    twilio.post("/voice/call", call_params(CALL))
    created = api.post(f"/v1/conversations/{CALL}/handoff", json={}).get_json()
    claimed = api.post(f"/v1/handoffs/{created['id']}/claim", json={"agent": "ana"}).get_json()
    assert claimed["claimed_by"] == "ana" and claimed["state"] == "requested"
    work(app)
    assert len(responses.calls) == 1
    assert api.get(f"/v1/handoffs/{created['id']}").get_json()["state"] == "transferring"


def test_a_worker_without_the_webhook_url_says_so(hooked, app, caplog):
    from tests.helpers import Twilio

    client = hooked.test_client()
    make_destination(client)
    Twilio(client).post("/voice/handoff", call_params(CALL))  # queued by a web process with the URL
    jobs.use(app.extensions["handoff"])  # ...run by a worker without it
    with caplog.at_level("WARNING"):
        work(app)
    handoff = client.get(f"/v1/conversations/{CALL}", headers={"X-API-Key": API_KEY}).get_json()["handoff"]
    assert [w["code"] for w in handoff["warnings"]] == ["webhook_not_configured"]
    assert any("no HANDOFF_WEBHOOK_URL" in r.getMessage() for r in caplog.records)
