"""Every Redis key the service uses, and the only code that touches them.

One prefix (`handoff:`), keys built in one place (`Keys`). Entities are JSON strings;
append-only parts of a conversation are lists; listings are sorted sets scored by a
global sequence so cursors are stable; every handoff state change is appended to one
stream in the same transaction as the change, so the event feed sees each exactly once.
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterable

import redis

from .models import Handoff

PREFIX = "handoff:"


class Keys:
    destinations = PREFIX + "destinations"
    default_destination = PREFIX + "destinations:default"
    integration = PREFIX + "integration"
    topics = PREFIX + "topics"
    sequence = PREFIX + "seq"
    conversations = PREFIX + "conversations"
    handoffs = PREFIX + "handoffs"
    events = PREFIX + "events"
    transfer_deadlines = PREFIX + "transfer_deadlines"

    @staticmethod
    def conversation(conversation_id: str) -> str:
        return f"{PREFIX}conversation:{conversation_id}"

    @staticmethod
    def conversation_part(conversation_id: str, part: str) -> str:
        return f"{PREFIX}conversation:{conversation_id}:{part}"

    @staticmethod
    def handoff(handoff_id: str) -> str:
        return f"{PREFIX}handoff:{handoff_id}"

    @staticmethod
    def shared(shared_id: str) -> str:
        return f"{PREFIX}shared:{shared_id}"

    @staticmethod
    def conversation_handoffs(conversation_id: str) -> str:
        return f"{PREFIX}conversation:{conversation_id}:handoffs"

    @staticmethod
    def once(scope: str, key: str) -> str:
        return f"{PREFIX}once:{scope}:{key}"

    @staticmethod
    def sms_thread(sender: str, recipient: str) -> str:
        return f"{PREFIX}sms:{sender}:{recipient}"


CONVERSATION_PARTS = ("transcript", "log", "metrics", "annotations")

# Create an item once, in one round trip: take the next sequence number and index the item
# under it atomically (a reader paging by sequence can never pass a number whose item is
# not indexed yet), append its first events, and record transfer deadlines.
# KEYS: sequence, main index, item, event stream, deadlines, then extra indexes.
# ARGV: member, json, ttl, event minid, n events, n deadlines, events (state, at) x n,
#       deadlines (member, score) x n.
# Returns 1 when created, or the stored JSON when the item already existed (a retried
# webhook), writing nothing.
_CREATE = """
local existing = redis.call('GET', KEYS[3])
if existing then
  return existing
end
redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[3])
local seq = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
for i = 6, #KEYS do
  redis.call('ZADD', KEYS[i], seq, ARGV[1])
  redis.call('EXPIRE', KEYS[i], ARGV[3])
end
local events, deadlines = tonumber(ARGV[5]), tonumber(ARGV[6])
local at = 7
for _ = 1, events do
  redis.call('XADD', KEYS[4], 'MINID', '~', ARGV[4], '*',
             'handoff_id', ARGV[1], 'state', ARGV[at], 'at', ARGV[at + 1])
  at = at + 2
end
for _ = 1, deadlines do
  redis.call('ZADD', KEYS[5], ARGV[at + 1], ARGV[at])
  at = at + 2
