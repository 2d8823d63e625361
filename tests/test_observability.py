"""What an operator sees: /metrics behind an API key, counters a handoff moves, request ids,
and JSON log lines that name the call they are about."""
from __future__ import annotations

import io
import json
import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from handoff import logs, metrics
from tests.helpers import API_KEY, Twilio, call_params, parse

KEY = {"X-API-Key": API_KEY}


def scrape(client) -> dict[tuple, float]:
    response = client.get("/metrics", headers=KEY)
    assert response.status_code == 200 and response.mimetype == "text/plain"
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for s in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    return sum(v for (n, ls), v in samples.items()
               if n == name and labels.items() <= dict(ls).items())


def moved(before: dict, after: dict, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_metrics_need_an_api_key(app):
    client = app.test_client()
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "unauthorized"
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 200


def test_a_busy_then_answered_handoff_moves_its_counters(app, api, twilio):
    client = app.test_client()
    api.post("/v1/destinations", json={"name": "Desk", "route": "sip:desk@pbx.example.com"})
    api.post("/v1/destinations", json={"name": "Billing", "route": "sip:billing@pbx.example.com",
                                       "fallback": "desk"})
    before = scrape(client)
    call = call_params("CA" + "7" * 32)
    root = parse(twilio.post("/voice/handoff?destination=billing", call))
    action = root.find("Refer").get("action").removeprefix("https://handoff.example.com")
    root = parse(twilio.post(action, {**call, "ReferCallStatus": "failed", "ReferSipResponseCode": "486"}))
    action = root.find("Refer").get("action").removeprefix("https://handoff.example.com")
    twilio.post(action, {**call, "ReferCallStatus": "in-progress"})
    twilio.post("/voice/status", {**call, "CallStatus": "completed"})
    after = scrape(client)

    assert moved(before, after, "handoff_handoffs_started_total",
                 channel="voice", method="sip_refer", destination="billing") == 1
    assert moved(before, after, "handoff_attempts_total",
                 destination="billing", outcome="failed", result="failed", sip_code="486") == 1
    assert moved(before, after, "handoff_attempts_total", destination="desk", outcome="connected") == 1
    assert moved(before, after, "handoff_handoffs_finished_total",
                 destination="desk", state="completed") == 1
    assert moved(before, after, "handoff_handoffs_finished_total", state="failed") == 0
    assert moved(before, after, "handoff_http_request_duration_seconds_count",
                 route="/voice/handoff", method="POST") == 1
    assert moved(before, after, "handoff_http_requests_total",
                 route="/voice/handoff/<handoff_id>/status", status="200") == 2
    assert value(after, "handoff_queue_jobs", queue="handoff", state="queued") >= 0


def test_a_destination_outside_its_hours_counts_as_a_closed_attempt(app, api, twilio):
    client = app.test_client()
    api.post("/v1/destinations", json={"name": "Desk", "route": "sip:desk@pbx.example.com"})
    api.post("/v1/destinations", json={"name": "Night", "route": "sip:night@pbx.example.com", "hours": {
        "timezone": "UTC", "weekly": {}}})
    before = scrape(client)
    parse(twilio.post("/voice/handoff?destination=night", call_params("CA" + "8" * 32)))
    after = scrape(client)
    assert moved(before, after, "handoff_attempts_total", destination="night", result="closed") == 1


def test_answers_from_the_snapshot_are_counted(app_on_own_valkey, own_valkey):
    client = app_on_own_valkey.test_client()
    client.post("/v1/destinations", json={"name": "Desk", "route": "sip:desk@pbx"}, headers=KEY)
    before = scrape(client)
    own_valkey.stop()
    root = parse(Twilio(client).post("/voice/call", call_params("CA" + "6" * 32)))
    assert root.find("Refer/Sip").text == "sip:desk@pbx"
    own_valkey.start()
    after = scrape(client)
    assert moved(before, after, "handoff_snapshot_answers_total", route="/voice/call") == 1


def test_an_open_long_poll_is_a_gauge_while_it_waits(app, live_server):
    import threading

    import requests

    client = app.test_client()
    poll = threading.Thread(target=requests.get, args=(live_server + "/v1/handoffs/events",),
                            kwargs={"params": {"wait": 3}, "headers": KEY, "timeout": 10})
    poll.start()
    try:
        waiting = 0.0
        for _ in range(50):
            waiting = value(scrape(client), "handoff_open_long_polls", route="/v1/handoffs/events")
            if waiting:
                break
            threading.Event().wait(0.05)
        assert waiting == 1
    finally:
        poll.join()
    assert value(scrape(client), "handoff_open_long_polls", route="/v1/handoffs/events") == 0


def test_every_answer_carries_a_request_id(app):
    client = app.test_client()
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert first and second and first != second
    assert client.get("/healthz", headers={"X-Request-ID": "lb-42.a"}).headers["X-Request-ID"] == "lb-42.a"
    odd = "a b; {json: 1}" + "x" * 200  # spaces, punctuation, too long: replaced, not echoed
    replaced = client.get("/healthz", headers={"X-Request-ID": odd}).headers["X-Request-ID"]
    assert replaced and replaced != odd and " " not in replaced


@pytest.fixture
def json_lines():
    stream = io.StringIO()
    handler = logs.handler("json", stream)
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


def test_json_log_lines_name_the_call_conversation_and_handoff(app_on_own_valkey, own_valkey, json_lines):
    client = app_on_own_valkey.test_client()
    client.post("/v1/destinations", json={"name": "Desk", "route": "sip:desk@pbx"}, headers=KEY)
    twilio = Twilio(client)
    call = call_params("CA" + "5" * 32)
    root = parse(twilio.post("/voice/handoff", call))
    action = root.find("Refer").get("action").removeprefix("https://handoff.example.com")
    own_valkey.stop()
    answer = twilio.post(action, {**call, "ReferCallStatus": "busy"}, headers={"X-Request-ID": "req-1"})
    assert answer.status_code == 200
    handoff_id = action.split("/")[3]
    line = next(line for line in json_lines() if "Redis unreachable on the outcome" in line["message"])
    assert line["level"] == "ERROR" and line["logger"] == "web.voice"
    assert (line["call_sid"], line["conversation_id"], line["handoff_id"], line["request_id"]) == \
        (call["CallSid"], call["CallSid"], handoff_id, "req-1")


def test_a_human_legs_lines_name_the_callers_conversation(app, json_lines):
    client = app.test_client()
    log = logging.getLogger("tests.observability")
    app.add_url_rule("/voice/probe/<handoff_id>", "probe", lambda handoff_id: log.info("probe") or "",
                     methods=["POST"])
    client.post("/voice/probe/HO1", data={"CallSid": "CA" + "b" * 32, "ParentCallSid": "CA" + "a" * 32})
    line = next(line for line in json_lines() if line["message"] == "probe")
    assert (line["call_sid"], line["conversation_id"], line["handoff_id"]) == ("CA" + "b" * 32, "CA" + "a" * 32, "HO1")


def test_a_jobs_lines_name_the_handoffs_conversation_and_call(app, json_lines):
    from handoff.worker import bind_job_ids

    client = app.test_client()
    client.post("/v1/destinations", json={"name": "Desk", "route": "sip:desk@pbx"}, headers=KEY)
    call = call_params("CA" + "6" * 32)
    handoff_id = parse(Twilio(client).post("/voice/handoff", call)).find("Refer").get("action").split("/")[5]
    # The web process queued an event; this worker has no HANDOFF_WEBHOOK_URL and says so.
    job = app.extensions["handoff"].queue.enqueue("handoff.jobs.deliver_event", handoff_id, 0)
    bind_job_ids(job)  # what the Procfile worker does before each job
    try:
        assert job.perform() == "skipped"
    finally:
        logs.clear()
    line = next(line for line in json_lines() if "not delivered" in line["message"])
    assert (line["call_sid"], line["conversation_id"], line["handoff_id"]) == (call["CallSid"], call["CallSid"],
                                                                               handoff_id)


def test_text_stays_the_default_format(app):
    stream = io.StringIO()
    logger = logging.getLogger("tests.text")
    logger.addHandler(logs.handler("text", stream))
    logger.warning("plain")
    assert stream.getvalue().endswith("WARNING tests.text: plain\n")


def test_attempt_outcomes_read_from_history_entries():
    assert metrics.attempt_outcome("transferring", {"destination": "b", "attempt": 2, "after": {
        "destination": "a", "attempt": 1, "result": "busy"}}) == ("a", "failed", "busy", "")
    assert metrics.attempt_outcome("transferring", {"destination": "a", "attempt": 1}) is None
    assert metrics.attempt_outcome("failed", {"destination": "a", "attempt": 1, "reason": "timeout"}) == \
        ("a", "failed", "timeout", "")
    assert metrics.attempt_outcome("abandoned", {"destination": "a", "attempt": 1, "result": "canceled"}) == \
        ("a", "abandoned", "canceled", "")
    assert metrics.attempt_outcome("abandoned", {"call_status": "completed"}) is None


def test_a_fresh_start_drops_samples_of_processes_that_are_gone(tmp_path):
    import os
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    live = str(os.getpid())
    for name in (f"counter_{gone}.db", f"gauge_livesum_{gone}.db", f"counter_rq{gone}.db",
                 f"counter_{live}.db", f"histogram_rq{live}.db"):
        (tmp_path / name).write_bytes(b"")
    assert metrics.remove_stale(str(tmp_path)) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"counter_{live}.db", f"histogram_rq{live}.db"]
