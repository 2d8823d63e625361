"""Every Redis key the service uses, and the only code that touches them.

One prefix (`handoff:`), keys built in one place (`Keys`). Entities are JSON strings;
append-only parts of a conversation are lists; listings are sorted sets scored by a
global sequence so cursors are stable; every handoff state change is appended to one
stream in the same transaction as the change, so the event feed sees each exactly once.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import redis

from . import compact, stats
from .models import ConversationRecord, Handoff

log = logging.getLogger(__name__)

PREFIX = "handoff:"
# Handoff counters outlive the handoffs they count (a year of figures costs a few KiB a day).
STATS_TTL = 400 * 86400


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
    def handoffs_with_reason(reason: str) -> str:
        """Handoff ids with this reason, scored like the main index: the review page filters by
        reason without scanning every handoff."""
        return f"{PREFIX}handoffs:reason:{reason}"

    @staticmethod
    def stats(day: str, dimension: str) -> str:
        """One day's counters along one dimension (handoff/stats.py)."""
        return f"{PREFIX}stats:{day}:{dimension}"

    @staticmethod
    def once(scope: str, key: str) -> str:
        return f"{PREFIX}once:{scope}:{key}"

    @staticmethod
    def sms_thread(sender: str, recipient: str) -> str:
        return f"{PREFIX}sms:{sender}:{recipient}"

    @staticmethod
    def page_session(session_id: str) -> str:
        """A signed-in page session (handoff/sessions.py): the fingerprint of its key."""
        return f"{PREFIX}studio_session:{session_id}"

    @staticmethod
    def auth_failures(scope: str, client_id: str) -> str:
        """One client's count of wrong keys in the current window (handoff/throttle.py)."""
        return f"{PREFIX}auth_failures:{scope}:{client_id}"


CONVERSATION_PARTS = ("transcript", "log", "metrics", "annotations")

# Create an item once, in one round trip: take the next sequence number and index the item
# under it atomically (a reader paging by sequence can never pass a number whose item is
# not indexed yet), append its first events, and record transfer deadlines.
# KEYS: sequence, main index, item, event stream, deadlines, then extra indexes, then
#       counter hashes.
# ARGV: member, json, ttl, event minid, n events, n deadlines, events (state, at) x n,
#       deadlines (member, score) x n, n counter hashes, counters ttl, then per counter
#       hash (in the order of KEYS): n fields, (field, increment) x n.
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
local events, deadlines = tonumber(ARGV[5]), tonumber(ARGV[6])
local counters_at = 7 + 2 * (events + deadlines)
local counters = tonumber(ARGV[counters_at] or '0')
for i = 6, #KEYS - counters do
  redis.call('ZADD', KEYS[i], seq, ARGV[1])
  redis.call('EXPIRE', KEYS[i], ARGV[3])
end
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
at = counters_at + 2
for i = #KEYS - counters + 1, #KEYS do
  for _ = 1, tonumber(ARGV[at]) do
    redis.call('HINCRBY', KEYS[i], ARGV[at + 1], ARGV[at + 2])
    at = at + 2
  end
  at = at + 1
  redis.call('EXPIRE', KEYS[i], ARGV[counters_at + 1])
