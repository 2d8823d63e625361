"""Retention: conversations, handoffs and their indexes expire (HANDOFF_RETENTION_DAYS)."""
from app import create_app
from handoff.store import Keys
from tests.helpers import Api


def test_everything_a_conversation_leaves_behind_expires(app, config, valkey):
    short = create_app(config.with_overrides(retention_days=1))
    api = Api(short.test_client())
    api.post("/v1/destinations", json={"name": "Desk", "route": "sip:desk@pbx"})
    cid = api.post("/v1/conversations", json={"shared_id": "S-1"}).get_json()["id"]
    api.post(f"/v1/conversations/{cid}/transcript", json={"role": "user", "text": "hi"})
    handoff = api.post(f"/v1/conversations/{cid}/handoff", json={}).get_json()
    redis = short.extensions["handoff"].store.redis
    day = 86400
    for key in (Keys.conversation(cid), Keys.conversation_part(cid, "transcript"), Keys.handoff(handoff["id"]),
                Keys.as_sorted_set(Keys.shared("S-1"))):  # a small index: a sorted set
        assert day - 60 < redis.ttl(key) <= day, key
    assert redis.ttl(Keys.destinations) == -1  # configuration is kept


def test_listings_forget_items_that_expired(api, services):
    cids = [api.post("/v1/conversations", json={}).get_json()["id"] for _ in range(3)]
    services.store.redis.delete(Keys.conversation(cids[1]))  # what expiry does
    listed = api.get("/v1/conversations").get_json()["items"]
    assert [c["id"] for c in listed] == [cids[0], cids[2]]
    assert services.store.redis.xlen(Keys.conversations) == 2
