"""Benchmark of the review pages and the figures endpoint over 100,000 handoffs (issue 14).

Usage, from the repository root with the project's virtualenv:

    python bench/insights.py                   # 100,000 handoffs over 30 days, 30 requests each
    python bench/insights.py --handoffs 20000  # a quicker, smaller run

What it does:

1. Starts the Procfile deployment `bench/run.py` uses (embedded Valkey, gunicorn with
   `gunicorn.conf.py`, bound to 127.0.0.1) and creates four destinations over `/v1`.
2. Loads `--handoffs` conversations, each with one handoff, spread over the last
   `--days` days, written through the store itself (`Store.create_conversation`,
   `Store.create_handoff`) in pipelines of 1,000: the same Lua script, indexes and
   counters a live handoff writes, only without the webhooks in front. Outcomes follow a
   fixed random seed: most calls connect at the first or second attempt; some ring busy,
   unanswered, refused with a SIP code, reach voicemail or a closed destination; chats
   wait for a connector; some outcomes are pushed.
3. Signs in to the studio and measures, one request at a time (`--requests` each, after
   3 warm-up requests): the Insights page for 30 days, `GET /v1/stats/handoffs` grouped
   by day, reason and destination over 30 days, the Conversations list unfiltered and
   filtered by a common and by a rare reason.
4. Prints a Markdown table (p50, p95, max). Targets: Insights page and stats endpoint
   under 200 ms, the list filtered by reason under 300 ms.

Every process it starts is stopped on exit.
"""
from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]  # also importable from the tests (screenshots)

from run import API_KEY, HOST, Deployment  # noqa: E402  (bench/run.py)

from handoff.models import ConversationRecord, Handoff  # noqa: E402
from handoff.redis_server import client_for  # noqa: E402
from handoff.store import Store  # noqa: E402

DESTINATIONS = [  # Reception first: it becomes the default, and the others fall back to it
    {"name": "Reception", "route": "sip:reception@pbx.example.com"},
    {"name": "Billing", "route": "sip:billing@pbx.example.com", "fallback": "reception"},
    {"name": "Support", "route": "sip:support@pbx.example.com", "method": "sip_invite",
     "encryption": "udp_rtp", "fallback": "reception"},
    {"name": "Sales", "route": "+14155550142", "method": "sip_invite", "encryption": "udp_rtp"},
]
# reason → (weight, first destination)
REASONS = {
    "billing_question": (22, "billing"), "refund_request": (12, "billing"), "complaint": (14, "support"),
    "technical_issue": (18, "support"), "cancel_subscription": (8, "sales"), "order_status": (10, "support"),
    "needs_human": (12, "reception"), "no_match": (3, "reception"), "legal_hold": (0.2, "reception"),
}
RARE_REASON = "legal_hold"
COMMON_REASON = "technical_issue"
FALLBACK = {"billing": "reception", "support": "reception", "sales": "reception", "reception": None}
# How an attempt ends: (weight, result word, SIP code).
ATTEMPT_RESULTS = [(70, "connected", 200), (8, "busy", 486), (9, "no-answer", None), (3, "failed", 503),
                   (1, "failed", 404), (3, "voicemail", None), (4, "closed", None), (2, "canceled", None)]


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def synthetic(rng: random.Random, n: int, at: datetime) -> tuple[ConversationRecord, Handoff]:
    """One conversation and its handoff, as they would stand once everything happened."""
    conversation_id = f"CA{n:032x}"
    reason = rng.choices(list(REASONS), [w for w, _ in REASONS.values()])[0]
    channel = rng.choices(("voice", "webchat", "sms"), (80, 15, 5))[0]
    started = at - timedelta(seconds=rng.randint(20, 400))
    conversation = ConversationRecord.from_dict({
        "id": conversation_id, "shared_id": f"S-{n}" if rng.random() < 0.3 else None, "channel": channel,
        "from": f"+1415{rng.randint(2000000, 9999999)}", "to": "+14155550199", "started_at": iso(started),
        "ended_at": iso(at + timedelta(minutes=5)), "state": {}, "outcome": None})
    handoff = Handoff(id=f"HO{n:032x}", conversation_id=conversation_id, channel=channel,
                      shared_id=conversation.shared_id, reason=reason, utterance="One moment.",
                      created_at=iso(at), updated_at=iso(at))
    clock = at

    def step(state: str, detail: dict, seconds: float = 0.0) -> None:
        nonlocal clock
        clock += timedelta(seconds=seconds)
        handoff.state = state
        handoff.updated_at = iso(clock)
        handoff.history.append({"state": state, "at": iso(clock), "detail": detail})

    step("requested", {})
    for code, share in (("missing_variable", 0.05), ("headers_truncated", 0.02), ("unknown_destination", 0.01)):
        if rng.random() < share:
            handoff.warnings.append({"code": code, "message": code.replace("_", " ")})
    destination = REASONS[reason][1]
    if channel != "voice":
        handoff.destination = {"id": destination, "name": destination.title(), "method": "sip_refer", "route": None}
        step("pending", {})
        if rng.random() < 0.85:
            step("claimed", {"agent": "ana"}, rng.uniform(5, 240))
            step("completed", {}, rng.uniform(60, 600))
            if rng.random() < 0.7:
                handoff.outcome = {"resolution": "resolved", "at": iso(clock)}
        else:
            step("abandoned", {}, rng.uniform(60, 3600))
        return conversation, handoff
    failed = None
    attempt = 0
    while destination:
        attempt += 1
        handoff.attempts.append(destination)
        handoff.destination = {"id": destination, "name": destination.title(), "method": "sip_refer", "route": None}
        _, result, code = rng.choices(ATTEMPT_RESULTS, [w for w, *_ in ATTEMPT_RESULTS])[0]
        detail = {"destination": destination, "attempt": attempt}
        if result == "closed":
            failed = {**detail, "result": "closed"}
            destination = FALLBACK[destination]
            continue
        step("transferring", {**detail, **({"after": failed} if failed else {})}, rng.uniform(0.5, 3))
        ring = rng.uniform(3, 35)
        if result == "connected":
            step("connected", {**detail, "result": "in-progress", "sip_code": 200}, ring)
            step("completed", {"call_status": "completed"}, rng.uniform(30, 900))
            if rng.random() < 0.6:
                handoff.outcome = {"resolution": rng.choice(("resolved", "follow_up")), "at": iso(clock)}
            return conversation, handoff
        if result == "canceled":
            step("abandoned", {**detail, "result": "canceled"}, ring)
            return conversation, handoff
        failed = {**detail, "result": result, **({"sip_code": code} if code else {})}
        destination = FALLBACK[destination]
        clock += timedelta(seconds=ring)
    step("failed", {"reason": "no_destination_left", **(failed or {})})
    return conversation, handoff