end
return 1
"""

# The counters of several days summed into one reply (fields `<group>|<counter>`), so a
# period's figures cross the network once instead of once per day.
# KEYS: the day hashes. Returns field, total, field, total…
_SUM_HASHES = """
local totals, order = {}, {}
for i = 1, #KEYS do
  local fields = redis.call('HGETALL', KEYS[i])
  for j = 1, #fields, 2 do
    local name = fields[j]
    if totals[name] == nil then
      totals[name] = 0
      order[#order + 1] = name
    end
    totals[name] = totals[name] + tonumber(fields[j + 1])
  end
end
local out = {}
for _, name in ipairs(order) do
  out[#out + 1] = name
  out[#out + 1] = totals[name]
end
return out
"""


class Store:
    def __init__(self, client: redis.Redis, retention_seconds: int = 30 * 86400):
        self.redis = client
        self.retention = retention_seconds
        self._create = client.register_script(_CREATE)
        self._sum_hashes = client.register_script(_SUM_HASHES)

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
                    pipe.set(key, json.dumps(doc, separators=(",", ":")), ex=ttl or self.retention)
                    if after:
                        after(pipe, result)
                    pipe.execute()
                    return doc, result
                except redis.WatchError:
                    continue

    def answer_once(self, scope: str, key: str, compute: Callable[..., str], ttl: int = 3600,
                    wait: float = 3.0, read_along: Callable[[Any], None] | None = None) -> str:
        """The answer to a webhook step, computed once: a retried delivery (Twilio retries
        with the same idempotency token) gets the stored answer instead of a second run.

        `read_along(pipe)` queues reads sent in the same round trip as the claim; the
        delivery that computes the answer first gets their results as `compute`'s arguments
        (any other gets none)."""
        full = Keys.once(scope, key)
        if read_along is None:
            claimed, along = self.redis.set(full, "", nx=True, ex=ttl), []
        else:
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.set(full, "", nx=True, ex=ttl)
                read_along(pipe)
                claimed, *along = pipe.execute()
        if claimed:
            try:
                body = compute(*along)
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

    # RoutingTable (destinations, topics, integration) is written only through
    # `config_store.ConfigStore`, which versions every change.

    # -- small records: SMS threads, page sessions, failed keys --------------------------
    def sms_thread(self, sender: str, recipient: str) -> str | None:
        """The id of the conversation texts between these two numbers go to, if any."""
        return self.redis.get(Keys.sms_thread(sender, recipient))

    def remember_sms_thread(self, sender: str, recipient: str, conversation_id: str) -> None:
        self.redis.set(Keys.sms_thread(sender, recipient), conversation_id, ex=self.retention)

    def has_handoffs(self, conversation_id: str) -> bool:
        return self.redis.exists(Keys.conversation_handoffs(conversation_id)) > 0

    def start_page_session(self, session_id: str, key_fingerprint: str, lifetime: int) -> None:
        self.redis.set(Keys.page_session(session_id), key_fingerprint, ex=lifetime)

    def page_session(self, session_id: str) -> str | None:
        return self.redis.get(Keys.page_session(session_id))

    def end_page_session(self, session_id: str) -> None:
        self.redis.delete(Keys.page_session(session_id))

    def count_failure(self, scope: str, client_id: str, window: int) -> tuple[int, int]:
        """One more failure for this client: (failures in the window, seconds the window has
        left). The window starts at the first failure and is not stretched by later ones."""
        key = Keys.auth_failures(scope, client_id)
        with self.redis.pipeline(transaction=True) as pipe:
            count, _, ttl = pipe.incr(key).expire(key, window, nx=True).ttl(key).execute()
        return count, ttl

    # -- conversations -----------------------------------------------------------------
    def _create_item(self, index: str, key: str, member: str, doc: dict, extra_indexes=(),
                     events=(), deadlines=(), counters: dict | None = None, pipe=None) -> dict | None:
        """None when created; the existing document when `key` already existed.
        With `pipe`, the write is only queued there (bulk loading) and None is returned."""
        args = [member, json.dumps(doc, separators=(",", ":")), self.retention, self._event_minid(), len(events), len(deadlines)]
        for entry in events:
            args += [entry["state"], entry["at"]]
        for deadline_member, score in deadlines:
            args += [deadline_member, score]
        counter_keys = list(counters or ())
        if counters:
            args += [len(counter_keys), STATS_TTL]
            for fields in counters.values():
                args.append(len(fields))
                for name, delta in fields.items():
                    args += [name, delta]
        keys = [Keys.sequence, index, key, Keys.events, Keys.transfer_deadlines, *extra_indexes, *counter_keys]
        if pipe is not None:
            self._create(keys=keys, args=args, client=pipe)
            return None
        result = self._create(keys=keys, args=args)
        return None if result == 1 else json.loads(result)

    def create_conversation(self, conversation: ConversationRecord, pipe=None) -> ConversationRecord | None:
        """Create once. Returns None when created, else the conversation already stored
        (nothing is overwritten: a retried webhook finds the first one)."""
        # Stored without its id and empty fields (handoff/compact.py).
        existing = self._create_item(Keys.conversations, Keys.conversation(conversation.id), conversation.id,
                                     compact.pack_conversation(conversation.to_dict()), pipe=pipe)
        return None if existing is None else self._conversation_from(existing, conversation.id)

    @staticmethod
    def _conversation_from(stored: dict, conversation_id: str) -> ConversationRecord:
        return ConversationRecord.from_dict(compact.unpack_conversation(stored, conversation_id))

    def get_conversation(self, conversation_id: str) -> ConversationRecord | None:
        doc = self._get_json(Keys.conversation(conversation_id))
        return self._conversation_from(doc, conversation_id) if doc else None

    def update_conversation(self, conversation_id: str,
                            mutate: Callable[[ConversationRecord], Any]) -> ConversationRecord | None:
        box: dict[str, ConversationRecord] = {}

        def apply(stored: dict) -> Any:
            conversation = self._conversation_from(stored, conversation_id)
            result = mutate(conversation)
            stored.clear()
            stored.update(compact.pack_conversation(conversation.to_dict()))
            box["conversation"] = conversation
            return result

        doc, _ = self._update_json(Keys.conversation(conversation_id), apply)
        return None if doc is None else box["conversation"]

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
    def create_handoff(self, handoff: Handoff, deadlines: list[tuple[str, float]] = (), pipe=None) -> None:
        """Store a new handoff with its first events (and transfer deadlines), its indexes
        and its counters atomically."""
        extra = [Keys.conversation_handoffs(handoff.conversation_id)]
        if handoff.shared_id:
            extra.append(Keys.shared(handoff.shared_id))
        if handoff.reason:
            extra.append(Keys.handoffs_with_reason(handoff.reason))
        doc = handoff.to_dict()
        # Stored without what can be derived (handoff/compact.py); counted from the full document.
        self._create_item(Keys.handoffs, Keys.handoff(handoff.id), handoff.id, compact.pack(doc),
                          extra, handoff.history, deadlines, self._stat_writes(None, doc), pipe)

    def get_handoff(self, handoff_id: str) -> Handoff | None:
        doc = self._get_json(Keys.handoff(handoff_id))
        return Handoff.from_dict(compact.unpack(doc, handoff_id)) if doc else None

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
            full = compact.unpack(doc, handoff_id)
            # Facts first: the handoff shares the document's lists, so mutate changes them too.
            box["facts_before"] = self._facts(full)
            handoff = Handoff.from_dict(full)
            before = len(handoff.history)
            result = mutate(handoff)
            box["doc"] = handoff.to_dict()
            doc.clear()
            doc.update(compact.pack(box["doc"]))
            box["handoff"] = handoff
            box["new"] = handoff.history[before:]
            return result

        def queue_events(pipe, _result) -> None:
            for entry in box["new"]:
                self._queue_event(pipe, handoff_id, entry)
            changes = {} if box["facts_before"] is None else self._stat_writes(box["facts_before"], box["doc"])
            for key, fields in changes.items():
                for name, delta in fields.items():
                    pipe.hincrby(key, name, delta)
                pipe.expire(key, STATS_TTL)
            for member, score in (deadlines(box["handoff"], box["new"]) if deadlines else []):
                pipe.zadd(Keys.transfer_deadlines, {member: score})

        doc, result = self._update_json(Keys.handoff(handoff_id), apply, after=queue_events)
        if doc is None:
            return None, None, []
        return box["handoff"], result, [entry["state"] for entry in box["new"]]

    @staticmethod
    def _stat_writes(before, after: dict) -> dict[str, dict[str, int]]:
        """Counter increments (hash key → field → delta) for a handoff going from `before`
        (a document, its facts, or None when new) to `after`.

        Figures must never stand in the way of a caller: a handoff whose counters cannot be
        worked out is still stored (and logged), uncounted."""
        try:
            return {Keys.stats(day, dimension): fields
                    for (day, dimension), fields in stats.fact_changes(before, after).items()}
        except Exception:  # noqa: BLE001
            log.exception("handoff %s: counters not updated", after.get("id"))
            return {}

    @staticmethod
    def _facts(doc: dict):
        try:
            return stats.handoff_facts(doc)
        except Exception:  # noqa: BLE001
            log.exception("handoff %s: counters not updated", doc.get("id"))
            return None

    def read_stats(self, days: list[str], dimensions: Iterable[str],
                   per_day: Iterable[str] = ("day",)) -> dict[str, list[dict[str, str]]]:
        """Each dimension's counters for these days, in one round trip: a list with one hash
        per day for the `per_day` dimensions, else one hash summed over the days."""
        dimensions, per_day = list(dimensions), set(per_day)
        with self.redis.pipeline(transaction=False) as pipe:
            for dimension in dimensions:
                if dimension in per_day:
                    for day in days:
                        pipe.hgetall(Keys.stats(day, dimension))
                else:
                    self._sum_hashes(keys=[Keys.stats(day, dimension) for day in days], client=pipe)
            found = iter(pipe.execute())
        out = {}
        for dimension in dimensions:
            if dimension in per_day:
                out[dimension] = [next(found) for _ in days]
            else:
                flat = next(found)
                out[dimension] = [dict(zip(flat[0::2], flat[1::2]))]
        return out

    def scan_index_newest(self, index: str, before_seq: int, batch: int) -> list[tuple[str, int]]:
        """Newest first: entries scored below `before_seq` (0: from the newest)."""
        top = f"({before_seq}" if before_seq else "+inf"
        rows = self.redis.zrevrangebyscore(index, top, "-inf", start=0, num=batch, withscores=True)
        return [(member, int(score)) for member, score in rows]

    def index_entry_at(self, index: str, rank: int) -> tuple[str, int] | None:
        """The entry at a rank (0 = oldest), for binary searches over an index."""
        rows = self.redis.zrange(index, rank, rank, withscores=True)
        return (rows[0][0], int(rows[0][1])) if rows else None

    def index_size(self, index: str) -> int:
        return self.redis.zcard(index)

    def newest_handoff_ids(self, conversation_ids: list[str]) -> list[str | None]:
        """Each conversation's newest handoff id (None without one), in one round trip."""
        with self.redis.pipeline(transaction=False) as pipe:
            for conversation_id in conversation_ids:
                pipe.zrevrange(Keys.conversation_handoffs(conversation_id), 0, 0)
            found = pipe.execute()
        return [ids[0] if ids else None for ids in found]

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
        return [Handoff.from_dict(compact.unpack(json.loads(r), i)) if r else None for i, r in zip(ids, raws)]

    def get_conversations(self, ids: Iterable[str]) -> list[ConversationRecord | None]:
        ids = list(ids)
        if not ids:
            return []
        raws = self.redis.mget([Keys.conversation(i) for i in ids])
        return [self._conversation_from(json.loads(r), i) if r else None for i, r in zip(ids, raws)]

    def forget_from_index(self, index: str, members: list[str]) -> None:
        if members:
            self.redis.zrem(index, *members)

    # -- events ------------------------------------------------------------------------
    def read_events(self, after: str | None, limit: int) -> list[tuple[str, dict]]:
        start = f"({after}" if after else "-"
        return self.redis.xrange(Keys.events, min=start, max="+", count=limit)

    def last_event_id(self) -> str | None:
        newest = self.redis.xrevrange(Keys.events, count=1)
        return newest[0][0] if newest else None

    def wait_for_events(self, client: redis.Redis, after: str, limit: int, block_ms: int) -> list[tuple[str, dict]]:
        result = client.xread({Keys.events: after}, count=limit, block=block_ms)
        return result[0][1] if result else []
