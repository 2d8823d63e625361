"""Connectors long-polling the event feed, answered by one reader per web process
(handoff/event_feed.py): every event still reaches every connector once, in order."""
from __future__ import annotations

import threading
import time

import redis
import requests

from handoff import event_feed
from tests.helpers import API_KEY

KEY = {"X-API-Key": API_KEY}


def chat_handoff(api) -> str:
    conv = api.post("/v1/conversations", json={"channel": "webchat"}).get_json()
    response = api.post(f"/v1/conversations/{conv['id']}/handoff", json={})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def after(cursor: str, events: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    return [e for e in events if event_feed.parse_cursor(e[0]) > event_feed.parse_cursor(cursor)]


def whole_feed(api) -> list[tuple[str, str, str]]:
    """The feed read from the start without waiting (straight from Redis)."""
    items, after = [], None
    while True:
        page = api.get("/v1/handoffs/events", query_string={"limit": 500, **({"after": after} if after else {})})
        items += [(e["cursor"], e["handoff_id"], e["state"]) for e in page.get_json()["items"]]
        if not page.get_json()["items"]:
            return items
        after = page.get_json()["next_cursor"]


class Connector(threading.Thread):
    """Long-polls with `wait` over real HTTP, passing each next_cursor back, until stopped."""

    def __init__(self, base_url: str, after: str):
        super().__init__(daemon=True)
        self.base_url, self.after = base_url, after
        self.received: list[tuple[str, str, str]] = []
        self.halt = threading.Event()

    def run(self):
        session = requests.Session()
        while not self.halt.is_set():
            page = session.get(f"{self.base_url}/v1/handoffs/events", headers=KEY, timeout=15,
                               params={"after": self.after, "wait": 2}).json()
            assert "items" in page, page
            self.received += [(e["cursor"], e["handoff_id"], e["state"]) for e in page["items"]]
            self.after = page["next_cursor"]


def blocked_stream_reads(url: str) -> int:
    clients = redis.Redis.from_url(url, decode_responses=True).client_list()
    return sum(1 for c in clients if c.get("cmd") == "xread" and "b" in c.get("flags", ""))


def collect(connectors, expected: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(len(c.received) < expected for c in connectors):
        time.sleep(0.05)
    for c in connectors:
        c.halt.set()
    for c in connectors:
        c.join(5)


def test_ten_waiting_connectors_share_one_stream_read_and_each_get_every_event_once(api, live_server, valkey):
    chat_handoff(api)
    cursor = whole_feed(api)[-1][0]
    # Readers of earlier tests' apps may still idle; the event just written woke them, and
    # each pauses (event_feed.READ_PAUSE) before it blocks in its read again.
    time.sleep(event_feed.READ_PAUSE + 0.2)
    before = blocked_stream_reads(valkey.url)
    connectors = [Connector(live_server, cursor) for _ in range(10)]
    for c in connectors:
        c.start()
    time.sleep(0.5)
    # Ten polls are waiting; Redis sees one blocked read for all of them, not ten.
    assert blocked_stream_reads(valkey.url) <= before + 1
    for _ in range(12):
        handoff_id = chat_handoff(api)
        api.post(f"/v1/handoffs/{handoff_id}/claim", json={"agent": "ana"})
    expected = after(cursor, whole_feed(api))
    assert len(expected) == 12 * 3  # requested, pending, claimed
    collect(connectors, len(expected))
    for c in connectors:
        assert c.received == expected


def test_a_connector_further_behind_than_the_process_keeps_reads_the_rest_from_redis(api, live_server, monkeypatch):
    monkeypatch.setattr(event_feed, "CAPACITY", 2)
    chat_handoff(api)
    start = whole_feed(api)[-1][0]
    live = Connector(live_server, start)  # starts the reader, and keeps it filling
    live.start()
    time.sleep(0.3)
    for _ in range(4):
        chat_handoff(api)
    expected = after(start, whole_feed(api))
    collect([live], len(expected))
    assert live.received == expected
    # Only the last two events are in memory now; a connector at the old cursor is behind them.
    late = Connector(live_server, start)
    late.start()
    collect([late], len(expected))
    assert late.received == expected


def test_when_the_reader_loses_its_redis_connection_polls_still_get_every_event_once(api, live_server, valkey):
    chat_handoff(api)
    start = whole_feed(api)[-1][0]
    connector = Connector(live_server, start)
    connector.start()
    time.sleep(0.5)
    admin = redis.Redis.from_url(valkey.url, decode_responses=True)
    for c in admin.client_list():
        if c.get("cmd") == "xread":
            admin.client_kill_filter(_id=c["id"])
    for _ in range(5):
        chat_handoff(api)
        time.sleep(0.2)
    expected = after(start, whole_feed(api))
    collect([connector], len(expected))
    assert connector.received == expected
