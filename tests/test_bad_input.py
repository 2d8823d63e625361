"""Input built to break the service gets a clear 4xx (or, on a voice webhook, a transfer):
never a 5xx, a traceback, or a value stored that cannot be served back."""
from __future__ import annotations

import base64
import json
import logging

import pytest
import requests
import responses

from tests.helpers import add_destination, call_params, latest_handoff, parse

CALL = "CA" + "9" * 32
DEEP = "[" * 100_000 + "]" * 100_000  # json raises RecursionError on this, not ValueError


def nested(levels: int) -> dict:
    doc: dict = {"leaf": True}
    for _ in range(levels - 1):
        doc = {"a": doc}
    return doc


# -- voice: a normal transfer, whatever `data` holds ----------------------------------
@pytest.mark.parametrize("data", [DEEP, json.dumps(nested(200)), '{"score": NaN}'],
                         ids=["recursion", "deep", "nan"])
def test_unusable_data_on_voice_handoff_is_a_warning_and_a_normal_transfer(api, twilio, data):
    add_destination(api, "Billing")
    answer = twilio.post("/voice/handoff", {**call_params(CALL), "data": data})
    assert answer.status_code == 200
    assert parse(answer).find("Refer/Sip").text == "sip:billing@pbx.example.com"
    handoff = latest_handoff(api, CALL)
    assert [w["code"] for w in handoff["warnings"]] == ["bad_data"]
    assert handoff["state"] == "transferring" and set(handoff["data"]) == {"raw"}


def test_data_nested_within_the_limit_is_kept(api, twilio):
    add_destination(api, "Billing")
    twilio.post("/voice/handoff", {**call_params(CALL), "data": json.dumps(nested(10))})
    assert latest_handoff(api, CALL)["data"] == nested(10)


@pytest.mark.parametrize("handoff_data", ['{"data": ' + json.dumps(nested(200)) + '}', '{"data": {"x": NaN}}'],
                         ids=["deep", "nan"])
def test_unusable_handoff_data_from_conversation_relay_goes_to_the_default(api, config, client_of, handoff_data):
    from app import create_app
    from tests.helpers import Twilio

    add_destination(api, "Billing")
    relay = Twilio(client_of(create_app(config.with_overrides(agent_url="wss://agent.example.com/relay"))))
    root = parse(relay.post("/voice/agent/ended", {**call_params(CALL), "HandoffData": handoff_data}))
    assert root.find("Refer/Sip").text == "sip:billing@pbx.example.com"
    assert [w["code"] for w in latest_handoff(api, CALL)["warnings"]] == ["bad_handoff_data"]