def load(store: Store, count: int, days: int, seed: int = 14, batch: int = 1000) -> None:
    """`count` handoffs spread evenly over the last `days` days, oldest first."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    start = now - timedelta(days=days) + timedelta(minutes=10)
    span = (now - start).total_seconds() - 600
    pipe = store.redis.pipeline(transaction=False)
    for n in range(count):
        conversation, handoff = synthetic(rng, n, start + timedelta(seconds=span * n / count))
        store.create_conversation(conversation, pipe=pipe)
        store.create_handoff(handoff, pipe=pipe)
        if (n + 1) % batch == 0:
            pipe.execute()
    pipe.execute()


def signed_in_session(base: str) -> requests.Session:
    session = requests.Session()
    form = session.get(f"{base}/studio/sign-in", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    answer = session.post(f"{base}/studio/sign-in", data={"api_key": API_KEY, "csrf_token": token},
                          allow_redirects=False, timeout=10)
    assert answer.status_code == 303, answer.status_code
    return session


def measure(session: requests.Session, url: str, requests_: int, check) -> list[float]:
    for _ in range(3):
        check(session.get(url, timeout=30))
    took = []
    for _ in range(requests_):
        begin = time.perf_counter()
        answer = session.get(url, timeout=30)
        took.append((time.perf_counter() - begin) * 1000)
        check(answer)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--handoffs", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="handoff-bench-insights-") as workdir:
        deployment = Deployment(Path(workdir))
        try:
            deployment.start()
            base = f"http://{HOST}:{deployment.port}"
            auth = {"Authorization": f"Bearer {API_KEY}"}
            for destination in DESTINATIONS:
                assert requests.post(f"{base}/v1/destinations", json=destination, headers=auth,
                                     timeout=10).status_code == 201
            store = Store(client_for(deployment.valkey.url, timeout=30), retention_seconds=30 * 86400)
            begin = time.perf_counter()
            load(store, args.handoffs, args.days)
            loaded = time.perf_counter() - begin
            print(f"loaded {args.handoffs} handoffs over {args.days} days in {loaded:.1f} s", file=sys.stderr)

            session = signed_in_session(base)
            session.headers.update(auth)
            today = datetime.now(UTC).date()
            period = f"from={(today - timedelta(days=args.days - 1)).isoformat()}&to={today.isoformat()}"

            def page_ok(answer):
                assert answer.status_code == 200 and "<table" in answer.text, answer.status_code

            def rows_ok(answer):
                page_ok(answer)
                assert "data-conversation=" in answer.text, "the filtered list came back empty"

            def stats_ok(answer):
                assert answer.status_code == 200 and answer.json()["items"], answer.text[:200]

            cases = [
                ("`GET /studio/insights?period=30d`", "/studio/insights?period=30d", page_ok, 200),
                ("`GET /v1/stats/handoffs?group_by=day` (30 days)", f"/v1/stats/handoffs?group_by=day&{period}", stats_ok, 200),
                ("`GET /v1/stats/handoffs?group_by=reason` (30 days)", f"/v1/stats/handoffs?group_by=reason&{period}", stats_ok, 200),
                ("`GET /v1/stats/handoffs?group_by=destination` (30 days)",
                 f"/v1/stats/handoffs?group_by=destination&{period}", stats_ok, 200),
                ("`GET /studio/conversations` (no filter)", "/studio/conversations", rows_ok, None),
                (f"`GET /studio/conversations?reason={COMMON_REASON}` (18 %)",
                 f"/studio/conversations?reason={COMMON_REASON}", rows_ok, 300),
                (f"`GET /studio/conversations?reason={RARE_REASON}` (0.2 %)",
                 f"/studio/conversations?reason={RARE_REASON}", rows_ok, 300),
                (f"`GET /studio/conversations?reason={COMMON_REASON}&state=failed`",
                 f"/studio/conversations?reason={COMMON_REASON}&state=failed", rows_ok, 300),
            ]
            print(f"\n{args.handoffs:,} handoffs over {args.days} days, loaded in {loaded:.0f} s; "
                  f"{args.requests} sequential requests each (after 3 warm-up)\n")
            print("| request | p50 ms | p95 ms | max ms | target |")
            print("|---|---:|---:|---:|---|")
            for label, path, check, target in cases:
                took = sorted(measure(session, base + path, args.requests, check))
                p95 = took[min(len(took) - 1, int(len(took) * 0.95))]
                verdict = "–" if target is None else (f"< {target} ms: " + ("met" if p95 < target else "MISSED"))
                print(f"| {label} | {statistics.median(took):.1f} | {p95:.1f} | {took[-1]:.1f} | {verdict} |")
        finally:
            deployment.stop()


if __name__ == "__main__":
    main()
