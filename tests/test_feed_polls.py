"""Long polls of the event feed are answered before Flask's request handling
(web/feed_polls.py), with what the view answers; every other request about the feed still
reaches the view, with its schema, its error shapes and its throttle."""
from __future__ import annotations

import pytest
import redis
from flask import Flask

from app import create_app
from tests.helpers import API_KEY
from tests.test_event_feed import chat_handoff
from tests.test_observability import moved, scrape
from web.feed_polls import long_poll_in
from web.long_polls import process_slots

KEY = {"X-API-Key": API_KEY}
CURSOR = "1764158400000-3"


@pytest.fixture
def flask_dispatches(monkeypatch):
    """How many requests went through Flask's own request handling."""
    seen = []
    original = Flask.full_dispatch_request

    def counted(self):
        seen.append(1)
        return original(self)

    monkeypatch.setattr(Flask, "full_dispatch_request", counted)
    return seen


@pytest.mark.parametrize("query, poll", [
    (f"after={CURSOR}&wait=30", (CURSOR, 100, 30.0)),
    (f"wait=0.5&after={CURSOR}&limit=500", (CURSOR, 500, 0.5)),
    (f"after={CURSOR.replace('-', '%2D')}&wait=2&limit=1", (CURSOR, 1, 2.0)),
])
def test_a_well_formed_long_poll_is_read_from_its_query(query, poll):
    assert long_poll_in(query) == poll


@pytest.mark.parametrize("query", [
    f"after={CURSOR}",                       # no wait: answered at once, by the view
    f"after={CURSOR}&wait=0",
    "wait=30",                               # no cursor: from the oldest event, by the view
    f"after={CURSOR}&wait=31",
    f"after={CURSOR}&wait=30.0000001",
    f"after={CURSOR}&wait=1e1",
    f"after={CURSOR}&wait=nan",
    f"after={CURSOR}&wait=1&limit=0",
    f"after={CURSOR}&wait=1&limit=501",
    f"after={CURSOR}&wait=1&limit=-5",
    f"after={CURSOR}&wait=1&after={CURSOR}",  # repeated
    f"after={CURSOR}&wait=1&cursor=x",       # unknown: the schema refuses it
    "after=17641584000003&wait=1",
    "after=18446744073709551615-0&wait=1",  # past the last id Redis can read after
    "",
])
def test_anything_else_is_left_to_the_view(query):
    assert long_poll_in(query) is None


def test_a_long_poll_gets_what_the_view_gives_without_flasks_request_handling(app, api, flask_dispatches):
    chat_handoff(api)
    first = api.get("/v1/handoffs/events", headers=KEY, query_string={"limit": 1}).get_json()
    by_view = api.get("/v1/handoffs/events", headers=KEY, query_string={"after": first["next_cursor"]})
    dispatched = len(flask_dispatches)
    client = app.test_client()
    polled = client.get("/v1/handoffs/events", headers={**KEY, "X-Request-ID": "connector-7"},
                        query_string={"after": first["next_cursor"], "wait": 5})
    assert len(flask_dispatches) == dispatched  # answered before Flask
    assert polled.status_code == 200
    assert polled.get_json() == by_view.get_json() and polled.get_json()["items"]
    assert polled.mimetype == by_view.mimetype == "application/json"
    assert polled.headers["X-Request-ID"] == "connector-7"
    assert int(polled.headers["Content-Length"]) == len(polled.data)
    # A request id that could smuggle text into a log line is replaced, as the view does.
    other = client.get("/v1/handoffs/events", headers={**KEY, "X-Request-ID": "bad id; rm"},
                       query_string={"after": first["next_cursor"], "wait": 1})
    assert other.headers["X-Request-ID"] != "bad id; rm" and len(other.headers["X-Request-ID"]) == 32


