"""What tests share: the service's callers as they call it (a connector with a key, Twilio
signing its webhooks), a call's parameters, and TwiML read the way Twilio reads it."""
from __future__ import annotations

import re
import threading
import xml.etree.ElementTree as ET
from http.server import ThreadingHTTPServer

from twilio.request_validator import RequestValidator

from handoff.redis_server import client_for


def parse(response_or_text):
    text = response_or_text if isinstance(response_or_text, str) else response_or_text.get_data(as_text=True)
    root = ET.fromstring(text)
    assert root.tag == "Response", text
    return root


def verbs(root):
    return [child.tag for child in root]


AUTH_TOKEN = "test-auth-token"
API_KEY = "test-api-key"
BASE_URL = "https://handoff.example.com"


def add_destination(api, name="Billing", **fields):
    """Create a destination through the API (route sip:<name>@pbx.example.com unless given)."""
    user = re.sub(r"[^a-z0-9]+", "", name.lower())
    body = {"name": name, "route": f"sip:{user}@pbx.example.com", **fields}
    response = api.post("/v1/destinations", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def path(url):
    """The path (and query) of a callback URL the service gave Twilio."""
    assert url.startswith(BASE_URL), url
    return url[len(BASE_URL):]


def latest_handoff(api, conversation_id):
    return api.get(f"/v1/conversations/{conversation_id}").get_json()["handoff"]


class Api:
    """The /v1 API as a connector uses it: JSON in, JSON out, with a key."""

    def __init__(self, client):
        self.client = client
        self.headers = {"Authorization": f"Bearer {API_KEY}"}

    def __getattr__(self, verb):
        def call(path, json=None, **kwargs):
            headers = {**self.headers, **kwargs.pop("headers", {})}
            return getattr(self.client, verb)(path, json=json, headers=headers, **kwargs)

        return call


class Twilio:
    """Twilio as it calls the voice webhooks: form-encoded and signed."""

    def __init__(self, client, token=AUTH_TOKEN, base=BASE_URL):
        self.client = client
        self.validator = RequestValidator(token)
        self.base = base

    def post(self, path, params=None, headers=None, sign=True):
        params = {k: v for k, v in (params or {}).items() if v is not None}
        headers = dict(headers or {})
        if sign:
            headers["X-Twilio-Signature"] = self.validator.compute_signature(self.base + path, params)
        return self.client.post(path, data=params, headers=headers)


def call_params(call_sid="CA" + "1" * 32, **extra):
    """A call reaching the service through a Twilio SIP Domain from the SBC (a SIP leg,
    where <Refer> works). Pass From/To as numbers and no SipCallId for a PSTN caller."""
    params = {"CallSid": call_sid, "AccountSid": "AC" + "0" * 32,
              "From": "sip:+14155550100@sbc.example.com", "To": "sip:+14155550199@handoff.sip.twilio.com",
              "SipCallId": f"{call_sid[-8:]}@sbc.example.com", "SipDomain": "handoff.sip.twilio.com",
              "CallStatus": "in-progress", "Direction": "inbound"}
    params.update(extra)
    return {k: v for k, v in params.items() if v is not None}


def flush(redis_url: str) -> None:
    """Empty the test server. A generous timeout: the service's own clients fail fast by
    design (0.5 s), but a busy machine can take longer than that to empty a database."""
    client_for(redis_url, timeout=10).flushall()


def work(app) -> None:
    """Run every queued background job now, as the Procfile's worker would (rq, in-process)."""
    from rq import SimpleWorker

    services = app.extensions["handoff"]
    SimpleWorker([services.queue], connection=services.queue.connection).work(burst=True)


class LoopbackReceiver:
    """A real HTTP endpoint on loopback, served from a thread, for the service to deliver
    webhooks to: `url` ends in /hook; `handler` is the request handler class answering."""

    def __init__(self, handler):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