# -- API bodies -----------------------------------------------------------------------
@pytest.mark.parametrize("text, why", [
    (DEEP, "nested deeper"),
    ('{"state": ' + json.dumps(nested(200)) + '}', "nested deeper"),
    ('{"state": {"score": NaN}}', "NaN"),
    ('{"state": {"score": Infinity}}', "Infinity"),
    ('{"state": {"score": -Infinity}}', "Infinity"),
    ('{"state": {"score": 1e999}}', "out of range"),
])
def test_api_bodies_json_cannot_carry_are_refused(api, text, why):
    response = api.post("/v1/conversations", data=text, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.get_data(as_text=True)[:200]
    error = response.get_json()["error"]
    assert error["code"] == "validation_error" and why in error["fields"]["body"][0]


def test_nan_never_reaches_the_store(api):
    conversation = api.post("/v1/conversations", json={"channel": "webchat"}).get_json()
    patched = api.patch(f"/v1/conversations/{conversation['id']}", data='{"state": {"x": NaN}}',
                        headers={"Content-Type": "application/json"})
    assert patched.status_code == 422
    served = api.get(f"/v1/conversations/{conversation['id']}")
    assert served.status_code == 200 and "NaN" not in served.get_data(as_text=True)
    assert api.post("/v1/conversations", json={"state": nested(10)}).status_code == 201


def test_an_event_cursor_beyond_redis_stream_ids_is_refused(api):
    for cursor in ("99999999999999999999-0", "0-99999999999999999999", "18446744073709551615-18446744073709551615"):
        response = api.get(f"/v1/handoffs/events?after={cursor}")
        assert response.status_code == 422, cursor
        assert "after" in response.get_json()["error"]["fields"]
    assert api.get("/v1/handoffs/events?after=1-0").status_code == 200


def test_a_header_template_indexing_a_list_with_a_superscript_is_a_missing_variable(api):
    # "²" is a digit to str.isdigit() but not to int(): the path must just not resolve.
    add_destination(api, "Billing")
    cid = api.post("/v1/conversations", json={"state": {"items": ["first"]}}).get_json()["id"]
    response = api.post(f"/v1/conversations/{cid}/handoff",
                        json={"sip_headers": {"X-Item": "$items.\u00b2", "X-First": "$items.0"}})
    assert response.status_code == 201
    handoff = response.get_json()
    assert handoff["sip_headers"] == {"X-First": "first"}
    assert [w["code"] for w in handoff["warnings"]] == ["missing_variable"]


@pytest.mark.parametrize("version", ["\u00b2", "\u2460"])  # "²", "①": str.isdigit(), not int()
def test_a_config_version_that_is_no_number_is_refused(api, version):
    response = api.get("/v1/config/diff", query_string={"from": version})
    assert response.status_code == 422 and "from" in response.get_json()["error"]["fields"]


def test_a_destination_cursor_nested_too_deep_is_refused(api):
    # 1,100 brackets: ~1.5 KB of cursor, within a request line, past json's recursion limit.
    cursor = base64.urlsafe_b64encode(b"[" * 1100).decode().rstrip("=")
    response = api.get(f"/v1/destinations?cursor={cursor}")
    assert response.status_code == 422 and "cursor" in response.get_json()["error"]["fields"]


def test_a_header_without_a_value_in_a_patch_is_refused(api):
    add_destination(api, "Billing")
    response = api.patch("/v1/destinations/billing", json={"sip_headers": [{"name": "X-Customer"}]})
    assert response.status_code == 422
    assert "sip_headers" in response.get_json()["error"]["fields"]
    assert api.get("/v1/destinations/billing").get_json()["sip_headers"] == []


def test_a_header_without_a_value_is_refused_by_every_partial_destination_load():
    """What the ADK import checks its entries with (and, like the page's edit form, reads a
    partial change as a PATCH body is): top-level fields optional, a header still whole."""
    from marshmallow import ValidationError

    from schemas.destinations import load_destination

    assert load_destination({"description": "only this"}, partial=True) == {"description": "only this"}
    with pytest.raises(ValidationError) as refused:
        load_destination({"sip_headers": [{"name": "X-Customer"}]}, partial=True)
    assert refused.value.messages == {"sip_headers": {0: {"value": ["Missing data for required field."]}}}


def test_a_non_ascii_twilio_signature_is_a_plain_403(app, caplog):
    client = app.test_client()
    with caplog.at_level(logging.WARNING):
        response = client.post("/voice/call", data=call_params(CALL),
                               headers={"X-Twilio-Signature": "sig\u00e9=="})
    assert response.status_code == 403 and response.data == b""
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def test_twilio_unreachable_when_placing_a_call_says_it_was_twilio(api):
    with responses.RequestsMock() as rest:
        rest.add(responses.POST, f"https://api.twilio.com/2010-04-01/Accounts/{'AC' + '0' * 32}/Calls.json",
                 body=requests.ConnectionError("connection refused"))
        response = api.post("/v1/calls", json={"to": "+14155550123", "from": "+14155550199"})
    assert response.status_code in (502, 503)
    message = response.get_json()["error"]["message"]
    assert "Twilio" in message and "store" not in message


def test_a_post_whose_fields_are_all_optional_may_come_without_a_body(api, app, client_of):
    """A widget's or `curl -X POST`'s bare POST: no body, no Content-Type. It reads as `{}`;
    a body that is there must still be JSON."""
    client, key = client_of(app), {"Authorization": api.headers["Authorization"]}
    created = client.post("/v1/conversations", headers=key)
    assert created.status_code == 201, created.get_json()
    chat = client.post("/v1/chat/create", headers=key)
    assert chat.status_code == 201 and chat.get_json()["conversation_id"]
    handed = client.post(f"/v1/conversations/{chat.get_json()['conversation_id']}/handoff", headers=key)
    assert handed.status_code == 201 and handed.get_json()["state"] == "pending"
    text = client.post("/v1/conversations", headers={**key, "Content-Type": "text/plain"}, data="hello")
    assert text.status_code == 415
