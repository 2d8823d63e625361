"""Reviewing handoffs: the conversations list with its filters, one conversation as the
review page shows it, and the figures (from the counters in handoff/stats.py).

Listing is newest first with the same opaque cursors as the API (handoff/paging.py). Each
page reads a bounded number of index entries, so a rare filter answers quickly with an
"Older" link rather than scanning everything; a reason filter reads its own index.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from . import stats
from .conversations import Conversations
from .errors import ValidationFailed
from .models import ConversationRecord, Handoff
from .paging import decode_cursor, encode_cursor
from .services import Services
from .store import Keys
from .transfers import number_of

GROUPS = ("reason", "destination", "day")
MAX_DAYS = 366
# Index entries one page may read before it stops and offers "Older".
SCAN_BUDGET = 5000
BATCH = 500


def parse_day(text: str | None, name: str) -> date | None:
    if not text:
        return None
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo:
            parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved across a day
        raise ValidationFailed.field(name, "an ISO 8601 date (YYYY-MM-DD) or date-time") from None
    return parsed.date()


def period(from_text: str | None, to_text: str | None, today: date) -> tuple[date, date]:
    """The days asked for; the last 7 days (today included) by default."""
    last = parse_day(to_text, "to") or today
    try:
        first = parse_day(from_text, "from") or last - timedelta(days=6)
    except OverflowError:
        raise ValidationFailed.field("to", "too early a date") from None
    if first > last:
        raise ValidationFailed.field("from", "must not be after `to`")
    if (last - first).days >= MAX_DAYS:
        raise ValidationFailed.field("from", f"a period is at most {MAX_DAYS} days")
    return first, last


@dataclass
class Filters:
    channel: str | None = None
    state: str | None = None
    reason: str | None = None
    destination: str | None = None
    since: str | None = None  # ISO date, inclusive
    until: str | None = None  # ISO date, inclusive
    search: str | None = None  # a shared id or (part of) the caller's number

    def matches(self, conversation: ConversationRecord, handoff: Handoff | None) -> bool:
        if self.channel and conversation.channel != self.channel:
            return False
        if self.state and (handoff is None or handoff.state != self.state):
            return False
        if self.reason and (handoff is None or handoff.reason != self.reason):
            return False
        if self.destination:
            if handoff is None:
                return False
            tried = set(handoff.attempts) | {(handoff.destination or {}).get("id")}
            if self.destination not in tried:
                return False
        started = str(conversation.started_at or "")[:10]
        if self.since and started < self.since:
            return False
        if self.until and started > self.until:
            return False
        if self.search:
            wanted = self.search.strip()
            digits = self.caller_digits()
            by_number = bool(digits) and digits in (number_of(conversation.from_) or "")
            if conversation.shared_id != wanted and not by_number:
                return False
        return True

    def caller_digits(self) -> str | None:
        """The digits of a search that may be (part of) a caller's number: a number typed
        any way (+1 415-555-0100, (415) 555…) matches the caller's digits."""
        wanted = (self.search or "").strip()
        if not wanted or not all(c.isdigit() or c in "+-() ." for c in wanted):
            return None
        digits = "".join(c for c in wanted if c.isdigit())
        return digits if len(digits) >= 3 else None


@dataclass
class Row:
    conversation: ConversationRecord
    handoff: Handoff | None


@dataclass
class Listing:
    rows: list[Row] = field(default_factory=list)
    older: str | None = None  # cursor of the next (older) page, None at the end


