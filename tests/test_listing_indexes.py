"""The listing indexes are streams keyed by sequence number (handoff/store/indexes.py); those
a deployment wrote before as sorted sets keep listing, in order, with the new entries."""
import pytest

from handoff.store import Keys
from tests.test_review_pages import chat, listed
from tests.test_studio import Studio


@pytest.fixture
def studio(app):
    return Studio(app.test_client())


def move_oldest_to_sorted_set(redis, index: str, count: int) -> None:
    """What an upgraded deployment holds: its oldest entries in the sorted set it wrote then."""
    for entry_id, fields in redis.xrange(index, count=count):
        redis.zadd(Keys.as_sorted_set(index), {fields["m"]: int(entry_id.split("-")[0])})
        redis.xdel(index, entry_id)


def members(redis, stream: str) -> list[str]:
    return [fields["m"] for _, fields in redis.xrange(stream)]


def every_page(get, path: str) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        body = get(path + (f"&cursor={cursor}" if cursor else "")).get_json()
        pages.append([item["id"] for item in body["items"]])
        cursor = body["next_cursor"]
        if not body["items"]:
            return pages


def test_the_main_indexes_are_streams_and_a_reasons_starts_as_a_sorted_set(api, studio, services, monkeypatch):
    """A stream's first node takes ~4 KiB: a reason's or a shared id's index is a sorted set
    until it holds SMALL_INDEX entries, then goes on as a stream; both read as one list."""
    from handoff.store.base import SMALL_INDEX, TRIM_EVERY
    from web import studio_review

    made = [chat(api, "billing", shared_id="S-1") for _ in range(SMALL_INDEX + 3)]
    redis = services.store.redis
    handoffs = [fields["m"] for _, fields in redis.xrange(Keys.handoffs)]
    assert [fields["m"] for _, fields in redis.xrange(Keys.conversations)] == made and len(handoffs) == len(made)
    for index in (Keys.handoffs_with_reason("billing"), Keys.shared("S-1")):
        small = Keys.as_sorted_set(index)
        assert redis.zrange(small, 0, -1) == handoffs[:SMALL_INDEX]
        assert redis.object("encoding", small) == "listpack"  # ~40 bytes an entry
        assert [fields["m"] for _, fields in redis.xrange(index)] == handoffs[SMALL_INDEX:]
    monkeypatch.setattr(studio_review, "PAGE_SIZE", 500)
    assert listed(studio.get("/studio/conversations?reason=billing")) == made[::-1]
    assert listed(studio.get("/studio/conversations?q=S-1")) == made[::-1]
    assert api.get("/v1/handoffs/S-1").get_json()["id"] == handoffs[-1]

    # Its stream lists a subset of the handoffs index: below that index's oldest entry (the
    # worker forgets expired items' entries from it), trimmed as it grows (at one sequence
    # number in TRIM_EVERY; a conversation and its handoff take two).
    for handoff_id in handoffs[:SMALL_INDEX + 1]:
        redis.delete(Keys.handoff(handoff_id))
    services.store.forget_expired_listings(batch=500)
    newer = []
    while len(newer) <= TRIM_EVERY // 2 and handoffs[SMALL_INDEX] in members(redis, Keys.handoffs_with_reason("billing")):
        newer.append(api.get(f"/v1/conversations/{chat(api, 'billing')}").get_json()["handoff"]["id"])
    assert members(redis, Keys.handoffs_with_reason("billing")) == [*handoffs[SMALL_INDEX + 1:], *newer]


def test_entries_written_as_sorted_sets_before_list_in_order_with_the_new_ones(api, studio, services, monkeypatch):
    from web import studio_review

    made = [chat(api, "complaint", shared_id="S-1") for _ in range(5)]
    handoffs = [api.get(f"/v1/conversations/{cid}").get_json()["handoff"]["id"] for cid in made]
    redis = services.store.redis
    for index in (Keys.conversations, Keys.handoffs, Keys.handoffs_with_reason("complaint"), Keys.shared("S-1")):
        move_oldest_to_sorted_set(redis, index, 3)
    assert redis.zcard(Keys.as_sorted_set(Keys.handoffs)) == 3 and redis.xlen(Keys.handoffs) == 2

    assert every_page(api.get, "/v1/handoffs?limit=2") == [handoffs[:2], handoffs[2:4], handoffs[4:], []]
    assert sum(every_page(api.get, "/v1/conversations?limit=4"), []) == made
    monkeypatch.setattr(studio_review, "PAGE_SIZE", 2)
    assert listed(studio.get("/studio/conversations")) == made[::-1][:2]
    assert listed(studio.get("/studio/conversations?reason=complaint")) == made[::-1][:2]
    assert listed(studio.get("/studio/conversations?q=S-1")) == made[::-1][:2]
    monkeypatch.setattr(studio_review, "PAGE_SIZE", 25)
    assert listed(studio.get("/studio/conversations?reason=complaint")) == made[::-1]
    assert api.get("/v1/handoffs/S-1").get_json()["id"] == handoffs[-1]

    # Retention removed an old item and a new one: listing drops both entries.
    redis.delete(Keys.handoff(handoffs[1]), Keys.handoff(handoffs[3]))
    assert sum(every_page(api.get, "/v1/handoffs?limit=2"), []) == [handoffs[0], handoffs[2], handoffs[4]]
    assert redis.zcard(Keys.as_sorted_set(Keys.handoffs)) == 2 and redis.xlen(Keys.handoffs) == 1


