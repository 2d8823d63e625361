"""Reading the sorted-set indexes conversations and handoffs are listed by (`Keys.handoffs`,
`Keys.conversations`, `Keys.handoffs_with_reason(...)`), each scored by the global sequence
an item took when it was created: cursors over them stay stable while items are added
(handoff/paging.py), and an expired item's entry can be dropped.
"""
from __future__ import annotations

from .base import StoreBase


class IndexStore(StoreBase):
    def scan_index(self, index: str, after_seq: int, batch: int) -> list[tuple[str, int]]:
        rows = self.redis.zrangebyscore(index, f"({after_seq}", "+inf", start=0, num=batch, withscores=True)
        return [(member, int(score)) for member, score in rows]

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

    def forget_from_index(self, index: str, members: list[str]) -> None:
        if members:
            self.redis.zrem(index, *members)