class Review:
    def __init__(self, services: Services):
        self.services = services

    @property
    def store(self):
        return self.services.store

    def today(self) -> date:
        return self.services.clock().astimezone(UTC).date()

    # -- figures ------------------------------------------------------------------------
    def stats(self, from_text: str | None, to_text: str | None, group_by: str | None) -> dict[str, Any]:
        group_by = group_by or "day"
        if group_by not in GROUPS:
            raise ValidationFailed.field("group_by", f"one of {', '.join(GROUPS)}")
        first, last = period(from_text, to_text, self.today())
        days = stats.days_between(first, last)
        read = self.store.read_stats(days, {group_by, "day"})
        per_day = stats.daily(read["day"])
        items = stats.day_rows(days, per_day) if group_by == "day" else stats.rows(read[group_by])
        return {"from": first.isoformat(), "to": last.isoformat(), "group_by": group_by, "items": items,
                "warnings": stats.warnings_seen(sum(per_day, stats.Counter()))}

    def insights(self, days_back: int) -> dict[str, Any]:
        """Everything the insights page shows, from one read of the counters."""
        last = self.today()
        days = stats.days_between(last - timedelta(days=days_back - 1), last)
        read = self.store.read_stats(days, stats.DIMENSIONS)
        per_day = stats.daily(read["day"])
        totals = sum(per_day, stats.Counter())
        return {"from": days[0], "to": days[-1],
                "days": stats.day_rows(days, per_day),
                "totals": stats.item("total", totals),
                "reasons": stats.rows(read["reason"]),
                "destinations": stats.rows(read["destination"]),
                "warnings": stats.warnings_seen(totals)}

    # -- the list -----------------------------------------------------------------------
    def conversations(self, filters: Filters, cursor: str | None, limit: int = 25) -> Listing:
        """Newest first. With a reason (or a shared id that has handoffs), that index is read
        (handoff ids); otherwise all conversations, each with its newest handoff."""
        position = decode_cursor(cursor)
        index, by_handoff = self._index_for(filters)
        if not position and filters.until:
            position = self._start_before(index, filters.until, by_handoff)
        listing, seen_ids, budget = Listing(), set(), SCAN_BUDGET
        batch = limit + 1  # most pages are unfiltered: read what they show, then more as needed
        while budget > 0:
            entries = self.store.scan_index_newest(index, position, min(batch, budget))
            if not entries:
                return listing
            budget -= len(entries)
            batch = min(BATCH, batch * 4)
            members = [member for member, _ in entries]
            pairs = self._load_by_handoff(members) if by_handoff else self._load_by_conversation(members)
            expired = [entry for entry, pair in zip(entries, pairs) if pair is None]
            if expired:
                self.store.forget_from_index(index, expired)  # retention removed them
            for (member, seq), pair in zip(entries, pairs):
                position = seq
                if pair is None:
                    continue
                conversation, handoff = pair
                started = str(conversation.started_at or "")[:10]
                if filters.since and started and started < filters.since:
                    return listing  # newest first: everything after this is older still
                if conversation.id in seen_ids or not filters.matches(conversation, handoff):
                    continue
                seen_ids.add(conversation.id)
                listing.rows.append(Row(conversation, handoff))
                if len(listing.rows) == limit:
                    listing.older = encode_cursor(seq) if self.store.scan_index_newest(index, seq, 1) else None
                    return listing
        listing.older = encode_cursor(position)
        return listing

    def _index_for(self, filters: Filters) -> tuple[str, bool]:
        """The smallest index that holds every match: (key, whether it lists handoffs)."""
        if filters.reason:
            return Keys.handoffs_with_reason(filters.reason), True
        # A shared id's index lists its handoffs only: it holds every match when the filters
        # ask for a handoff anyway, and when the search cannot be a caller's number instead.
        needs_handoff = filters.state or filters.destination
        if (filters.search and needs_handoff and not filters.caller_digits()
                and self.store.index_span(Keys.shared(filters.search.strip()))):
            return Keys.shared(filters.search.strip()), True
        return Keys.conversations, False

    def _load_by_conversation(self, conversation_ids: list[str]) -> list[tuple[ConversationRecord, Handoff | None] | None]:
        conversations = self.store.get_conversations(conversation_ids)
        handoff_ids = self.store.newest_handoff_ids(conversation_ids)
        handoffs = iter(self.store.get_handoffs([h for h in handoff_ids if h]))
        out = []
        for conversation, handoff_id in zip(conversations, handoff_ids):
            handoff = next(handoffs) if handoff_id else None
            out.append((conversation, handoff) if conversation else None)
        return out

    def _load_by_handoff(self, handoff_ids: list[str]) -> list[tuple[ConversationRecord, Handoff] | None]:
        handoffs = self.store.get_handoffs(handoff_ids)
        conversations = iter(self.store.get_conversations([h.conversation_id for h in handoffs if h]))
        out = []
        for handoff in handoffs:
            conversation = next(conversations) if handoff else None
            out.append((conversation, handoff) if handoff and conversation else None)
        return out

    def _start_before(self, index: str, until: str, by_handoff: bool) -> int:
        """The sequence number of the oldest entry started after `until` (0: none; entries
        are created in time order), found by binary search over sequence numbers."""
        span = self.store.index_span(index)
        if span is None:
            return 0
        low, high = span[0], span[1] + 1  # answer: in [low, high]; high means none
        while low < high:
            middle = (low + high) // 2
            entry = self.store.index_entry_from(index, middle)
            if entry is None or entry[1] >= high:
                high = middle  # no entry from the middle up to high
                continue
            member, seq = entry
            if by_handoff:
                found = self.store.get_handoffs([member])[0]
                started = found.created_at if found else ""
            else:
                found = self.store.get_conversations([member])[0]
                started = (found.started_at if found else "") or ""
            if started and started[:10] > until:
                high = middle  # none between the middle and this entry
            else:
                low = seq + 1
        entry = self.store.index_entry_from(index, low)
        return entry[1] if entry else 0

    # -- one conversation ---------------------------------------------------------------
    def conversation(self, conversation_id: str) -> dict[str, Any]:
        """The conversation as the API shows it, plus every handoff's attempts."""
        view = Conversations(self.services).get(conversation_id)
        handoff = view.get("handoff")
        view["attempts"] = attempts_view(handoff) if handoff else []
        return view


def attempts_view(handoff: dict) -> list[dict[str, Any]]:
    """Each attempt with how long it rang (from its start to its outcome)."""
    out = []
    for attempt in stats.attempts_of(handoff):
        started, ended = stats.parse_time(attempt["started"]), stats.parse_time(attempt["ended"])
        rang = round((ended - started).total_seconds(), 1) if started and ended else None
        out.append({**attempt, "rang_seconds": rang})
    return out
