"""Redis really stopped mid-call: callers still move, from the last known configuration."""
import time

import pytest

from app import create_app
from tests.helpers import API_KEY, Twilio, call_params, parse, verbs

CALL = "CA" + "9" * 32


@pytest.fixture
def deployment(app_on_own_valkey):
    app = app_on_own_valkey
    cfg = app.extensions["handoff"].config
    api = app.test_client()
    headers = {"X-API-Key": API_KEY}
    for body in ({"name": "Reception", "route": "sip:reception@pbx.example.com"},
                 {"name": "Billing", "route": "sip:billing@pbx.example.com", "fallback": "reception"},
                 {"name": "Sales", "route": "sip:sales@pbx.example.com"}):
        assert api.post("/v1/destinations", json=body, headers=headers).status_code == 201
    assert api.get("/v1/destinations", headers=headers).status_code == 200
    return app, cfg


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_voice_routes_answer_from_the_snapshot_within_two_seconds(deployment, own_valkey):
    app, cfg = deployment
    twilio = Twilio(app.test_client())
    own_valkey.stop()

    response, took = timed(lambda: twilio.post("/voice/handoff", {**call_params(CALL), "destination": "billing"}))
    root = parse(response)
    assert response.status_code == 200 and took < 2.0
    assert root.find("Refer/Sip").text == "sip:billing@pbx.example.com"

    response, took = timed(lambda: twilio.post("/voice/call", call_params(CALL)))
    assert took < 2.0 and parse(response).find("Refer/Sip").text == "sip:reception@pbx.example.com"
    response, took = timed(lambda: twilio.post("/voice/fallback", call_params(CALL)))
    assert took < 2.0 and parse(response).find("Refer/Sip").text == "sip:reception@pbx.example.com"

    # The chain goes on while Redis is down: billing failed → its fallback, reception.
    action = root.find("Refer").get("action").removeprefix("https://handoff.example.com")
    response, took = timed(lambda: twilio.post(action, {**call_params(CALL), "ReferCallStatus": "busy"}))
    assert took < 2.0 and parse(response).find("Refer/Sip").text == "sip:reception@pbx.example.com"

    assert app.test_client().get("/readyz").status_code == 503
    assert app.test_client().get("/v1/destinations", headers={"X-API-Key": API_KEY}).get_json()[
        "error"]["code"] == "unavailable"


def test_a_process_that_never_reached_redis_uses_the_snapshot_file(deployment, own_valkey):
    _, cfg = deployment
    own_valkey.stop()
    fresh = create_app(cfg)  # a new gunicorn worker, booted during the outage
    root = parse(Twilio(fresh.test_client()).post("/voice/handoff", {**call_params(CALL), "destination": "sales"}))
    assert root.find("Refer/Sip").text == "sip:sales@pbx.example.com"


def test_nothing_needs_restarting_when_redis_is_back(deployment, own_valkey, caplog):
    app, cfg = deployment
    twilio = Twilio(app.test_client())
    own_valkey.stop()
    assert verbs(parse(twilio.post("/voice/handoff", call_params(CALL)))) == ["Refer"]
    assert "Redis unreachable" in caplog.text
    own_valkey.start()  # same port, same AOF data
    assert app.test_client().get("/readyz").status_code == 200
    assert verbs(parse(twilio.post("/voice/handoff", call_params("CA" + "8" * 32)))) == ["Refer"]
    handoffs = app.test_client().get("/v1/handoffs", headers={"X-API-Key": API_KEY}).get_json()["items"]
    assert [h["conversation_id"] for h in handoffs] == ["CA" + "8" * 32]
    names = [d["name"] for d in app.test_client().get("/v1/destinations", headers={"X-API-Key": API_KEY}).get_json()["items"]]
    assert names == ["Reception", "Billing", "Sales"]  # the AOF kept the configuration


def test_a_hung_redis_that_never_answers_costs_under_two_seconds(deployment):
    """A server that accepts connections and never replies (a network partition)."""
    import socket

    _, cfg = deployment
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    try:
        app = create_app(cfg.with_overrides(redis_url=f"redis://127.0.0.1:{hung.getsockname()[1]}/0"))
        twilio = Twilio(app.test_client())
        for path in ("/voice/call", "/voice/handoff", "/voice/fallback"):
            response, took = timed(lambda: twilio.post(path, {**call_params(CALL), "destination": "sales"}))
            assert response.status_code == 200 and took < 2.0, (path, took)
            assert verbs(parse(response)) == ["Refer"]
    finally:
        hung.close()