def test_a_long_poll_answered_before_flask_is_counted_in_the_metrics(app, api):
    chat_handoff(api)
    cursor = api.get("/v1/handoffs/events", headers=KEY, query_string={"limit": 1}).get_json()["next_cursor"]
    client = app.test_client()
    before = scrape(client)
    assert client.get("/v1/handoffs/events", headers={"Authorization": f"Bearer {API_KEY}"},
                      query_string={"after": cursor, "wait": 1}).status_code == 200
    after = scrape(client)
    route = "/v1/handoffs/events"
    assert moved(before, after, "handoff_http_requests_total", route=route, method="GET", status="200") == 1
    assert moved(before, after, "handoff_http_request_duration_seconds_count", route=route, method="GET") == 1
    assert moved(before, after, "handoff_open_long_polls", route=route) == 0


@pytest.mark.parametrize("headers, query, status, code", [
    ({}, {"wait": 1}, 401, "unauthorized"),
    ({"X-API-Key": "wrong"}, {"wait": 1}, 401, "unauthorized"),
    (KEY, {"wait": 31}, 422, "validation_error"),
    (KEY, {"wait": 1, "limit": 0}, 422, "validation_error"),
    (KEY, {"wait": 1, "cursor": "x"}, 422, "validation_error"),
    (KEY, {"wait": 1, "after": "x"}, 422, "validation_error"),
])
def test_a_poll_the_fast_path_cannot_answer_gets_the_views_error(app, headers, query, status, code,
                                                               flask_dispatches):
    query = {"after": CURSOR, **query}
    response = app.test_client().get("/v1/handoffs/events", headers=headers, query_string=query)
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code
    assert flask_dispatches


def test_wrong_keys_on_long_polls_are_throttled_like_any_other(app, config):
    limited = config.with_overrides(auth_failure_limit=2, auth_failure_window=60)
    client = create_app(limited).test_client()
    guesser = {"REMOTE_ADDR": "203.0.113.9"}
    query = {"after": CURSOR, "wait": 1}
    for n in range(2):
        assert client.get("/v1/handoffs/events", headers={"X-API-Key": f"guess-{n}"}, query_string=query,
                          environ_base=guesser).status_code == 401
    # The right key from the same client now waits out the window like every route's.
    refused = client.get("/v1/handoffs/events", headers=KEY, query_string=query, environ_base=guesser)
    assert refused.status_code == 429 and refused.get_json()["error"]["code"] == "too_many_requests"
    assert client.get("/v1/handoffs/events", headers=KEY, query_string={"after": CURSOR},
                      environ_base={"REMOTE_ADDR": "203.0.113.10"}).status_code == 200


def test_with_every_slot_taken_a_long_poll_is_turned_away_by_the_view(app, config):
    one_slot = config.with_overrides(max_long_polls=1)
    application = create_app(one_slot)
    slots = process_slots(application)
    assert slots.acquire(blocking=False)
    try:
        response = application.test_client().get("/v1/handoffs/events", headers=KEY,
                                                 query_string={"after": CURSOR, "wait": 1})
    finally:
        slots.release()
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"


def test_a_poll_whose_read_fails_gets_the_views_error_at_once_and_frees_its_slot(config, monkeypatch, caplog):
    error, status, code = redis.ConnectionError("connection reset"), 503, "unavailable"
    application = create_app(config.with_overrides(max_long_polls=1))
    feed = application.extensions["handoff"].event_feed
    reads = []

    def failing(after, limit, wait):
        reads.append(wait)
        raise error

    monkeypatch.setattr(feed, "page", failing)
    client = application.test_client()
    polled = client.get("/v1/handoffs/events", headers={**KEY, "X-Request-ID": "poll-9"},
                        query_string={"after": CURSOR, "wait": 5})
    by_view = client.get("/v1/handoffs/events", headers=KEY, query_string={"after": CURSOR})
    assert polled.status_code == by_view.status_code == status
    assert polled.get_json() == by_view.get_json() and polled.get_json()["error"]["code"] == code
    assert polled.headers["X-Request-ID"] == "poll-9"
    # Read once: the view would have waited again before answering the same error.
    assert reads == [5.0, 0.0]
    assert caplog.text.count("Redis unreachable on /v1/handoffs/events") == 2  # the poll's, and the view's
    # Its one slot was given back.
    slots = process_slots(application)
    assert slots.acquire(blocking=False)
    slots.release()
