"""At 20 and at 2,000 destinations: a voice handoff, GET /v1/destinations (whole and one
page), and the Call handoffs page — in-process (Flask's test client), embedded Valkey.

    python bench/many_destinations.py [--requests 200]

Prints a Markdown table (medians and p90 in ms). Takes ~20 s on a 2-core machine.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from twilio.request_validator import RequestValidator  # noqa: E402

from app import create_app  # noqa: E402
from handoff.config import Config  # noqa: E402
from handoff.models import Destination  # noqa: E402
from handoff.redis_server import EmbeddedServer, client_for  # noqa: E402
from handoff.versions import change  # noqa: E402

TOKEN, KEY, BASE = "bench-token", "bench-key-0123456789abcdef0123456789", "https://bench.example.com"


def seed(services, n: int) -> None:
    def add(_snapshot, entities):
        for i in range(n):
            entities[f"d:dest-{i:04d}"] = Destination(
                id=f"dest-{i:04d}", name=f"Destination {i:04d}", route=f"sip:d{i}@pbx.example.com",
                description="A destination for the benchmark, with a description of ordinary length.",
                sip_headers=[{"name": "X-Reason", "value": "$reason"}],
                created_at=f"2026-01-01T00:00:00.{i:04d}Z").to_dict()
        entities["default"] = "dest-0000"

    change(services, "bench", add)


def timed(call, n: int) -> list[float]:
    call()  # warm: parse and cache once, as a long-running process has
    out = []
    for _ in range(n):
        started = time.perf_counter()
        response = call()
        out.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    return out


def row(label: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    return f"| {label} | {statistics.median(ordered):.2f} | {ordered[int(len(ordered) * 0.9)]:.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    data = tempfile.mkdtemp(prefix="bench-many-")
    server = EmbeddedServer(data + "/valkey").start()
    rows = []
    try:
        for n in (20, 2000):
            client_for(server.url).flushall()
            app = create_app(Config(redis_url=server.url, data_dir=data + "/web", twilio_auth_token=TOKEN,
                                    public_base_url=BASE, api_keys=(KEY,), sip_domain="sbc.example.com"))
            seed(app.extensions["handoff"], n)
            client = app.test_client()
            validator = RequestValidator(TOKEN)
            counter = iter(range(10**9))

            def handoff():
                params = {"CallSid": f"CA{next(counter):032d}", "From": "sip:+14155550100@sbc.example.com",
                          "To": "sip:+14155550199@x.sip.twilio.com", "SipCallId": "x@sbc",
                          "destination": f"dest-{n - 1:04d}", "reason": "bench"}
                signature = validator.compute_signature(BASE + "/voice/handoff", params)
                return client.post("/voice/handoff", data=params, headers={"X-Twilio-Signature": signature})

            headers = {"X-API-Key": KEY}
            rows.append(row(f"{n} destinations: POST /voice/handoff", timed(handoff, args.requests)))
            few = max(5, args.requests // 20)
            rows.append(row(f"{n} destinations: GET /v1/destinations (all)",
                            timed(lambda: client.get("/v1/destinations", headers=headers), few)))
            rows.append(row(f"{n} destinations: GET /v1/destinations?limit=100",
                            timed(lambda: client.get("/v1/destinations?limit=100", headers=headers), few)))
            page = app.test_client()
            page.get("/studio/sign-in")
            with page.session_transaction() as session:
                token = session.get("csrf")
            page.post("/studio/sign-in", data={"api_key": KEY, "csrf_token": token})
            rows.append(row(f"{n} destinations: GET /studio/handoffs",
                            timed(lambda: page.get("/studio/handoffs"), few)))
    finally:
        server.stop()
    print("| what | p50 ms | p90 ms |\n|---|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
