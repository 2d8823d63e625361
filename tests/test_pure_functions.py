"""Small direct tests of the pure functions the lifecycle is built from."""
from datetime import UTC, datetime

import pytest

from handoff.callback_reading import read_callback
from handoff.config import Config
from handoff.errors import ValidationFailed
from handoff.hours import is_open
from handoff.models import ABANDONED, COMPLETED, CONNECTED, FAILED, Destination
from handoff.paging import decode_cursor, encode_cursor, page
from handoff.snapshot import RoutingTable
from handoff.transfers import next_destination


@pytest.mark.parametrize("params, outcome, result", [
    ({"DialCallStatus": "completed"}, COMPLETED, "completed"),
    ({"DialCallStatus": "completed", "DialBridged": "true"}, COMPLETED, "completed"),
    ({"DialCallStatus": "completed", "DialBridged": "false"}, FAILED, "not_bridged"),
    ({"DialCallStatus": "completed", "DialBridged": "false", "CallStatus": "completed"}, ABANDONED, "not_bridged"),
    ({"DialCallStatus": "busy"}, FAILED, "busy"),
    ({"DialCallStatus": "canceled", "CallStatus": "in-progress"}, FAILED, "canceled"),
    ({"DialCallStatus": "no-answer", "CallStatus": "completed"}, ABANDONED, "no-answer"),
    ({"DialCallStatus": "completed", "DialSipResponseCode": "480"}, FAILED, "completed"),
    ({"ReferCallStatus": "in-progress", "ReferSipResponseCode": "202"}, CONNECTED, "in-progress"),
    ({"ReferSipResponseCode": "202", "CallStatus": "completed"}, COMPLETED, "unconfirmed"),
    ({"ReferSipResponseCode": "202", "CallStatus": "in-progress"}, FAILED, "no_notify"),
    ({"ReferSipResponseCode": "603", "CallStatus": "in-progress"}, FAILED, "refused"),
    ({"ReferCallStatus": "failed", "NotifySipResponseCode": "486"}, FAILED, "failed"),
    ({"QueueResult": "bridging-in-process"}, CONNECTED, "bridging-in-process"),
    ({"QueueResult": "redirected"}, "redirected", "redirected"),
    ({"QueueResult": "hangup"}, ABANDONED, "hangup"),
    ({"QueueResult": "queue-full"}, FAILED, "queue-full"),
])
def test_read_callback(params, outcome, result):
    read = read_callback(params)
    assert (read.outcome, read.result) == (outcome, result)


def test_read_callback_prefers_the_notify_code():
    assert read_callback({"ReferCallStatus": "failed", "ReferSipResponseCode": "202",
                          "NotifySipResponseCode": "486"}).sip_code == 486


def chain(*destinations, default=None):
    return RoutingTable(destinations=list(destinations), default_id=default)


def test_next_destination_follows_fallbacks_then_the_default_each_once():
    a = Destination(id="a", name="A", route="1", fallback="b")
    b = Destination(id="b", name="B", route="2", fallback="a")  # a loop
    c = Destination(id="c", name="C", route="3")
    configuration = chain(a, b, c, default="c")
    assert next_destination(configuration, ["a"]).id == "b"
    assert next_destination(configuration, ["a", "b"]).id == "c"  # a is not tried twice
    assert next_destination(configuration, ["a", "b", "c"]) is None
    assert next_destination(configuration, []).id == "c"


def test_page_walks_an_index_without_repeats_and_resumes_at_the_end():
    index = [(f"m{i}", i) for i in range(1, 8)]
    scan = lambda after, n: [row for row in index if row[1] > after][:n]  # noqa: E731
    load = lambda members: [None if m == "m3" else m for m in members]  # noqa: E731
    forgotten = []
    items, cursor, more = page(scan, load, lambda m: m != "m5", 3, None, forgotten.extend)
    assert items == ["m1", "m2", "m4"] and more and forgotten == [("m3", 3)]
    items, cursor, more = page(scan, load, lambda m: m != "m5", 3, cursor)
    assert items == ["m6", "m7"] and not more
    assert page(scan, load, lambda m: True, 3, cursor)[:2] == ([], cursor)


def test_cursors_round_trip_and_foreign_ones_are_a_field_error():
    assert decode_cursor(encode_cursor(42)) == 42
    with pytest.raises(ValidationFailed):
        decode_cursor("not-a-cursor")


HOURS = {"timezone": "Europe/London", "weekly": {"mon": [["09:00", "17:30"]]}, "closed_dates": ["2026-12-28"]}


@pytest.mark.parametrize("at, expected", [
    (datetime(2026, 11, 30, 9, 0, tzinfo=UTC), True),  # Monday 09:00 GMT
    (datetime(2026, 11, 30, 17, 30, tzinfo=UTC), False),  # the window's end is closed
    (datetime(2026, 12, 1, 10, 0, tzinfo=UTC), False),  # Tuesday: not listed
    (datetime(2026, 12, 28, 10, 0, tzinfo=UTC), False),  # a Monday in closed_dates
    (datetime(2026, 6, 1, 8, 30, tzinfo=UTC), True),  # 09:30 BST
])
def test_is_open(at, expected):
    assert is_open(HOURS, at) is expected
    assert is_open(None, at) is True


def test_config_from_env_reads_every_setting_and_falls_back_on_nonsense():
    config = Config.from_env({
        "PORT": "8080", "HANDOFF_API_KEYS": " a , b ,", "TWILIO_VALIDATE": "off",
        "PUBLIC_BASE_URL": "https://x.example.com/", "ALLOWED_ROUTE_PATTERNS": "sip:*@pbx,+4420*",
        "HANDOFF_RETENTION_DAYS": "0", "WEB_CONNECTIONS": "nope", "DEFAULT_CALLER_ID": "+14155550100",
        "HANDOFF_WEBHOOK_RETRY_INTERVALS": "1,2",
    })
    assert config.port == 8080 and config.api_keys == ("a", "b") and config.twilio_validate is False
    assert config.public_base_url == "https://x.example.com"
    assert config.allowed_route_patterns == ("sip:*@pbx", "+4420*")
    assert config.retention_days == 1 and config.web_connections == 1000
    assert config.default_caller_id == "+14155550100" and config.webhook_retry_intervals == (1, 2)
    empty = Config.from_env({})
    assert empty.redis_url is None and empty.data_dir == "./var" and empty.twilio_validate is True
