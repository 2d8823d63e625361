"""The store: every Redis key the service uses (handoff/store/keys.py), and the only code
that touches them.

Entities are JSON strings; append-only parts of a conversation are lists; listings are
streams keyed by a global sequence so cursors are stable (as are the deadlines the worker
sweeps, keyed by when they fall due); every handoff state change
is appended to one stream in the same transaction as the change, so the event feed sees
each exactly once. `Store` is one object over one Redis client, composed of a part per
aggregate: conversations, handoffs, their events, counters and indexes, and short-lived
records. The routing configuration (destinations, topics, integration) is written only
through `configuration.ConfigStore`, which versions every change.
"""
from __future__ import annotations

from .conversations import CONVERSATION_PARTS, ConversationStore
from .counters import CounterStore
from .events import EventStore
from .handoffs import HandoffStore
from .indexes import IndexStore
from .keys import PENDING_DEADLINE, PREFIX, STATS_TTL, ConfigKeys, Keys
from .short_lived import ShortLivedStore, WriteBatch

__all__ = ["CONVERSATION_PARTS", "PENDING_DEADLINE", "PREFIX", "STATS_TTL", "ConfigKeys", "Keys", "Store", "WriteBatch"]


class Store(ConversationStore, HandoffStore, EventStore, CounterStore, IndexStore, ShortLivedStore):
    """Every store operation over one Redis client (`Store(client, retention_seconds)`)."""
