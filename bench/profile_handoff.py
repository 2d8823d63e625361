"""Where a /voice/handoff request spends its time: cProfile over N requests in one process.

Usage, from the repository root with the project's virtualenv:

    python bench/profile_handoff.py                # 3000 handoffs, 3000 /healthz, summary
    python bench/profile_handoff.py -n 5000 --top 40
    python bench/profile_handoff.py --events 2000  # also profile event-feed polls

It builds the Flask app with `create_app(Config(...))` against an embedded Valkey in a
temporary directory (the same settings `bench/run.py` gives gunicorn), creates the same two
destinations, and calls the app through `app.test_client()` — no gunicorn, no network to
the app, one thread — with signed requests, each with its own CallSid. Werkzeug's test
client adds some cost of its own (building the WSGI environ), which is reported apart.
Prints per-request wall time of each endpoint, a breakdown by area (Redis round trips,
signature check, Flask/Werkzeug, TwiML, JSON, ...) and the top functions.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from twilio.request_validator import RequestValidator  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import API_KEY, AUTH_TOKEN, in_process_app, signed_handoff  # noqa: E402

# Areas, by the file a function lives in (first match wins), for the "self time" breakdown.
AREAS = [
    ("Redis client (redis-py: commands, pipelines, connection pool)", ("/redis/",)),
    ("socket I/O (waiting on Valkey)", ("socket.", "<method 'recv", "<method 'sendall", "<method 'send'",
                                        "select.", "selectors")),
    ("Twilio signature check (twilio.request_validator)", ("request_validator",)),
    ("TwiML building (twilio.twiml, xml.etree)", ("/twilio/twiml", "xml/etree", "ElementTree")),
    ("Werkzeug test client (benchmark harness only)", ("werkzeug/test.py",)),
    ("Flask / Werkzeug request handling", ("/flask/", "/werkzeug/")),
    ("JSON (json module)", ("json/", "<built-in method _json", "'_json")),
    ("marshmallow", ("/marshmallow/",)),
    ("dataclasses (asdict, fields)", ("dataclasses.py",)),
    ("app: web/", ("/web/",)),
    ("app: handoff/", ("/handoff/",)),
    ("app: twiml/ schemas/", ("/twiml/", "/schemas/")),
    ("uuid / hashlib / hmac / datetime", ("uuid.py", "hashlib", "hmac", "datetime", "<built-in method now")),
    ("urllib.parse", ("urllib/parse",)),
    ("logging", ("logging/",)),
]


def area_of(filename: str, name: str) -> str:
    key = f"{filename}:{name}"
    for area, needles in AREAS:
        if any(n in key for n in needles):
            return area
    return "other (stdlib, builtins)"


def breakdown(stats: pstats.Stats) -> list[tuple[str, float]]:
    totals: dict[str, float] = {}
    for (filename, _line, name), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():
        area = area_of(filename, name)
        totals[area] = totals.get(area, 0.0) + tt
    return sorted(totals.items(), key=lambda kv: -kv[1])


def cumulative(stats: pstats.Stats, wanted: list[tuple[str, str]]) -> list[tuple[str, float]]:
    """Inclusive time of the named functions (file suffix, function name)."""
    found = []
    for suffix, name in wanted:
        total = 0.0
        for (filename, _line, fname), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():
            if fname == name and filename.endswith(suffix):
                total = max(total, ct)
        found.append((f"{suffix}:{name}", total))
    return found


INCLUSIVE = [
    ("flask/app.py", "wsgi_app"),
    ("web/twilio_auth.py", "signature_valid"),
    ("twilio/request_validator.py", "validate"),
    ("web/voice.py", "handoff"),
    ("handoff/store/short_lived.py", "answer_once"),
    ("redis/commands/core.py", "set"),
    ("handoff/conversations.py", "create"),
    ("handoff/store/conversations.py", "create_conversation"),
    ("handoff/handoffs.py", "start_voice"),
    ("handoff/services.py", "configuration"),
    ("handoff/store/configuration.py", "load_configuration"),
    ("handoff/store/configuration.py", "live"),
    ("handoff/snapshot.py", "remember"),
    ("handoff/handoffs.py", "_new"),
    ("handoff/handoffs.py", "plan_attempt"),
    ("handoff/handoffs.py", "_transfer"),
    ("handoff/templating.py", "render_headers"),
    ("handoff/handoffs.py", "_persist_new"),
    ("handoff/store/handoffs.py", "create_handoff"),
    ("handoff/models.py", "to_dict"),
    ("dataclasses.py", "asdict"),
    ("twiml/voice.py", "transfer_twiml"),
    ("twilio/twiml/__init__.py", "__str__"),
    ("redis/client.py", "execute_command"),
    ("redis/client.py", "execute"),
    ("redis/commands/core.py", "__call__"),
    ("werkzeug/test.py", "open"),
    ("web/api.py", "handoff_events"),
    ("web/api.py", "require_api_key"),
    ("web/api.py", "query"),
    ("handoff/store/events.py", "read_events"),
    ("handoff/store/events.py", "wait_for_events"),
    ("flask/json/__init__.py", "jsonify"),
]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=3000, help="requests per endpoint (3000)")
    parser.add_argument("--top", type=int, default=25, help="functions to list by self time (25)")
    parser.add_argument("--events", type=int, default=0, help="also profile this many event-feed polls")
    args = parser.parse_args()

    with in_process_app("handoff-profile-") as (app, _server):
        client = app.test_client()
        auth = {"Authorization": f"Bearer {API_KEY}"}

        validator = RequestValidator(AUTH_TOKEN)
        prepared = []
        for i in range(args.n + 200):
            params, headers = signed_handoff(validator, i)
            prepared.append((params, headers))

        def handoffs(batch):
            for params, headers in batch:
                response = client.post("/voice/handoff", data=params, headers=headers)
                assert response.status_code == 200 and (b"<Refer" in response.data or b"<Dial" in response.data), \
                    response.data

        def healthz(count):
            for _ in range(count):
                assert client.get("/healthz").status_code == 200

        # warm up (imports, connection pool, snapshot file)
        handoffs(prepared[:200])
        healthz(200)

        t0, c0 = time.perf_counter(), time.process_time()
        healthz(args.n)
        bare, bare_cpu = (time.perf_counter() - t0) / args.n, (time.process_time() - c0) / args.n
        t0, c0 = time.perf_counter(), time.process_time()
        handoffs(prepared[200:200 + args.n // 3])
        hook, hook_cpu = (time.perf_counter() - t0) / (args.n // 3), (time.process_time() - c0) / (args.n // 3)
        print(f"unprofiled, one thread: GET /healthz {bare * 1e6:.0f} us/request, "
              f"POST /voice/handoff {hook * 1e6:.0f} us/request (ratio {bare / hook:.0%})")
        # CPU time of this process only: steadier than wall time on a shared machine (Valkey's
        # own work is not in it).
        print(f"CPU of the app process: GET /healthz {bare_cpu * 1e6:.0f} us/request, "
              f"POST /voice/handoff {hook_cpu * 1e6:.0f} us/request")

        def profile(label, func, *fargs):
            profiler = cProfile.Profile()
            profiler.enable()
            func(*fargs)
            profiler.disable()
            stats = pstats.Stats(profiler)
            total = sum(tt for (_cc, _nc, tt, _ct, _callers) in stats.stats.values())
            count = fargs[0] if isinstance(fargs[0], int) else len(fargs[0])
            sends = sum(nc for (fn, _l, name), (_cc, nc, _tt, _ct, _c) in stats.stats.items()
                        if "sendall" in name and "socket" in name)
            print(f"\n== {label}: {count} requests, {total / count * 1e6:.0f} us each under cProfile, "
                  f"{sends / count:.1f} Redis round trips each ==")
            print("self time by area:")
            for area, tt in breakdown(stats):
                if tt / total >= 0.005:
                    print(f"  {100 * tt / total:5.1f} %  {area}")
            print("inclusive time of key functions (% of the request):")
            for name, ct in cumulative(stats, INCLUSIVE):
                if ct:
                    print(f"  {100 * ct / total:5.1f} %  {name}")
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.top)
            lines = out.getvalue().splitlines()
            start = next(i for i, line in enumerate(lines) if "ncalls" in line)
            print(f"top {args.top} functions by self time:")
            print("\n".join(lines[start:start + args.top + 1]))
            return stats

        remaining = prepared[200 + args.n // 3:]
        profile("GET /healthz", healthz, args.n)
        profile("POST /voice/handoff", handoffs, remaining[:args.n])

        if args.events:
            # A poll answered at once (events already there), as each of 50 connectors does
            # when a handoff wakes them all.
            def events(count):
                for _ in range(count):
                    response = client.get("/v1/handoffs/events?wait=30&after=0-0&limit=2", headers=auth)
                    assert response.status_code == 200
            events(100)
            profile("GET /v1/handoffs/events (answered at once)", events, args.events)
    return 0


if __name__ == "__main__":
    sys.exit(main())
