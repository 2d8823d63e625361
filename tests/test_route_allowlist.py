"""Call-time route overrides: ALLOWED_ROUTE_PATTERNS bounds where an agent can send a call.

The override is what an LLM-driven agent sends, so a pattern is matched against the parsed
URI (scheme, user, host, port, parameters), never the raw text."""
from __future__ import annotations

import pytest

from handoff.route_allowlist import pattern_problem, route_allowed
from tests.helpers import add_destination, call_params, latest_handoff, parse

PATTERNS = ("sip:*@pbx.example.com", "sip:*@trunk.example.com;transport=*", "+44*", "10??",
            "sip:*@[2001:db8::1]:*")
CALL = "CA" + "7" * 32
BYPASS = "sip:+19005551234@evil.example.com;x=@pbx.example.com"


@pytest.fixture
def config(config):
    return config.with_overrides(allowed_route_patterns=PATTERNS)


def hand_off(twilio, route, call=CALL):
    return parse(twilio.post("/voice/handoff", {**call_params(call), "destination": "Billing", "route": route}))


def warning_codes(api, call=CALL):
    return [w["code"] for w in latest_handoff(api, call)["warnings"]]


def api_handoff(api, route):
    cid = api.post("/v1/conversations", json={"channel": "webchat"}).get_json()["id"]
    return api.post(f"/v1/conversations/{cid}/handoff", json={"destination": "Billing", "route": route})


@pytest.mark.parametrize("route, allowed", [
    ("sip:vip@pbx.example.com", True),
    ("SIP:vip@PBX.example.com", True),  # scheme and host are case-insensitive
    (BYPASS, False),  # the red-team route: `*` must not run across "@" and ";"
    ("sip:+19005551234@evil.example.com;x=pbx.example.com", False),
    ("sip:vip@pbx.example.com;maddr=evil.example.com", False),  # maddr sends the call elsewhere
    ("sip:vip@pbx.example.com:5080", False),  # no port in the pattern: none in the route
    ("sips:vip@pbx.example.com", False),
    ("sip:pbx.example.com", False),  # the pattern has a user part
    ("sip:vip@pbx.example.com.evil.example", False),
    ("sip:vip@trunk.example.com;transport=tls", True),
    ("sip:vip@trunk.example.com;transport=tls;maddr=evil.example.com", False),
    ("+442071234567", True),
    ("+4420;x", False),  # matches "+44*" as text, but no number carries ";x"
    ("+19005551234", False),
    ("1001", True),
    ("10011", False),
    ("sip:vip@[2001:db8::1]:5061", True),
    ("sip:vip@[2001:db8::2]:5061", False),
])
def test_patterns_match_the_parsed_route(route, allowed):
    assert route_allowed(route, PATTERNS) is allowed


def test_patterns_that_can_never_match_are_named():
    assert pattern_problem("sip:*@pbx.example.com;transport=tls") is None
    assert pattern_problem("+44*") is None
    assert pattern_problem("sip:a@b@c") is not None
    assert pattern_problem("tel:+44 20") is not None


def test_the_red_team_bypass_is_refused_over_voice_and_the_api(api, twilio):
    add_destination(api, "Billing")
    refused = api_handoff(api, BYPASS)
    assert refused.status_code == 422
    assert "at most one '@'" in refused.get_json()["error"]["fields"]["route"][0]

    root = hand_off(twilio, BYPASS)
    assert root.find("Refer/Sip").text == "sip:billing@pbx.example.com"
    assert warning_codes(api) == ["route_unusable"]


def test_parameters_the_pattern_does_not_name_are_refused(api, twilio):
    add_destination(api, "Billing")
    # The glob "transport=*" read as text would take ";maddr=evil.example.com" too.
    route = "sip:vip@trunk.example.com;transport=tls;maddr=evil.example.com"
    refused = api_handoff(api, route)
    assert refused.status_code == 422 and "ALLOWED_ROUTE_PATTERNS" in refused.get_json()["error"]["fields"]["route"][0]
    assert hand_off(twilio, route).find("Refer/Sip").text == "sip:billing@pbx.example.com"
    assert warning_codes(api) == ["route_refused"]

    allowed = "sip:vip@trunk.example.com;transport=tls"
    assert api_handoff(api, allowed).status_code == 201
    assert hand_off(twilio, allowed, "CA" + "8" * 32).find("Refer/Sip").text == allowed


def test_an_allowlisted_but_unusable_override_still_reaches_the_requested_destination(api, twilio):
    add_destination(api, "Billing")
    add_destination(api, "Overflow", fallback=None)
    refused = api_handoff(api, "+4420;x")
    assert refused.status_code == 422 and "route" in refused.get_json()["error"]["fields"]

    root = hand_off(twilio, "+4420;x")
    assert root.find("Refer/Sip").text == "sip:billing@pbx.example.com"
    assert warning_codes(api) == ["route_unusable"]
    assert latest_handoff(api, CALL)["destination"]["id"] == "billing"


def test_an_allowed_override_the_method_cannot_dial_uses_the_destination_route(app, api, client_of, config):
    from app import create_app
    from tests.helpers import Twilio

    add_destination(api, "Billing")
    # An extension needs SIP_DOMAIN to become a URI: without it the override cannot be dialled.
    twilio = Twilio(client_of(create_app(config.with_overrides(sip_domain=None))))
    root = hand_off(twilio, "1001")
    assert root.find("Refer/Sip").text == "sip:billing@pbx.example.com"
    assert warning_codes(api) == ["route_unusable"]