def test_the_date_filter_starts_the_list_at_the_last_conversation_of_that_day(api, studio, services):
    """The page finds where `to` falls by binary search over sequence numbers, across both
    forms of the index and past entries whose item expired."""
    redis = services.store.redis
    made = []
    for day in range(1, 10):
        cid = api.post("/v1/conversations", json={"channel": "webchat"}).get_json()["id"]
        stored = redis.get(Keys.conversation(cid))
        started = stored.split('"started_at":"')[1][:10]
        redis.set(Keys.conversation(cid), stored.replace(started, f"2026-03-0{day}", 1), keepttl=True)
        made.append(cid)
    move_oldest_to_sorted_set(redis, Keys.conversations, 4)
    redis.delete(Keys.conversation(made[5]))  # expired: its entry lingers until read past

    for until, newest in (("2026-03-04", 4), ("2026-03-05", 5), ("2026-03-06", 5), ("2026-03-07", 7),
                          ("2026-03-09", 9), ("2026-04-01", 9)):
        shown = listed(studio.get(f"/studio/conversations?to={until}"))
        assert shown == [cid for n, cid in enumerate(made, 1) if n <= newest and n != 6][::-1], until
    assert listed(studio.get("/studio/conversations?to=2026-02-28")) == []


def test_the_worker_forgets_entries_of_expired_items_a_slice_at_a_time(api, services):
    """Listings forget the expired entries they meet; the worker's sweep walks every index
    in slices, so one nobody pages through from the start does not grow for ever."""
    made = [chat(api, "billing") for _ in range(5)]
    handoffs = [api.get(f"/v1/conversations/{cid}").get_json()["handoff"]["id"] for cid in made]
    redis, store = services.store.redis, services.store
    move_oldest_to_sorted_set(redis, Keys.conversations, 2)  # written by an older version
    for n in (0, 1, 3):  # what retention does
        redis.delete(Keys.conversation(made[n]), Keys.handoff(handoffs[n]))

    assert store.forget_expired_listings(batch=2) == 4  # the first two of each index
    assert store.forget_expired_listings(batch=2) == 2  # the next two
    assert store.forget_expired_listings(batch=2) == 0  # the last one, then from the start again
    assert [fields["m"] for _, fields in redis.xrange(Keys.conversations)] == [made[2], made[4]]
    assert [fields["m"] for _, fields in redis.xrange(Keys.handoffs)] == [handoffs[2], handoffs[4]]
    assert not redis.exists(Keys.as_sorted_set(Keys.conversations))
    assert sum(every_page(api.get, "/v1/conversations?limit=10"), []) == [made[2], made[4]]


def test_the_sweep_job_forgets_expired_listing_entries(api, app, services):
    from rq import SimpleWorker

    from handoff import jobs

    cids = [api.post("/v1/conversations", json={}).get_json()["id"] for _ in range(3)]
    services.store.redis.delete(Keys.conversation(cids[0]))
    services.queue.enqueue(jobs.sweep_transfers)
    SimpleWorker([services.queue], connection=services.queue.connection).work(burst=True)
    assert [fields["m"] for _, fields in services.store.redis.xrange(Keys.conversations)] == cids[1:]


def test_a_listing_cursor_no_stream_id_can_hold_is_refused_not_a_server_error(api, studio):
    """A cursor is a sequence number: one below zero or past 64 bits names no stream entry
    (Redis answers an error), so it is refused like any other cursor this service never issued."""
    import base64

    made = [api.post("/v1/conversations", json={"channel": "webchat"}).get_json()["id"] for _ in range(2)]
    for seq in ("-1", str(2**64), "9" * 25):
        cursor = base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")
        for path in ("/v1/conversations", "/v1/handoffs"):
            response = api.get(f"{path}?cursor={cursor}")
            assert response.status_code == 422 and "cursor" in response.get_json()["error"]["fields"], (path, seq)
        assert listed(studio.get(f"/studio/conversations?cursor={cursor}")) == made[::-1], seq  # from the newest
