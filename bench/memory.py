"""Redis memory per voice handoff and per webchat conversation, measured with INFO memory.

Usage, from the repository root with the project's virtualenv:

    python bench/memory.py                 # 10,000 of each (about a minute)
    python bench/memory.py -n 2000         # quicker, same figures within a few bytes

It starts an embedded Valkey in a temporary directory and builds the app with
`create_app(Config(...))` (the settings `bench/run.py` gives gunicorn), creates the two
destinations `bench/run.py` uses, then:

- voice: N signed `POST /voice/handoff` through Flask's test client, each with its own
  CallSid and idempotency token (the same requests as `bench/run.py`: a `destination`, a
  `reason`, an 86-character `utterance` and a small `data` JSON). `used_memory` is read
  before and after; the idempotency keys (`handoff:once:*`, one hour) are then deleted
  to show the figure "at rest", once they have expired.
- webchat: N conversations created through `Conversations.create(channel="webchat")`,
  each with a 10-entry transcript (5 user and 5 agent turns of 40–90 characters) appended
  through `Conversations.append`, as the chat router writes them.

Shared structures (the event stream, the global indexes, the day's counters) are part of
the figure: they grow with every handoff. Prints bytes per item, how many items a 1 GB
Redis holds at the default retention (30 days; every key expires with it), one stored
handoff, and where a voice handoff's bytes go (`MEMORY USAGE` summed by kind of key).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from twilio.request_validator import RequestValidator  # noqa: E402

from handoff.conversations import Conversations  # noqa: E402
from handoff.redis_server import client_for  # noqa: E402
from handoff.store import Keys  # noqa: E402
from handoff.store.compact import handoff_from_text  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import AUTH_TOKEN, in_process_app, signed_handoff  # noqa: E402

GB = 1024 ** 3
TURNS = [
    ("agent", "Hi, I'm the virtual assistant. How can I help you today?"),
    ("user", "I was charged twice for my last order, can you check?"),
    ("agent", "Sorry to hear that. Could you give me the order number please?"),
    ("user", "It's 48213-A, placed last Tuesday."),
    ("agent", "Thanks. I can see two payments for order 48213-A on the same day."),
    ("user", "Yes exactly, I need one of them refunded."),
    ("agent", "Refunds need a person on our billing team. Shall I connect you?"),
    ("user", "Yes please."),
    ("agent", "Connecting you now, a colleague will be with you shortly."),
    ("user", "Thank you!"),
]


def where_the_bytes_go(client, n: int) -> list[tuple[str, tuple[int, float]]]:
    """MEMORY USAGE summed by kind of key (its name with ids left out), per voice handoff."""
    kinds: dict[str, list] = {}
    for key in client.scan_iter(count=1000):
        parts = key.split(":")
        kind = ":".join(part if i < 2 or not any(ch.isdigit() for ch in part) else "*"
                        for i, part in enumerate(parts))
        entry = kinds.setdefault(kind, [0, 0])
        entry[0] += 1
        entry[1] += client.memory_usage(key, samples=0) or 0
    rows = [(kind, (keys, total / n)) for kind, (keys, total) in kinds.items()]
    return sorted((row for row in rows if row[1][1] >= 1), key=lambda row: -row[1][1])


def used(client) -> int:
    return int(client.info("memory")["used_memory"])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=10000, help="voice handoffs and webchat conversations (10000)")
    args = parser.parse_args()
    with in_process_app("handoff-memory-") as (app, server):
        config = app.extensions["handoff"].config
        client = app.test_client()
        redis_client = client_for(server.url, timeout=10)
        # No snapshots or AOF rewrites: their forks stall the server, and memory is what is measured.
        redis_client.config_set("save", "")
        redis_client.config_set("appendonly", "no")
        validator = RequestValidator(AUTH_TOKEN)

        def voice(i: int) -> None:
            params, headers = signed_handoff(validator, i)
            response = client.post("/voice/handoff", data=params, headers=headers)
            assert response.status_code == 200 and (b"<Refer" in response.data or b"<Dial" in response.data)

        # Warm-up: the first items create the shared keys (stream, indexes, counters).
        for i in range(50):
            voice(10_000_000 + i)
        redis_client.execute_command("MEMORY", "PURGE")
        before = used(redis_client)
        for i in range(args.n):
            voice(i)
        after = used(redis_client)
        once = list(redis_client.scan_iter(Keys.once("*", "*"), count=1000))
        sample = [redis_client.get(Keys.handoff(fields["m"])) for _, fields in redis_client.xrevrange(Keys.handoffs, count=1)][0]
        for start in range(0, len(once), 1000):
            redis_client.delete(*once[start:start + 1000])
        at_rest = used(redis_client)
        by_kind = where_the_bytes_go(redis_client, args.n)
        voice_bytes = (after - before) / args.n
        voice_rest = (at_rest - before) / args.n

        days = config.retention_days
        print(f"{args.n} voice handoffs (POST /voice/handoff): {voice_bytes:,.0f} bytes each with the "
              f"idempotency key, {voice_rest:,.0f} at rest (key expired); "
              f"{GB / voice_rest:,.0f} fit in 1 GB ({GB / voice_rest / days:,.0f} a day over {days} days)", flush=True)
        with app.app_context():
            from web.context import services

            conversations = Conversations(services())
            redis_client.execute_command("MEMORY", "PURGE")
            before = used(redis_client)
            for _ in range(args.n):
                conversation, _created = conversations.create(channel="webchat")
                for role, text in TURNS:
                    conversations.append(conversation.id, "transcript", {"role": role, "text": text})
            chat_bytes = (used(redis_client) - before) / args.n

        print(f"{args.n} webchat conversations with a 10-turn transcript: {chat_bytes:,.0f} bytes each; "
              f"{GB / chat_bytes:,.0f} fit in 1 GB ({GB / chat_bytes / days:,.0f} a day over {days} days)")
        packed = json.dumps(handoff_from_text(sample), separators=(",", ":"), ensure_ascii=False)
        print(f"one stored handoff: {len(sample)} characters as stored, {len(packed)} of packed JSON: {packed}")
        print("where a voice handoff's bytes go at rest (MEMORY USAGE per key; a shared key's share "
              "per handoff; the keyspace's own tables come on top):")
        for kind, (keys, per_item) in by_kind:
            print(f"  {per_item:6.0f} B  {kind} ({keys:,} keys)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
