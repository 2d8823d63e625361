"""The handoff event stream in Redis (`Keys.events`): every handoff state change, appended
in the same transaction as the change (`queue_event` here, or the create script in
handoff/store/base.py) and trimmed to the retention window as new events arrive. The event
feed (handoff/event_feed.py) reads it through `read_events`, `last_event_id` and
`wait_for_events`.
"""
from __future__ import annotations

import redis

from .base import StoreBase
from .compact import shown_at, stored_at
from .keys import Keys


def _shown(rows: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    for _, fields in rows:
        if "at" in fields:
            fields["at"] = shown_at(fields["at"])
    return rows


def queue_event(pipe, handoff_id: str, entry: dict, minid: str) -> None:
    """Queue one history entry as an event into `pipe` (a handoff's own transaction)."""
    pipe.xadd(Keys.events, {"handoff_id": handoff_id, "state": entry["state"], "at": stored_at(entry["at"])},
              minid=minid, approximate=True)


class EventStore(StoreBase):
    def read_events(self, after: str | None, limit: int) -> list[tuple[str, dict]]:
        start = f"({after}" if after else "-"
        return _shown(self.redis.xrange(Keys.events, min=start, max="+", count=limit))

    def last_event_id(self) -> str | None:
        newest = self.redis.xrevrange(Keys.events, count=1)
        return newest[0][0] if newest else None

    def wait_for_events(self, client: redis.Redis, after: str, limit: int, block_ms: int) -> list[tuple[str, dict]]:
        result = client.xread({Keys.events: after}, count=limit, block=block_ms)
        return _shown(result[0][1]) if result else []
