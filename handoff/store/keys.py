"""Every Redis key name the service uses, built in one place.

One prefix (`handoff:`); `Keys` names the keys of conversations, handoffs, their indexes,
the event stream, counters and the short-lived records, `ConfigKeys` those of the
versioned routing configuration (handoff/store/configuration.py). Changing the storage
layout means changing this file; nothing else spells a key.
"""
from __future__ import annotations

PREFIX = "handoff:"
# The listing indexes (handoff/store/indexes.py) and the transfer deadlines are streams
# under this prefix. They were sorted sets under the same name without it, and a reason's or
# a shared id's index still starts as one (`Keys.as_sorted_set` names it): that set is read
# beside the stream until its last entry is gone.
IN_ORDER = PREFIX + "in_order:"
# Handoff counters outlive the handoffs they count (a year of figures costs a few KiB a day).
STATS_TTL = 400 * 86400
# The deadline member of a pending chat/SMS handoff, after its id (an attempt number names a
# transfer's): the two kinds are kept in their own streams (`Keys.deadlines_for`).
PENDING_DEADLINE = "pending"


class Keys:
    destinations = PREFIX + "destinations"
    default_destination = PREFIX + "destinations:default"
    integration = PREFIX + "integration"
    topics = PREFIX + "topics"
    sequence = PREFIX + "seq"
    conversations = IN_ORDER + "conversations"
    handoffs = IN_ORDER + "handoffs"
    events = PREFIX + "events"
    # Deadlines the worker sweeps, entry id: when one falls due (ms). Transfer attempts'
    # (`<handoff id>:<attempt>`) apart from chat/SMS handoffs' pending ones (`<id>:pending`):
    # each stream's deadlines, all with the same timeout, fall due in the order they come.
    transfer_deadlines = IN_ORDER + "transfer_deadlines"
    pending_deadlines = IN_ORDER + "pending_deadlines"
    # index → the sequence number the worker's pass over it for expired items reached
    index_trim = PREFIX + "index_trim"

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
        """Handoff ids with this shared id, in order (a listing index)."""
        return f"{IN_ORDER}shared:{shared_id}"

    @staticmethod
    def shared_conversation(shared_id: str) -> str:
        """The conversation with this shared id whose agent stored `state.handoff`: what the
        PolyAI-shaped handoff_state reads before any handoff carries the shared id."""
        return f"{PREFIX}shared_conversation:{shared_id}"

    @staticmethod
    def deadlines_for(member: str) -> str:
        return Keys.pending_deadlines if member.endswith(":" + PENDING_DEADLINE) else Keys.transfer_deadlines

    @staticmethod
    def as_sorted_set(index: str) -> str:
        """The sorted set (scored by sequence) of a listing index: where every index was kept
        before streams, and a reason's or shared id's is kept while small."""
        return PREFIX + index.removeprefix(IN_ORDER)

    @staticmethod
    def conversation_handoffs(conversation_id: str) -> str:
        return f"{PREFIX}conversation:{conversation_id}:handoffs"

    @staticmethod
    def handoffs_with_reason(reason: str) -> str:
        """Handoff ids with this reason, scored like the main index: the review page filters by
        reason without scanning every handoff."""
        return f"{IN_ORDER}handoffs:reason:{reason}"

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


class ConfigKeys:
    """The routing configuration's own keys; its draft keeps `Keys.destinations`,
    `Keys.topics`, `Keys.default_destination` and `Keys.integration`."""

    version = PREFIX + "config:version"  # the draft's version (one per change)
    live = PREFIX + "config:live"  # entity → JSON: what callers meet
    live_version = PREFIX + "config:live_version"
    versions = PREFIX + "config:versions"  # version number → record JSON (with its changes)
    # version number → the record without its changes: what a listing shows, small however
    # large a change was.
    summaries = PREFIX + "config:versions:summaries"
    tests = PREFIX + "config:tests"  # destination id → its last test call
