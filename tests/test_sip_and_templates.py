"""Pure functions: SIP routes, header rules, templating, and the TwiML they become."""
import pytest

from handoff import sip
from handoff.templating import merge_headers, render_headers
from tests.helpers import parse, verbs
from twiml import voice


@pytest.mark.parametrize("name", ["X-Customer-ID", "x-case", "User-to-User", "P-Called-Party-ID"])
def test_header_names_twilio_accepts(name):
    assert sip.header_name_problem(name) is None


@pytest.mark.parametrize("name, why", [
    ("Customer", "X-Name"), ("X-Twilio-Foo", "X-Twilio"), ("X-Bad Name", "X-Name"),
    ("X-A\r\nVia", "CR, LF"), ("X-" + "a" * 80, "at most"), ("", "required"),
])
def test_header_names_refused_with_a_reason(name, why):
    assert why in sip.header_name_problem(name)


def test_header_values_refuse_line_breaks_and_size():
    assert "CR, LF" in sip.header_value_problem("a\r\nX-Evil: 1")
    assert "NUL" in sip.header_value_problem("a\x00b")
    assert "at most" in sip.header_value_problem("a" * (sip.HEADER_VALUE_LIMIT + 1))
    assert sip.header_value_problem("$caller_id / ok") is None


def test_values_are_percent_encoded_so_they_cannot_end_the_uri():
    encoded = sip.encode_headers({"X-Note": "a&b=c?d e;f\r\n"})
    assert encoded == "X-Note=a%26b%3Dc%3Fd%20e%3Bf%0D%0A"


@pytest.mark.parametrize("route, method, expected", [
    ("sip:agent@pbx.example.com", "sip_refer", ("sip", "sip:agent@pbx.example.com")),
    ("1001", "sip_refer", ("sip", "sip:1001@sbc.example.com")),
    ("+14155550123", "sip_invite", ("number", "+14155550123")),
    ("+14155550123", "sip_refer", ("sip", "sip:+14155550123@sbc.example.com")),
    ("sip:q@pbx.example.com", "sip_invite", ("sip", "sip:q@pbx.example.com;transport=tls;secure=true")),
    ("sip:q@pbx.example.com;transport=tls", "sip_invite", ("sip", "sip:q@pbx.example.com;transport=tls;secure=true")),
])
def test_dial_targets(route, method, expected):
    assert sip.dial_target(route, method=method, sip_domain="sbc.example.com") == expected


def test_udp_rtp_adds_no_transport_parameters():
    assert sip.dial_target("sip:q@pbx", method="sip_invite", sip_domain=None, encryption="udp_rtp") == ("sip", "sip:q@pbx")


@pytest.mark.parametrize("route", ["sip:a@b?X-Evil=1", "sip:a b@c", "hello world", "+0123", "sip:a@b\r\n"])
def test_bad_routes_are_refused(route):
    with pytest.raises(sip.RouteError):
        sip.classify_route(route)


def test_extension_without_sip_domain_cannot_be_dialled():
    with pytest.raises(sip.RouteError, match="SIP_DOMAIN"):
        sip.dial_target("1001", method="sip_refer", sip_domain=None)


def test_templates_fill_builtins_state_and_dotted_paths():
    headers, warnings = render_headers(
        {"X-Caller": "$caller_id", "X-Cust": "id=${customer.id}!", "X-Tier": "$customer.tier.",
         "X-Cost": "$$5"},
        {"caller_id": "+14155550100"}, {"customer": {"id": 42, "tier": "gold"}})
    assert headers == {"X-Caller": "+14155550100", "X-Cust": "id=42!", "X-Tier": "gold.", "X-Cost": "$5"}
    assert warnings == []


def test_missing_variable_leaves_the_header_out_with_a_warning():
    headers, warnings = render_headers({"X-A": "$nope", "X-B": "fine"}, {}, {})
    assert headers == {"X-B": "fine"}
    assert warnings[0]["code"] == "missing_variable" and "$nope" in warnings[0]["message"]


def test_rendered_values_lose_control_characters():
    headers, _ = render_headers({"X-A": "$note"}, {}, {"note": "line1\r\nX-Injected: yes"})
    assert "\r" not in headers["X-A"] and "\n" not in headers["X-A"]


def test_long_values_are_trimmed_to_twilios_limit_with_a_warning():
    state = {"big": "é" * 400, "small": "keep"}
    headers, warnings = render_headers({"X-Big": "$big", "X-Small": "$small"}, {}, state)
    assert sip.headers_length(headers) <= sip.HEADERS_LIMIT
    assert headers["X-Small"] == "keep" and headers["X-Big"].startswith("é")
    assert [w["code"] for w in warnings] == ["headers_truncated"]


def test_call_time_headers_win_over_the_destinations_case_insensitively():
    merged = merge_headers([{"name": "X-Queue", "value": "sales"}, {"name": "X-Lang", "value": "en"}],
                           {"x-queue": "billing"})
    assert merged == {"X-Lang": "en", "x-queue": "billing"}


def test_refer_twiml():
    root = parse(str(voice.transfer_twiml(voice.Transfer(
        method="sip_refer", action_url="https://h/voice/handoff/HO1/status?attempt=1",
        target="sip:a@b", headers={"X-A": "1", "X-B": "two words"}, utterance="Transferring you."))))
    assert verbs(root) == ["Say", "Refer"]
    refer = root.find("Refer")
    assert refer.get("action") == "https://h/voice/handoff/HO1/status?attempt=1"
    assert [c.tag for c in refer] == ["Sip"]
    assert refer.find("Sip").text == "sip:a@b?X-A=1&X-B=two%20words"


def test_invite_twiml_rings_for_the_ring_timeout():
    root = parse(str(voice.transfer_twiml(voice.Transfer(
        method="sip_invite", action_url="/s", target="sip:a@b;transport=tls;secure=true",
        headers={"X-A": "1"}, ring_timeout=45))))
    dial = root.find("Dial")
    assert verbs(root) == ["Dial"] and dial.get("timeout") == "45" and dial.get("action") == "/s"
    assert dial.find("Sip").text == "sip:a@b;transport=tls;secure=true?X-A=1"


def test_invite_to_a_number_dials_a_number_noun():
    root = parse(str(voice.dial(voice.Transfer(method="sip_invite", action_url="/s", kind="number",
                                               target="+14155550123"))))
    assert root.find("Dial/Number").text == "+14155550123"


def test_bye_twiml_says_then_hangs_up():
    root = parse(str(voice.transfer_twiml(voice.Transfer(method="sip_bye", action_url="/s", utterance="Bye"))))
    assert verbs(root) == ["Say", "Hangup"]
