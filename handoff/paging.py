"""Opaque, stable cursors over a sequence-scored index (oldest first).

A cursor is the sequence number of the last item a page looked at; items are indexed
under their sequence number atomically when created, so a later page can neither repeat
nor skip an item, however many arrive between polls."""
from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import TypeVar

from .errors import ValidationFailed

T = TypeVar("T")

# The largest sequence number Redis's INCR hands out. A cursor outside 0..this names no
# entry, and an index stream refuses it as an id (an error, not an empty page).
LARGEST_SEQUENCE = 2**63 - 1


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("s"):
            raise ValueError(text)
        seq = int(text[1:])
        if not 0 <= seq <= LARGEST_SEQUENCE:
            raise ValueError(text)
        return seq
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed.field("cursor", "not a cursor this service issued") from None


def page(
    scan: Callable[[int, int], list[tuple[str, int]]],
    load: Callable[[Sequence[str]], list[T | None]],
    keep: Callable[[T], bool],
    limit: int,
    cursor: str | None,
    forget: Callable[[list[tuple[str, int]]], None] | None = None,
) -> tuple[list[T], str | None, bool]:
    """(items, next_cursor, has_more). `next_cursor` is where the next poll starts; it is
    returned even at the end so a poller can resume there and see only newer items."""
    position = decode_cursor(cursor)
    items: list[T] = []
    batch = max(limit, 50)
    while len(items) < limit:
        rows = scan(position, batch)
        if not rows:
            break
        loaded = load([member for member, _ in rows])
        expired = [row for row, item in zip(rows, loaded) if item is None]
        if expired and forget:
            forget(expired)  # retention expired the item; drop it from the index too
        for (_member, seq), item in zip(rows, loaded):
            position = seq
            if item is not None and keep(item):
                items.append(item)
                if len(items) == limit:
                    break
        if len(rows) < batch:
            break
    has_more = bool(scan(position, 1)) if len(items) == limit else False
    return items, (encode_cursor(position) if position else cursor), has_more
