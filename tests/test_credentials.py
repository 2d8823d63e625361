"""Guessing API keys is slow, short keys are pointed out, and signing out really ends a session."""
from __future__ import annotations

import logging

import pytest

from app import create_app
from tests.helpers import API_KEY
from tests.polyai_schemas import check_error_envelope
from tests.test_studio import csrf, sign_in

LIMIT = 3
GUESSER = {"REMOTE_ADDR": "203.0.113.7"}
NEIGHBOUR = {"REMOTE_ADDR": "203.0.113.8"}


@pytest.fixture
def config(config):
    return config.with_overrides(auth_failure_limit=LIMIT, auth_failure_window=60)


def get(client, key, environ=GUESSER):
    return client.get("/v1/destinations", headers={"X-API-Key": key}, environ_base=environ)


def test_wrong_api_keys_are_throttled_per_client(app):
    client = app.test_client()
    assert [get(client, f"guess-{n}").status_code for n in range(LIMIT)] == [401] * LIMIT
    throttled = get(client, "guess-again")
    assert throttled.status_code == 429
    assert throttled.get_json()["error"]["code"] == "too_many_requests"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    # Right or wrong, nothing is tried for this client until the window ends: a 200 among
    # the 429s would tell a guesser they had found a key.
    assert get(client, API_KEY).status_code == 429
    assert client.get("/v1/destinations", headers={"Authorization": f"Bearer {API_KEY}"},
                      environ_base=GUESSER).status_code == 429
    # Another client is not held back by this one.
    assert get(client, API_KEY, NEIGHBOUR).status_code == 200


def test_the_client_is_the_address_the_router_forwarded(app):
    client = app.test_client()
    for n in range(LIMIT):
        client.get("/v1/destinations", headers={"X-API-Key": f"guess-{n}", "X-Forwarded-For": "198.51.100.1"})
    assert client.get("/v1/destinations", headers={"X-API-Key": API_KEY,
                                                   "X-Forwarded-For": "198.51.100.1"}).status_code == 429
    assert client.get("/v1/destinations", headers={"X-API-Key": API_KEY,
                                                   "X-Forwarded-For": "198.51.100.2"}).status_code == 200


def test_requests_without_a_key_are_not_guesses(app):
    client = app.test_client()
    for _ in range(LIMIT * 3):
        assert client.get("/v1/destinations", environ_base=GUESSER).status_code == 401
    assert get(client, API_KEY).status_code == 200


def test_wrong_keys_at_sign_in_are_throttled_with_the_api(app):
    client = app.test_client()
    client.environ_base.update(GUESSER)
    get(client, "guess-0")  # the API and the sign-in page share one count
    for n in range(1, LIMIT):
        assert sign_in(client, key=f"guess-{n}").status_code == 401
    refused = sign_in(client, key=API_KEY)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "Too many wrong keys" in refused.get_data(as_text=True)
    assert client.get("/studio/handoffs").status_code == 303


def test_short_api_keys_are_warned_about_at_start(config, caplog):
    with caplog.at_level(logging.WARNING):
        create_app(config.with_overrides(api_keys=("short-key", "k" * 32)))
    warnings = [r.getMessage() for r in caplog.records if "HANDOFF_API_KEYS" in r.getMessage()]
    assert warnings == ["1 of the 2 HANDOFF_API_KEYS are shorter than 32 characters: "
                        "use long random keys (openssl rand -hex 32)"]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        create_app(config.with_overrides(api_keys=("k" * 32,)))
    assert not [r for r in caplog.records if "HANDOFF_API_KEYS" in r.getMessage()]


def test_signing_out_ends_the_session_for_a_copied_cookie(app):
    owner = app.test_client()
    assert sign_in(owner).status_code == 303
    copy = app.test_client()
    copy.set_cookie("session", owner.get_cookie("session").value)
    assert copy.get("/studio/handoffs").status_code == 200

    page = owner.get("/studio/handoffs")
    assert owner.post("/studio/sign-out", data={"csrf_token": csrf(page)}).status_code == 303
    assert copy.get("/studio/handoffs").status_code == 303
    assert owner.get("/studio/handoffs").status_code == 303


def test_signing_in_again_after_signing_out_works(app):
    client = app.test_client()
    sign_in(client)
    client.post("/studio/sign-out", data={"csrf_token": csrf(client.get("/studio/handoffs"))})
    assert sign_in(client).status_code == 303
    assert client.get("/studio/handoffs").status_code == 200


def test_every_process_refuses_a_client_another_process_blocked(app, config):
    other = create_app(config).test_client()  # a second gunicorn process, same Redis
    client = app.test_client()
    for n in range(LIMIT):
        get(client, f"guess-{n}")
    assert get(other, "guess-elsewhere").status_code == 429
    assert get(other, API_KEY).status_code == 429


class TestThePolyAIShapedRoutes:
    """Wrong keys on the PolyAI-compatible routes count with the API's, and the refusal
    comes in PolyAI's own error envelopes, over real HTTP."""

    @pytest.fixture
    def over_http(self):
        return True

    BASE = "/v1/ACCOUNT-1234/PROJECT-abcd"

    def test_wrong_keys_are_throttled_in_polyais_envelopes(self, app, client_of):
        client = client_of(app)
        guesser = {"X-Forwarded-For": "203.0.113.9"}
        create = f"{self.BASE}/chat/create"
        assert client.post(create, headers={**guesser, "x-api-key": "guess-0"}).status_code == 401
        assert client.get(f"{self.BASE}/handoff_state?id=x", headers={**guesser, "X-TOKEN": "guess-1"}).status_code == 401
        assert client.get("/v1/destinations", headers={**guesser, "X-API-Key": "guess-2"}).status_code == 401

        # Over the limit: refused even with the right key, in each route's own envelope.
        refused = client.post(create, headers={**guesser, "x-api-key": API_KEY})
        assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
        body = check_error_envelope(refused)
        assert body["error_code"] == "TOO_MANY_REQUESTS" and body["success"] is False
        state = client.get(f"{self.BASE}/handoff_state?id=x", headers={**guesser, "X-TOKEN": API_KEY})
        assert state.status_code == 429 and int(state.headers["Retry-After"]) >= 1
        assert list(state.get_json()) == ["error_message"]
        assert client.get("/v1/destinations", headers={**guesser, "X-API-Key": API_KEY}).status_code == 429

        # Another client is not held back, and a request without a key is no guess.
        assert client.post(create, headers={"X-Forwarded-For": "203.0.113.10", "x-api-key": API_KEY}).status_code == 200
        for _ in range(LIMIT * 2):
            assert client.post(create, headers={"X-Forwarded-For": "203.0.113.11"}).status_code == 401
        assert client.post(create, headers={"X-Forwarded-For": "203.0.113.11", "x-api-key": API_KEY}).status_code == 200
