"""What every part of the store shares: the Redis client, the retention window, and the
three ways an item is written.

An entity is a JSON string (a handoff's is deflated further, handoff/store/compact.py: the
methods take their store's `encode`/`decode`). `_get_json` reads one; `_update_json` changes
one by read-modify-write under WATCH (retrying when another writer won), with extra writes
queued into the same transaction; `_create_item` creates a conversation or a handoff once, in one
round trip (the `_CREATE` script below): its sequence number and indexes, its first events,
transfer deadlines and counters, so a reader paging by sequence never passes an item that is
not indexed yet and the event feed sees every state exactly once.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import cached_property
from typing import Any

import redis

from .compact import NEWEST_HANDOFF_PREFIX, stored_at
from .keys import STATS_TTL, Keys

# A deadline is an entry of a stream (`Keys.deadlines_for`) whose id is the time it falls
# due, in milliseconds: ~47 bytes where a sorted set's member took ~109. A stream takes ids
# in order only, so a deadline due before the newest one there (a shorter timeout was
# configured since, or another process's clock is ahead) is filed at that one's time, late
# by the difference.
# add_deadline(key, due in ms, member)
_ADD_DEADLINE = """
local function add_deadline(key, due, member)
  local newest = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)[1]
  local id = due .. '-0'
  if newest then
    local ms, n = string.match(newest[1], '^(%d+)-(%d+)$')
    if tonumber(ms) >= tonumber(due) then
      id = ms .. '-' .. (tonumber(n) + 1)
    end
  end
  local added = redis.pcall('XADD', key, id, 'm', member)
  if type(added) == 'table' and added.err then
    -- The entries from `due` on were swept already (a writer's clock behind the sweeping
    -- worker's by more than the timeout): a stream keeps the last id it gave after XDEL and
    -- takes none at or below it. Filed just after that id, due at the next sweep.
    local info = redis.call('XINFO', 'STREAM', key)
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then
        local ms, n = string.match(info[i + 1], '^(%d+)-(%d+)$')
        redis.call('XADD', key, ms .. '-' .. (tonumber(n) + 1), 'm', member)
      end
    end
  end
end
"""
_ADD_ONE_DEADLINE = _ADD_DEADLINE + "add_deadline(KEYS[1], ARGV[1], ARGV[2])"

# Entries an extra index keeps as a sorted set before it goes on as a stream: the most
# Redis packs as a listpack (zset-max-listpack-entries).
SMALL_INDEX = 128
# A stream of those is trimmed at one sequence number in this many (see below).
TRIM_EVERY = 64

# Create an item once, in one round trip: take the next sequence number and index the item
# under it atomically (a reader paging by sequence can never pass a number whose item is
# not indexed yet; indexes are streams with entry ids `<seq>-0`, handoff/store/indexes.py),
# append its first events, and record transfer deadlines. A new handoff also becomes its
# conversation's newest: the conversation's JSON starts with `{"_h":"` and
# that handoff's id (`NEWEST_HANDOFF`, handoff/store/compact.py), replaced here or put in
# front ("{newest}" below); the conversation is then kept as long as the handoff.
# An extra index (a reason's, a shared id's) starts as a sorted set and goes on as a stream
# once the set holds SMALL_INDEX entries: a stream's first node takes ~4 KiB however few
# entries it has, where a small sorted set (packed as a listpack) takes ~40 bytes an entry;
# past that size the set would take ~100 an entry and the stream ~46. The set's entries are
# all older than the stream's, as handoff/store/indexes.py reads them. An extra index lists
# a subset of the main one: its stream entries older than the main index's oldest are of
# expired items (the worker forgets those from the main index, `IndexStore.forget_expired`),
# so they are trimmed here as it grows, at one sequence number in TRIM_EVERY (finding the
# main index's oldest entry cost ~4 µs of Valkey's time, a fifth of what the stream saves).
# KEYS for an extra index: its stream, then its sorted set (`Keys.as_sorted_set`).
# KEYS: sequence, main index, item, event stream, transfer deadlines, pending deadlines, then
#       the conversation to mark (0 or 1), then extra indexes (two keys each, above), then
#       counter hashes.
# ARGV: member, json, ttl, event minid, n events, n deadlines, n conversations to mark,
#       events (state, at) x n, deadlines (5 or 6: which of KEYS, due in ms, member) x n,
#       n counter hashes, counters ttl,
#       then one JSON list with a [field, increment, field, increment…] list per counter hash
#       (in the order of KEYS): one argument instead of ~40, which redis-py would encode one
#       by one.
# Returns 1 when created, or the stored JSON when the item already existed (a retried
# webhook), writing nothing.
_CREATE = """{add_deadline}
local existing = redis.call('GET', KEYS[3])
if existing then
  return existing
end
redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[3])
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], seq .. '-0', 'm', ARGV[1])
local events, deadlines, marks = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local counters_at = 8 + 2 * events + 3 * deadlines
local counters = tonumber(ARGV[counters_at] or '0')
if marks > 0 then
  local conversation, field = redis.call('GET', KEYS[7]), '{newest}'
  if conversation then
    if string.sub(conversation, 1, #field) == field then
      local close = string.find(conversation, '"', #field + 1, true)
      conversation = string.sub(conversation, close)
    elseif conversation == '{}' then
      conversation = '"}'
    else
      conversation = '",' .. string.sub(conversation, 2)
    end
    redis.call('SET', KEYS[7], field .. ARGV[1] .. conversation, 'EX', ARGV[3])
  end
end
for i = 7 + marks, #KEYS - counters, 2 do
  local stream, small = KEYS[i], KEYS[i + 1]
  if redis.call('EXISTS', stream) == 1 or redis.call('ZCARD', small) >= {small_index} then
    redis.call('XADD', stream, seq .. '-0', 'm', ARGV[1])
    if seq % {trim_every} == 0 then
      local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
      if oldest then
        redis.call('XTRIM', stream, 'MINID', oldest[1])
      end
    end
    redis.call('EXPIRE', stream, ARGV[3])
  else
    redis.call('ZADD', small, seq, ARGV[1])
    redis.call('EXPIRE', small, ARGV[3])
  end
end
local at = 8
for _ = 1, events do
  redis.call('XADD', KEYS[4], 'MINID', '~', ARGV[4], '*',
             'handoff_id', ARGV[1], 'state', ARGV[at], 'at', ARGV[at + 1])
  at = at + 2
end
for _ = 1, deadlines do
  add_deadline(KEYS[tonumber(ARGV[at])], ARGV[at + 1], ARGV[at + 2])
  at = at + 3
end
if counters > 0 then
  local increments = cjson.decode(ARGV[counters_at + 2])
  for n = 1, counters do
    local key, fields = KEYS[#KEYS - counters + n], increments[n]
    for f = 1, #fields, 2 do
      redis.call('HINCRBY', key, fields[f], fields[f + 1])
    end
    redis.call('EXPIRE', key, ARGV[counters_at + 1])
  end
end
return 1
""".replace("{newest}", NEWEST_HANDOFF_PREFIX).replace("{add_deadline}", _ADD_DEADLINE).replace(
    "{small_index}", str(SMALL_INDEX)).replace("{trim_every}", str(TRIM_EVERY))


def due_ms(due: float) -> int:
    """A deadline's time (seconds since the epoch) as the stream entry id's milliseconds."""
    return int(due * 1000)


def queue_deadline(pipe, member: str, due: float) -> None:
    """Add a deadline (a transfer attempt's or a pending handoff's) inside a transaction (`pipe`)."""
    pipe.eval(_ADD_ONE_DEADLINE, 1, Keys.deadlines_for(member), due_ms(due), member)


def json_text(doc: dict) -> str:
    """How a document is written unless its store packs it further."""
    return json.dumps(doc, separators=(",", ":"))


class StoreBase:
    def __init__(self, client: redis.Redis, retention_seconds: int = 30 * 86400):
        self.redis = client
        self.retention = retention_seconds

    @cached_property
    def _create(self):
        return self.redis.register_script(_CREATE)

    def ping(self) -> bool:
        return bool(self.redis.ping())

    def _get_json(self, key: str, decode: Callable[[str], dict] = json.loads) -> dict | None:
        raw = self.redis.get(key)
        return decode(raw) if raw else None

    def _update_json(self, key: str, mutate: Callable[[dict], Any], *, ttl: int | None = None,
                     after: Callable[[Any, Any], None] | None = None,
                     encode: Callable[[dict], str] = json_text,
                     decode: Callable[[str], dict] = json.loads) -> tuple[dict | None, Any]:
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
                    doc = decode(raw)
                    result = mutate(doc)
                    pipe.multi()
                    pipe.set(key, encode(doc), ex=ttl or self.retention)
                    if after:
                        after(pipe, result)
                    pipe.execute()
                    return doc, result
                except redis.WatchError:
                    continue

    def _create_item(self, index: str, key: str, member: str, doc: dict, extra_indexes=(),
                     events=(), deadlines=(), counters: dict | None = None, pipe=None,
                     mark_newest_in: str | None = None,
                     encode: Callable[[dict], str] = json_text,
                     decode: Callable[[str], dict] = json.loads) -> dict | None:
        """None when created; the existing document when `key` already existed.
        With `pipe`, the write is only queued there (bulk loading) and None is returned.
        `mark_newest_in`: the conversation key whose newest handoff this item becomes."""
        marks = [mark_newest_in] if mark_newest_in else []
        args = [member, encode(doc), self.retention, self._event_minid(), len(events), len(deadlines), len(marks)]
        for entry in events:
            args += [entry["state"], stored_at(entry["at"])]
        for deadline_member, due in deadlines:
            pending = Keys.deadlines_for(deadline_member) == Keys.pending_deadlines
            args += [6 if pending else 5, due_ms(due), deadline_member]
        counter_keys = list(counters or ())
        if counters:
            increments = [[part for item in fields.items() for part in item] for fields in counters.values()]
            args += [len(counter_keys), STATS_TTL, json.dumps(increments, separators=(",", ":"), ensure_ascii=False)]
        keys = [Keys.sequence, index, key, Keys.events, Keys.transfer_deadlines, Keys.pending_deadlines,
                *marks, *(form for extra in extra_indexes for form in (extra, Keys.as_sorted_set(extra))),
                *counter_keys]
        if pipe is not None:
            # EVAL, not a registered script: redis-py checks a pipeline's scripts with SCRIPT
            # EXISTS before sending it, a round trip more; Redis caches the compiled script.
            pipe.eval(_CREATE, len(keys), *keys, *args)
            return None
        result = self._create(keys=keys, args=args)
        return None if result == 1 else decode(result)

    def _event_minid(self) -> str:
        """Events older than the retention window are trimmed as new ones arrive."""
        return f"{int((time.time() - self.retention) * 1000)}-0"
