"""GET /v1/stats/handoffs: figures kept as handoffs change, each fact counted once."""
from collections import Counter
from datetime import UTC, datetime, timedelta

from handoff import stats
from tests.helpers import add_destination as make
from tests.helpers import call_params, parse
from tests.test_lifecycle import action_path

TODAY = datetime.now(UTC).date().isoformat()


def chain(api):
    """Billing → Overflow (SIP INVITE) → Reception, the default."""
    make(api, "Reception")
    overflow = make(api, "Overflow", method="sip_invite", encryption="udp_rtp")
    make(api, "Billing", fallback=overflow["id"])


def call(twilio, sid, **params):
    return parse(twilio.post("/voice/handoff", {**call_params(sid), "destination": "billing", **params}))


def status(twilio, sid, root, **params):
    return twilio.post(action_path(root), {**call_params(sid), **params})


def by_key(api, group_by, **query):
    response = api.get("/v1/stats/handoffs", query_string={"group_by": group_by, **query})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["group_by"] == group_by
    return {item["key"]: item for item in body["items"]}, body


def three_calls(api, twilio):
    """A: billing busy, overflow answers, outcome pushed. B: everything fails. C: the caller
    hangs up while billing rings."""
    chain(api)
    a, b, c = ("CA" + str(n) * 32 for n in (1, 2, 3))
    root = call(twilio, a, reason="billing_question")
    busy = {"ReferCallStatus": "busy", "ReferSipResponseCode": "202", "NotifySipResponseCode": "486"}
    second = parse(status(twilio, a, root, **busy))
    status(twilio, a, root, **busy)  # Twilio retries the same callback
    answered = {"DialCallStatus": "completed", "DialCallDuration": "42", "DialSipResponseCode": "200"}
    status(twilio, a, second, **answered)
    status(twilio, a, second, **answered)
    handoff_a = api.get(f"/v1/conversations/{a}").get_json()["handoff"]["id"]
    api.post(f"/v1/handoffs/{handoff_a}/outcome", json={"resolution": "refunded", "resolved_by": "ana"})
    api.post(f"/v1/handoffs/{handoff_a}/outcome", json={"resolution": "refunded again"})

    root = call(twilio, b, reason="complaint")
    root = parse(status(twilio, b, root, ReferCallStatus="failed", ReferSipResponseCode="405"))
    root = parse(status(twilio, b, root, DialCallStatus="no-answer"))
    status(twilio, b, root, ReferCallStatus="failed", NotifySipResponseCode="503")

    call(twilio, c, reason="complaint")
    twilio.post("/voice/status", {**call_params(c), "CallStatus": "completed"})
    twilio.post("/voice/status", {**call_params(c), "CallStatus": "completed"})


def test_figures_by_reason_match_what_happened(api, twilio):
    three_calls(api, twilio)
    items, body = by_key(api, "reason")
    assert list(items) == ["complaint", "billing_question"]  # most handoffs first
    assert items["complaint"] == {
        "key": "complaint", "handoffs": 2, "connected": 0, "completed": 0, "failed": 1, "abandoned": 1,
        "resolved": 0, "connected_rate": 0.0, "resolution_rate": 0.0, "median_seconds_to_connect": None,
        "attempts": 4, "failures": {"no-answer": 1, "sip_405": 1, "sip_503": 1}}
    billing = items["billing_question"]
    assert (billing["handoffs"], billing["connected"], billing["completed"], billing["resolved"]) == (1, 1, 1, 1)
    assert billing["connected_rate"] == 1.0 and billing["resolution_rate"] == 1.0
    assert billing["median_seconds_to_connect"] is not None and billing["median_seconds_to_connect"] >= 0
    assert billing["failures"] == {"busy": 1}
    assert body["from"] <= TODAY <= body["to"]


