"""Every callback URL the service hands Twilio (handoff/callback_urls.py) reaches the route
meant to answer it, with its query intact: a route moved in web/ cannot leave a stale URL."""
from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from handoff import callback_urls as urls

BASE = "https://h.example.com/prefix"


def served_by(app, url: str) -> tuple[str, dict, dict]:
    """The endpoint, path arguments and query a POST to `url` meets."""
    parts = urlsplit(url)
    assert url.startswith(BASE), url
    path = unquote(parts.path[len(urlsplit(BASE).path):])  # as the WSGI server decodes it
    endpoint, arguments = app.url_map.bind("h.example.com").match(path, method="POST")
    return endpoint, arguments, parse_qs(parts.query)


@pytest.mark.parametrize("url, endpoint, arguments, query", [
    (urls.handoff_step(BASE, "HO1", "status", 2, ["a", "b"]), "voice.handoff_status",
     {"handoff_id": "HO1"}, {"attempt": ["2"], "tried": ["a,b"]}),
    (urls.handoff_step(BASE, "HO1", "whisper", 1), "voice.handoff_whisper", {"handoff_id": "HO1"}, {"attempt": ["1"]}),
    (urls.handoff_step(BASE, "HO1", "accept", 1), "voice.handoff_accept", {"handoff_id": "HO1"}, {"attempt": ["1"]}),
    (urls.handoff_step(BASE, "HO1", "answered", 1), "voice.handoff_answered", {"handoff_id": "HO1"},
     {"attempt": ["1"]}),
    (urls.handoff_step(BASE, "HO1", "amd", 1), "voice.handoff_amd", {"handoff_id": "HO1"}, {"attempt": ["1"]}),
    (urls.handoff_step(BASE, "HO1", "recording", 3), "voice.handoff_recording", {"handoff_id": "HO1"},
     {"attempt": ["3"]}),
    (urls.outbound_answered(BASE), "voice.outbound_answered", {}, {}),
    (urls.call_status(BASE), "voice.call_status", {}, {}),
    (urls.outbound_amd(BASE), "voice.answering_machine", {}, {}),
    (urls.agent_ended(BASE), "voice.agent_ended", {}, {}),
    (urls.router_turn(BASE, 3), "voice.router_turn", {}, {"turn": ["3"]}),
    (urls.destination_test_status(BASE, "sales desk", "TC1"), "routing_voice.test_call_status",
     {"destination_id": "sales desk", "test_id": "TC1"}, {}),
])
def test_each_callback_url_reaches_its_route(app, url, endpoint, arguments, query):
    assert served_by(app, url) == (endpoint, arguments, query)


@pytest.mark.parametrize("step", ["status", "conference", "whisper", "accept", "call", "amd", "announce"])
def test_each_consult_callback_url_reaches_a_consult_route(app, step):
    endpoint, arguments, query = served_by(app, urls.consult_step(BASE, "HO1", step, 2))
    assert endpoint.startswith("consult.") and arguments == {"handoff_id": "HO1"} and query == {"attempt": ["2"]}


def test_the_console_paths_are_routes(app):
    for path in (urls.INCOMING_CALL, urls.FALLBACK, urls.CALL_STATUS, urls.INCOMING_SMS, urls.AGENT_HANDOFF):
        app.url_map.bind("h.example.com").match(path, method="POST")
