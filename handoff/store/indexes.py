"""Reading the indexes conversations and handoffs are listed by (`Keys.handoffs`,
`Keys.conversations`, `Keys.handoffs_with_reason(...)`, `Keys.shared(...)`).

Each is a stream whose entry ids are the sequence numbers items took when created
(`<seq>-0`, one field `m` naming the item; the `_CREATE` script in handoff/store/base.py
appends them): cursors over them stay stable while items are added (handoff/paging.py),
and an expired item's entry can be dropped. A stream entry costs ~47 bytes where a sorted
set's cost ~100, for every conversation and handoff of the retention window.

Indexes written before were sorted sets scored by the same sequence numbers
(`Keys.as_sorted_set`), and a reason's or a shared id's index still starts as one until it
holds `SMALL_INDEX` entries (a stream's first node takes ~4 KiB, handoff/store/base.py).
Every read takes both in one round trip: the set's entries are all older than the stream's
(no older process writes beside this one, README "Upgrading"), so the two read as one
list, and the set empties as its entries' items expire.
"""
from __future__ import annotations

from collections.abc import Callable

from .base import StoreBase
from .keys import Keys

Row = tuple[str, int]  # (member, sequence number)


def _rows(entries: list) -> list[Row]:
    return [(fields["m"], int(entry_id.partition("-")[0])) for entry_id, fields in entries]


def _set_rows(rows: list) -> list[Row]:
    return [(member, int(score)) for member, score in rows]


class IndexStore(StoreBase):
    def scan_index(self, index: str, after_seq: int, batch: int) -> list[Row]:
        """Oldest first: entries after `after_seq`."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(Keys.as_sorted_set(index), f"({after_seq}", "+inf", start=0, num=batch,
                               withscores=True)
            pipe.xrange(index, f"({after_seq}-0", "+", count=batch)
            older, newer = pipe.execute()
        return (_set_rows(older) + _rows(newer))[:batch]

    def scan_index_newest(self, index: str, before_seq: int, batch: int) -> list[Row]:
        """Newest first: entries below `before_seq` (0: from the newest)."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.xrevrange(index, f"({before_seq}-0" if before_seq else "+", "-", count=batch)
            pipe.zrevrangebyscore(Keys.as_sorted_set(index), f"({before_seq}" if before_seq else "+inf",
                                  "-inf", start=0, num=batch, withscores=True)
            newer, older = pipe.execute()
        return (_rows(newer) + _set_rows(older))[:batch]

    def index_entry_from(self, index: str, seq: int) -> Row | None:
        """The oldest entry at or after `seq`, for binary searches over an index."""
        rows = self.scan_index(index, seq - 1, 1)
        return rows[0] if rows else None

    def index_span(self, index: str) -> tuple[int, int] | None:
        """The oldest and the newest entry's sequence numbers (None: empty)."""
        oldest, newest = self.scan_index(index, 0, 1), self.scan_index_newest(index, 0, 1)
        return (oldest[0][1], newest[0][1]) if oldest and newest else None

    def forget_expired_listings(self, batch: int = 200) -> int:
        """Drop the entries of the conversations and handoffs indexes whose item retention
        removed: the next `batch` of each (the reason and shared-id indexes are trimmed
        below the handoffs index's oldest entry as they grow, handoff/store/base.py)."""
        return (self.forget_expired(Keys.conversations, Keys.conversation, batch)
                + self.forget_expired(Keys.handoffs, Keys.handoff, batch))

    def forget_expired(self, index: str, item_key: Callable[[str], str], batch: int = 200) -> int:
        """Forget the entries of the next `batch` of an index whose item retention removed
        (`item_key(member)` no longer exists); returns how many. Each call goes on from where
        the last one stopped (`Keys.index_trim`) and starts over after the newest, so over
        calls every entry is looked at: listings forget only the expired entries they meet,
        and an index nobody pages through from the start would otherwise grow for ever."""
        after = int(self.redis.hget(Keys.index_trim, index) or 0)
        rows = self.scan_index(index, after, batch)
        with self.redis.pipeline(transaction=False) as pipe:
            for member, _ in rows:
                pipe.exists(item_key(member))
            found = pipe.execute()
        gone = [row for row, exists in zip(rows, found) if not exists]
        self.forget_from_index(index, gone)
        self.redis.hset(Keys.index_trim, index, rows[-1][1] if len(rows) == batch else 0)
        return len(gone)

    def forget_from_index(self, index: str, rows: list[Row]) -> None:
        """Drop entries whose item retention removed."""
        if not rows:
            return
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrem(Keys.as_sorted_set(index), *(member for member, _ in rows))
            pipe.xdel(index, *(f"{seq}-0" for _, seq in rows))
            pipe.execute()
