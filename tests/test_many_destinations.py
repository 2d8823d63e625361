"""2,000 destinations: a voice handoff reads a version number, not the configuration;
the listing pages."""
import json

from handoff.models import Destination
from handoff.versions import change
from tests.helpers import call_params, parse

MANY = 2000


def seed(services, n=MANY):
    """n destinations in one version (the API would take n requests)."""
    def add(_snapshot, entities):
        for i in range(n):
            entities[f"d:dest-{i:04d}"] = Destination(
                id=f"dest-{i:04d}", name=f"Dest {i:04d}", route=f"sip:d{i}@pbx.example.com",
                created_at=f"2026-01-01T00:00:00.{i:04d}Z").to_dict()
        entities["default"] = "dest-0000"

    change(services, "test", add)


def calls_of(redis, command):
    stats = redis.info("commandstats")
    return stats.get(f"cmdstat_{command}", {}).get("calls", 0)


def test_a_voice_handoff_does_not_read_the_destinations(services, twilio):
    seed(services)
    redis = services.store.redis
    parse(twilio.post("/voice/handoff", call_params("CA" + "0" * 32, destination="dest-1999")))
    before = {c: calls_of(redis, c) for c in ("hgetall", "hget", "hmget", "hscan")}
    for i in range(5):
        root = parse(twilio.post("/voice/handoff", call_params(f"CA{i:032d}", destination=f"dest-{1990 + i}")))
        assert root.find("Refer/Sip").text == f"sip:d{1990 + i}@pbx.example.com"
    assert {c: calls_of(redis, c) for c in before} == before


def test_the_listing_pages_with_a_stable_cursor(api, services):
    seed(services, 250)
    assert len(api.get("/v1/destinations").get_json()["items"]) == 250  # unpaged, as before
    seen, cursor = [], None
    while True:
        page = api.get("/v1/destinations", query_string={"limit": 100, **({"cursor": cursor} if cursor else {})})
        body = page.get_json()
        seen += [d["id"] for d in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"dest-{i:04d}" for i in range(250)]
    only_cursor = api.get("/v1/destinations", query_string={"limit": 10}).get_json()["next_cursor"]
    assert len(api.get("/v1/destinations", query_string={"cursor": only_cursor}).get_json()["items"]) == 100
    for bad in ({"cursor": "nonsense"}, {"limit": 0}, {"limit": 501}, {"cursor": json.dumps([1])}):
        assert api.get("/v1/destinations", query_string=bad).status_code == 422
