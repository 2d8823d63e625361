"""What an attacker on the internet can send, refused: requests a penetration tester would try
against a deployment behind its router, each asserted from what the attacker (or the
operator reading the logs) sees."""
from __future__ import annotations

import io
import logging
from http.server import BaseHTTPRequestHandler

import pytest

from app import create_app
from handoff import jobs, logs
from tests.helpers import API_KEY, Api, LoopbackReceiver, Twilio, call_params, work
from tests.test_studio import csrf

LIMIT = 3
CALL = "CA" + "7" * 32


@pytest.fixture
def config(config):
    return config.with_overrides(auth_failure_limit=LIMIT, auth_failure_window=60)


@pytest.fixture
def text_log():
    """What the process writes to its log in the default (text) format."""
    stream = io.StringIO()
    handler = logs.handler("text", stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


# -- log injection ----------------------------------------------------------------------
FORGED = "2026-11-26 22:00:00,000 ERROR handoff: forged line"


def test_a_path_cannot_write_a_line_of_its_own_into_the_log(client, text_log):
    # Anyone may call a webhook unsigned; the refusal is logged with the path it asked for,
    # and the server hands the path over percent-decoded.
    response = client.post(f"/voice/handoff/HO1%0d%0a{FORGED}/status", data={})
    assert response.status_code == 403
    lines = text_log.getvalue().splitlines()
    assert any("refused POST /voice/handoff/HO1" in line for line in lines)
    assert not any(line.startswith(FORGED) for line in lines), lines


def test_a_traceback_still_spans_lines(text_log):
    log = logging.getLogger("tests.attacks")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed on %s", "/voice/x\nFAKE")
    written = text_log.getvalue()
    assert "failed on /voice/x\\nFAKE" in written
    assert "\nTraceback (most recent call last):\n" in written and "ValueError: boom" in written


# -- the sign-in page's `next` ------------------------------------------------------------
@pytest.mark.parametrize("target", ["/studio/handoffs\r\nSet-Cookie: planted=1", "/studio/\x00x", "/studio/\tx"])
def test_a_next_page_with_control_characters_is_ignored_not_a_500(app, target):
    client = app.test_client()
    form = client.get("/studio/sign-in", query_string={"next": target})
    assert form.status_code == 200
    response = client.post("/studio/sign-in", data={"api_key": API_KEY, "csrf_token": csrf(form), "next": target})
    assert response.status_code == 303
    assert response.headers["Location"] == "/studio/handoffs"
    assert "planted" not in response.headers.get("Set-Cookie", "")
    # Signed in already, the page sends the browser on instead, with the same care.
    again = client.get("/studio/sign-in", query_string={"next": target})
    assert again.status_code == 302 and again.headers["Location"] == "/studio/handoffs"


# -- key guessing on the PolyAI-shaped routes ----------------------------------------------
def test_two_keys_in_one_request_are_two_guesses(app):
    """X-API-Key and X-TOKEN are both read: a request carrying a guess in each tries two
    keys, and the throttle must count both, or guessing runs at twice the limit."""
    client = app.test_client()
    guesser = {"REMOTE_ADDR": "203.0.113.20"}
    create = "/v1/ACCOUNT-1/PROJECT-1/chat/create"
    tried = 0
    while True:
        response = client.post(create, json={}, environ_base=guesser,
                               headers={"X-API-Key": f"guess-{tried}", "X-TOKEN": f"guess-{tried + 1}"})
        if response.status_code == 429:
            break
        assert response.status_code == 401
        tried += 2
    assert tried <= LIMIT
    # A right key in either header still opens the route for another client.
    other = {"REMOTE_ADDR": "203.0.113.21"}
    assert client.post(create, json={}, environ_base=other,
                       headers={"X-API-Key": "wrong", "X-TOKEN": API_KEY}).status_code == 200



# -- key guessing from many addresses of one IPv6 network ----------------------------------
def test_an_ipv6_client_cannot_dodge_the_throttle_by_changing_its_interface_id(app):
    """Any IPv6 host is handed a whole /64 (RFC 6177): per address, a guesser has 2**64
    fresh counts. The network the address belongs to is the client."""
    client = app.test_client()
    for n in range(LIMIT):
        response = client.get("/v1/destinations", headers={"X-API-Key": f"guess-{n}"},
                              environ_base={"REMOTE_ADDR": f"2001:db8:1:2::{n + 1:x}"})
        assert response.status_code == 401
    again = client.get("/v1/destinations", headers={"X-API-Key": API_KEY},
                       environ_base={"REMOTE_ADDR": "2001:db8:1:2:aaaa:bbbb:cccc:dddd"})
    assert again.status_code == 429
    # The long-poll fast path (web/feed_polls.py) refuses it too: answered by the view, a 429.
    poll = client.get("/v1/handoffs/events", query_string={"after": "0-0", "wait": "1"},
                      headers={"X-API-Key": API_KEY}, environ_base={"REMOTE_ADDR": "2001:db8:1:2::99"})
    assert poll.status_code == 429
    # The next network over, and IPv4 clients, are their own.
    assert client.get("/v1/destinations", headers={"X-API-Key": API_KEY},
                      environ_base={"REMOTE_ADDR": "2001:db8:1:3::1"}).status_code == 200
    assert client.get("/v1/destinations", headers={"X-API-Key": API_KEY},
                      environ_base={"REMOTE_ADDR": "203.0.113.30"}).status_code == 200


# -- outgoing webhooks ------------------------------------------------------------------------
class RedirectingReceiver(LoopbackReceiver):
    """A webhook receiver on loopback that sends every POST to /hook on to /elsewhere with the
    status it is given, and records whatever reaches /elsewhere."""

    def __init__(self, status: int):
        self.elsewhere: list[tuple[str, bytes]] = []
        self.hooked = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/hook":
                    receiver.hooked += 1
                    self.send_response(status)
                    self.send_header("Location", "/elsewhere")
                else:
                    receiver.elsewhere.append((self.command, body))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        super().__init__(Handler)


@pytest.mark.parametrize("status", [302, 307])
def test_a_webhook_receiver_cannot_redirect_the_signed_event_elsewhere(app, config, status):
    """A redirect is not a delivery: followed, a 302 turned the POST into a bodiless GET that
    counted as delivered (the event was lost) and a 307 re-sent the signed event to whatever
    address the answer named, from inside the deployment."""
    receiver = RedirectingReceiver(status)
    hooked = create_app(config.with_overrides(webhook_url=receiver.url, webhook_secret="whsec-test"))
    jobs.use(hooked.extensions["handoff"])
    try:
        client = hooked.test_client()
        api = Api(client)
        assert api.post("/v1/destinations", json={"name": "Billing", "route": "sip:b@pbx"}).status_code == 201
        Twilio(client).post("/voice/handoff", call_params(CALL))
        work(hooked)
        assert receiver.elsewhere == []
        assert receiver.hooked == 2  # each event tried once: a redirect will not mend itself
        handoff = api.get(f"/v1/conversations/{CALL}").get_json()["handoff"]
        failed = [w["message"] for w in handoff["warnings"] if w["code"] == "webhook_failed"]
        assert len(failed) == 2 and all(f"HTTP {status}" in message for message in failed)
    finally:
        jobs.use(app.extensions["handoff"])
        receiver.close()


# -- the page over plain http --------------------------------------------------------------
ROUTER_SAYS_HTTP = {"X-Forwarded-Proto": "http", "X-Forwarded-Host": "handoff.example.com"}


def test_the_page_reached_over_plain_http_moves_to_https_before_a_key_is_typed(app):
    """PUBLIC_BASE_URL is https, but a router (Heroku's answers http:// too) says this
    request came over plain http: the sign-in form would send the key in clear text and the
    session cookie would go out without Secure, so the browser is sent to https first."""
    client = app.test_client()
    page = client.get("/studio/sign-in?next=/studio/insights", headers=ROUTER_SAYS_HTTP)
    assert page.status_code == 301
    assert page.headers["Location"] == "https://handoff.example.com/studio/sign-in?next=/studio/insights"
    assert "Set-Cookie" not in page.headers

    # The path goes back percent-encoded, as it came: a CR/LF in it is no 500.
    odd = client.get("/studio/handoffs/x%0d%0ay/edit", headers=ROUTER_SAYS_HTTP)
    assert odd.status_code == 301 and odd.headers["Location"] == "https://handoff.example.com/studio/handoffs/x%0D%0Ay/edit"

    # A form posted over http is not acted on: no session starts, the browser goes to https.
    secure = client.get("/studio/sign-in", base_url="https://handoff.example.com")
    posted = client.post("/studio/sign-in", headers=ROUTER_SAYS_HTTP,
                         data={"api_key": API_KEY, "csrf_token": csrf(secure)})
    assert posted.status_code == 303
    assert posted.headers["Location"] == "https://handoff.example.com/studio/sign-in"
    assert "Set-Cookie" not in posted.headers
    assert client.get("/studio/handoffs", base_url="https://handoff.example.com").status_code == 303

    # Over https the page is served, and tells the browser to stay on https.
    served = client.get("/studio/sign-in", base_url="https://handoff.example.com")
    assert served.status_code == 200
    assert served.headers["Strict-Transport-Security"].startswith("max-age=")


def test_without_a_router_saying_http_the_page_is_served_as_it_was_asked_for(app):
    # Local development: http://localhost with no router in front (and nothing to redirect
    # to that would work), even with PUBLIC_BASE_URL naming the https tunnel Twilio uses.
    client = app.test_client()
    page = client.get("/studio/sign-in")
    assert page.status_code == 200
    assert "Strict-Transport-Security" not in page.headers


def test_unsigned_webhook_deliveries_are_warned_about_at_start(config, caplog):
    # Without the secret, anyone who learns the receiver's URL can post it events it cannot
    # tell from the service's own.
    with caplog.at_level(logging.WARNING):
        create_app(config.with_overrides(webhook_url="https://crm.example.com/hooks", webhook_secret=""))
    assert [r.getMessage() for r in caplog.records if "HANDOFF_WEBHOOK_SECRET" in r.getMessage()] == [
        "HANDOFF_WEBHOOK_URL is set without HANDOFF_WEBHOOK_SECRET: events go out unsigned "
        "(no X-Handoff-Signature), so the receiver cannot tell them from forged ones"]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        create_app(config.with_overrides(webhook_url="https://crm.example.com/hooks", webhook_secret="s" * 32))
    assert not [r for r in caplog.records if "HANDOFF_WEBHOOK_SECRET" in r.getMessage()]
