"""Handoffs in Redis: the record (packed by handoff/store/compact.py), handed out as
`Handoff`; the indexes it is listed by (per conversation, per shared id, per reason); and
the transfer deadlines the worker sweeps. Every change is one transaction with what follows
from it: each new history entry becomes an event (handoff/store/events.py) and the day's
counters move (handoff/store/counters.py), so neither can disagree with the handoff.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..models import Handoff
from .base import due_ms, queue_deadline
from .compact import handoff_from_text, handoff_text, pack, unpack
from .counters import counted_facts, counter_changes
from .events import queue_event
from .indexes import IndexStore
from .keys import STATS_TTL, Keys

STREAMS_OF_DEADLINES = (Keys.transfer_deadlines, Keys.pending_deadlines)


class HandoffStore(IndexStore):
    def create_handoff(self, handoff: Handoff, deadlines: list[tuple[str, float]] = (), pipe=None) -> None:
        """Store a new handoff with its first events (and transfer deadlines), its indexes
        and its counters atomically."""
        extra = []
        if handoff.shared_id:
            extra.append(Keys.shared(handoff.shared_id))
        if handoff.reason:
            extra.append(Keys.handoffs_with_reason(handoff.reason))
        doc = handoff.to_dict()
        # Stored without what can be derived (handoff/store/compact.py); counted from the full document.
        self._create_item(Keys.handoffs, Keys.handoff(handoff.id), handoff.id, pack(doc),
                          extra, handoff.history, deadlines, counter_changes(None, doc), pipe,
                          mark_newest_in=Keys.conversation(handoff.conversation_id),
                          encode=handoff_text, decode=handoff_from_text)

    def get_handoff(self, handoff_id: str) -> Handoff | None:
        doc = self._get_json(Keys.handoff(handoff_id), handoff_from_text)
        return Handoff.from_dict(unpack(doc, handoff_id)) if doc else None

    def get_handoffs(self, ids: Iterable[str]) -> list[Handoff | None]:
        ids = list(ids)
        if not ids:
            return []
        raws = self.redis.mget([Keys.handoff(i) for i in ids])
        return [Handoff.from_dict(unpack(handoff_from_text(r), i)) if r else None for i, r in zip(ids, raws)]

    def newest_handoff_for_shared_id(self, shared_id: str) -> Handoff | None:
        return self._newest_handoff_in(Keys.shared(shared_id))

    def newest_handoff_for_conversation(self, conversation_id: str) -> Handoff | None:
        return self._first_stored(self.newest_handoff_candidates([conversation_id])[0])

    def _newest_handoff_in(self, index: str) -> Handoff | None:
        """The newest handoff of an index still stored (an expired one's entry may linger)."""
        return self._first_stored([member for member, _ in self.scan_index_newest(index, 0, 11)])

    def _first_stored(self, handoff_ids: list[str]) -> Handoff | None:
        for handoff_id in handoff_ids:
            found = self.get_handoff(handoff_id)
            if found:
                return found
        return None

    def newest_handoff_ids(self, conversation_ids: list[str]) -> list[str | None]:
        """Each conversation's newest handoff id (None without one), in one round trip."""
        return [ids[0] if ids else None for ids in self.newest_handoff_candidates(conversation_ids)]

    def update_handoff(self, handoff_id: str, mutate: Callable[[Handoff], Any],
                       deadlines: Callable[[Handoff, list[dict]], list[tuple[str, float]]] | None = None,
                       ) -> tuple[Handoff | None, Any, list[str]]:
        """Apply `mutate` atomically; new history entries become events (and, through
        `deadlines`, transfer deadlines) in the same transaction.
        Returns (handoff, mutate's result, the new entries' states)."""
        box: dict[str, Any] = {}

        def apply(doc: dict) -> Any:
            full = unpack(doc, handoff_id)
            # Facts first: the handoff shares the document's lists, so mutate changes them too.
            box["facts_before"] = counted_facts(full)
            handoff = Handoff.from_dict(full)
            before = len(handoff.history)
            result = mutate(handoff)
            box["doc"] = handoff.to_dict()
            doc.clear()
            doc.update(pack(box["doc"]))
            box["handoff"] = handoff
            box["new"] = handoff.history[before:]
            return result

        def queue_events(pipe, _result) -> None:
            for entry in box["new"]:
                queue_event(pipe, handoff_id, entry, self._event_minid())
            changes = {} if box["facts_before"] is None else counter_changes(box["facts_before"], box["doc"])
            for key, fields in changes.items():
                for name, delta in fields.items():
                    pipe.hincrby(key, name, delta)
                pipe.expire(key, STATS_TTL)
            for member, due in (deadlines(box["handoff"], box["new"]) if deadlines else []):
                queue_deadline(pipe, member, due)

        doc, result = self._update_json(Keys.handoff(handoff_id), apply, after=queue_events,
                                        encode=handoff_text, decode=handoff_from_text)
        if doc is None:
            return None, None, []
        return box["handoff"], result, [entry["state"] for entry in box["new"]]

    def due_transfers(self, now: float, limit: int = 500) -> list[tuple[str, str]]:
        """Deadlines due by `now`, oldest first, as (member, entry id) for `forget_deadlines`
        (no entry id: one a sorted set held, written before)."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(Keys.as_sorted_set(Keys.transfer_deadlines), "-inf", now, start=0, num=limit,
                               withscores=True)
            for stream in STREAMS_OF_DEADLINES:
                pipe.xrange(stream, "-", due_ms(now), count=limit)
            older, *newer = pipe.execute()
        due = [(due_ms(score), member, "") for member, score in older]
        for entries in newer:
            due += [(int(entry_id.partition("-")[0]), fields["m"], entry_id) for entry_id, fields in entries]
        # Oldest first across the three, then cut: a backlog in one stream must not hold back
        # another's deadlines that fell due before it. The sort is stable, so what is cut
        # leaves each source's oldest taken (`forget_deadlines` deletes from the front).
        due.sort(key=lambda row: row[0])
        return [(member, entry_id) for _, member, entry_id in due[:limit]]

    def forget_deadlines(self, due: list[tuple[str, str]]) -> None:
        with self.redis.pipeline(transaction=False) as pipe:
            if older := [member for member, entry_id in due if not entry_id]:
                pipe.zrem(Keys.as_sorted_set(Keys.transfer_deadlines), *older)
            for member, entry_id in due:
                if entry_id:
                    pipe.xdel(Keys.deadlines_for(member), entry_id)
            pipe.execute()