def test_figures_by_destination_count_attempts_and_failures(api, twilio):
    three_calls(api, twilio)
    items, _ = by_key(api, "destination")
    assert items["billing"]["handoffs"] == 3 and items["billing"]["attempts"] == 3
    assert items["billing"]["failures"] == {"busy": 1, "sip_405": 1}
    assert items["billing"]["connected"] == 0 and items["billing"]["abandoned"] == 1
    assert items["overflow"]["attempts"] == 2 and items["overflow"]["connected"] == 1
    assert items["overflow"]["completed"] == 1 and items["overflow"]["resolved"] == 1
    assert items["overflow"]["failures"] == {"no-answer": 1}
    assert items["reception"]["failed"] == 1 and items["reception"]["failures"] == {"sip_503": 1}


def test_figures_by_day_and_the_warnings_seen(api, twilio):
    three_calls(api, twilio)
    call(twilio, "CA" + "4" * 32, destination="nowhere", reason="complaint")  # → unknown_destination
    items, body = by_key(api, "day")
    assert len(items) == 7 and list(items)[-1] == TODAY
    today = items[TODAY]
    assert (today["handoffs"], today["connected"], today["completed"], today["failed"], today["abandoned"]) == \
        (4, 1, 1, 1, 1)
    assert all(items[day]["handoffs"] == 0 for day in list(items)[:-1])
    assert body["warnings"] == [{"code": "unknown_destination", "count": 1}]


def test_a_period_outside_the_handoffs_is_empty(api, twilio):
    three_calls(api, twilio)
    last_year = (datetime.now(UTC) - timedelta(days=365)).date()
    items, body = by_key(api, "reason", **{"from": (last_year - timedelta(days=3)).isoformat(),
                                          "to": last_year.isoformat()})
    assert items == {} and body["to"] == last_year.isoformat()


def test_bad_queries_are_refused(api, app):
    for query, field in (({"group_by": "caller"}, "group_by"), ({"from": "2026-02-30"}, "from"),
                         ({"from": "2026-05-02", "to": "2026-05-01"}, "from"),
                         ({"from": "2024-01-01", "to": "2026-01-01"}, "from"), ({"to": "0001-01-02"}, "to"),
                         ({"from": "0001-01-01T00:00:00+01:00"}, "from")):
        response = api.get("/v1/stats/handoffs", query_string=query)
        assert response.status_code == 422, query
        assert field in response.get_json()["error"]["fields"]
    assert app.test_client().get("/v1/stats/handoffs").status_code == 401


def test_the_median_reads_the_histogram():
    assert stats.median_seconds(Counter({"ttc:3": 1, "ttc:10": 1, "ttc:40": 1})) == 10
    assert stats.median_seconds(Counter({"ttc:4": 2, "ttc:8": 2})) == 6
    assert stats.median_seconds(Counter({"handoffs": 3})) is None
    assert [stats.ttc_bucket(s) for s in (0.4, 9, 14, 59, 61, 299, 301, 3599, 99999)] == \
        [0, 9, 10, 55, 60, 270, 300, 3300, 3600]


def test_a_counting_failure_never_stops_a_handoff(api, twilio, monkeypatch):
    make(api, "Billing")

    def broken(_handoff):
        raise ValueError("a bug in the figures")

    monkeypatch.setattr(stats, "handoff_facts", broken)
    sid = "CA" + "6" * 32
    root = call(twilio, sid, reason="complaint")
    assert root.find("Refer/Sip").text.startswith("sip:billing@pbx.example.com")
    status(twilio, sid, root, ReferCallStatus="in-progress", ReferSipResponseCode="202")
    assert api.get(f"/v1/conversations/{sid}").get_json()["handoff"]["state"] == "connected"
    monkeypatch.undo()
    assert by_key(api, "reason")[0] == {}  # uncounted, but handed off


def test_reasons_in_any_script_are_counted_as_written(api, twilio):
    """Counters go to Redis as one JSON argument of the create script (handoff/store/base.py)."""
    make(api)
    call(twilio, "CA" + "e" * 32, reason="réclamation 🚀")
    call(twilio, "CA" + "f" * 32, reason="réclamation 🚀")
    items, _ = by_key(api, "reason")
    assert items["réclamation 🚀"]["handoffs"] == 2 and items["réclamation 🚀"]["attempts"] == 2