end
return 1
"""


class Conflict(Exception):
    """A write that lost to a concurrent one it must not overwrite."""


class Store:
    def __init__(self, client: redis.Redis, retention_seconds: int = 30 * 86400):
        self.redis = client
        self.retention = retention_seconds
        self._create = client.register_script(_CREATE)

    def ping(self) -> bool:
        return bool(self.redis.ping())

    # -- generic ------------------------------------------------------------------------
    def _get_json(self, key: str) -> dict | None:
        raw = self.redis.get(key)
        return json.loads(raw) if raw else None

    def _update_json(self, key: str, mutate: Callable[[dict], Any], *, ttl: int | None = None,
                     after: Callable[[Any, Any], None] | None = None) -> tuple[dict | None, Any]:
        """Read-modify-write under WATCH; `mutate` returns a result, `after(pipe, result)`
        queues extra writes into the same transaction. Retries when another writer won."""
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    if raw is None:
                        pipe.reset()
                        return None, None
                    doc = json.loads(raw)
                    result = mutate(doc)
                    pipe.multi()
                    pipe.set(key, json.dumps(doc), ex=ttl or self.retention)
                    if after:
                        after(pipe, result)
                    pipe.execute()
                    return doc, result
                except redis.WatchError:
                    continue

    def answer_once(self, scope: str, key: str, compute: Callable[[], str], ttl: int = 3600,
                    wait: float = 3.0) -> str:
        """The answer to a webhook step, computed once: a retried delivery (Twilio retries
        with the same idempotency token) gets the stored answer instead of a second run."""
        full = Keys.once(scope, key)
        if self.redis.set(full, "", nx=True, ex=ttl):
            try:
                body = compute()
            except BaseException:
                self.redis.delete(full)  # let a retry compute it again
                raise
            self.redis.set(full, body, ex=ttl)
            return body
        deadline = time.monotonic() + wait
        while True:
            stored = self.redis.get(full)
            if stored:
                return stored
            if stored is None or time.monotonic() > deadline:
                # The first delivery died or is stuck: answering beats leaving the caller waiting.
                return compute()
            time.sleep(0.05)

    # Configuration (destinations, topics, integration) is written only through
    # `config_store.ConfigStore`, which versions every change.

    # -- conversations -----------------------------------------------------------------
    def _create_item(self, index: str, key: str, member: str, doc: dict, extra_indexes=(),
                     events=(), deadlines=()) -> dict | None:
        """None when created; the existing document when `key` already existed."""
        args = [member, json.dumps(doc), self.retention, self._event_minid(), len(events), len(deadlines)]
        for entry in events:
            args += [entry["state"], entry["at"]]
        for deadline_member, score in deadlines:
            args += [deadline_member, score]
        result = self._create(keys=[Keys.sequence, index, key, Keys.events, Keys.transfer_deadlines,
                                    *extra_indexes], args=args)
        return None if result == 1 else json.loads(result)

    def create_conversation(self, doc: dict) -> dict | None:
        """Create once. Returns None when created, else the conversation already stored
        (nothing is overwritten: a retried webhook finds the first one)."""
        return self._create_item(Keys.conversations, Keys.conversation(doc["id"]), doc["id"], doc)

    def get_conversation(self, conversation_id: str) -> dict | None:
        return self._get_json(Keys.conversation(conversation_id))

    def update_conversation(self, conversation_id: str, mutate: Callable[[dict], Any]) -> dict | None:
        doc, _ = self._update_json(Keys.conversation(conversation_id), mutate)
        return doc

    def append_conversation(self, conversation_id: str, part: str, entry: dict) -> None:
        key = Keys.conversation_part(conversation_id, part)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, json.dumps(entry))
            pipe.expire(key, self.retention)
            pipe.expire(Keys.conversation(conversation_id), self.retention)
            pipe.execute()

    def conversation_parts(self, conversation_id: str) -> dict[str, list[dict]]:
        with self.redis.pipeline(transaction=False) as pipe:
            for part in CONVERSATION_PARTS:
                pipe.lrange(Keys.conversation_part(conversation_id, part), 0, -1)
            lists = pipe.execute()
        return {part: [json.loads(x) for x in items] for part, items in zip(CONVERSATION_PARTS, lists)}

    def conversation_part(self, conversation_id: str, part: str, last: int | None = None) -> list[dict]:
        start = -last if last else 0
        return [json.loads(x) for x in self.redis.lrange(Keys.conversation_part(conversation_id, part), start, -1)]

    # -- handoffs ----------------------------------------------------------------------
    def create_handoff(self, handoff: Handoff, deadlines: list[tuple[str, float]] = ()) -> None:
        """Store a new handoff with its first events (and transfer deadlines) atomically."""
        extra = [Keys.conversation_handoffs(handoff.conversation_id)]
        if handoff.shared_id:
            extra.append(Keys.shared(handoff.shared_id))
        self._create_item(Keys.handoffs, Keys.handoff(handoff.id), handoff.id, handoff.to_dict(),
                          extra, handoff.history, deadlines)

    def get_handoff(self, handoff_id: str) -> Handoff | None:
        doc = self._get_json(Keys.handoff(handoff_id))
        return Handoff.from_dict(doc) if doc else None

    def newest_handoff_for_shared_id(self, shared_id: str) -> Handoff | None:
        for handoff_id in self.redis.zrevrange(Keys.shared(shared_id), 0, 10):
            found = self.get_handoff(handoff_id)
            if found:
                return found
        return None

    def newest_handoff_for_conversation(self, conversation_id: str) -> Handoff | None:
        for handoff_id in self.redis.zrevrange(Keys.conversation_handoffs(conversation_id), 0, 10):
            found = self.get_handoff(handoff_id)
            if found:
                return found
        return None

    def update_handoff(self, handoff_id: str, mutate: Callable[[Handoff], Any],
                       deadlines: Callable[[Handoff, list[dict]], list[tuple[str, float]]] | None = None,
                       ) -> tuple[Handoff | None, Any, list[str]]:
        """Apply `mutate` atomically; new history entries become events (and, through
        `deadlines`, transfer deadlines) in the same transaction.
        Returns (handoff, mutate's result, the new entries' states)."""
        box: dict[str, Any] = {}

        def apply(doc: dict) -> Any:
            handoff = Handoff.from_dict(doc)
            before = len(handoff.history)
            result = mutate(handoff)
            doc.clear()
            doc.update(handoff.to_dict())
            box["handoff"] = handoff
            box["new"] = handoff.history[before:]
            return result

        def queue_events(pipe, _result) -> None:
            for entry in box["new"]:
                self._queue_event(pipe, handoff_id, entry)
            for member, score in (deadlines(box["handoff"], box["new"]) if deadlines else []):
                pipe.zadd(Keys.transfer_deadlines, {member: score})

        doc, result = self._update_json(Keys.handoff(handoff_id), apply, after=queue_events)
        if doc is None:
            return None, None, []
        return box["handoff"], result, [entry["state"] for entry in box["new"]]

    def _event_minid(self) -> str:
        """Events older than the retention window are trimmed as new ones arrive."""
        return f"{int((time.time() - self.retention) * 1000)}-0"

    def _queue_event(self, pipe, handoff_id: str, entry: dict) -> None:
        pipe.xadd(Keys.events, {"handoff_id": handoff_id, "state": entry["state"], "at": entry["at"]},
                  minid=self._event_minid(), approximate=True)

    def due_transfers(self, now: float, limit: int = 500) -> list[str]:
        return self.redis.zrangebyscore(Keys.transfer_deadlines, "-inf", now, start=0, num=limit)

    def forget_deadlines(self, members: list[str]) -> None:
        if members:
            self.redis.zrem(Keys.transfer_deadlines, *members)

    def scan_index(self, index: str, after_seq: int, batch: int) -> list[tuple[str, int]]:
        rows = self.redis.zrangebyscore(index, f"({after_seq}", "+inf", start=0, num=batch, withscores=True)
        return [(member, int(score)) for member, score in rows]

    def get_handoffs(self, ids: Iterable[str]) -> list[Handoff | None]:
        ids = list(ids)
        if not ids:
            return []
        raws = self.redis.mget([Keys.handoff(i) for i in ids])
        return [Handoff.from_dict(json.loads(r)) if r else None for r in raws]

    def get_conversations(self, ids: Iterable[str]) -> list[dict | None]:
        ids = list(ids)
        if not ids:
            return []
        raws = self.redis.mget([Keys.conversation(i) for i in ids])
        return [json.loads(r) if r else None for r in raws]

    def forget_from_index(self, index: str, members: list[str]) -> None:
        if members:
            self.redis.zrem(index, *members)

    # -- events ------------------------------------------------------------------------
    def read_events(self, after: str | None, limit: int) -> list[tuple[str, dict]]:
        start = f"({after}" if after else "-"
        return self.redis.xrange(Keys.events, min=start, max="+", count=limit)

    def wait_for_events(self, client: redis.Redis, after: str, limit: int, block_ms: int) -> list[tuple[str, dict]]:
        result = client.xread({Keys.events: after}, count=limit, block=block_ms)
        return result[0][1] if result else []
