"""The human side: listing handoffs, claims by connectors, data and outcomes pushed back,
and chat/SMS handoffs that wait for a connector.
"""

from __future__ import annotations

import logging

from .conversations import Conversations
from .errors import Conflict
from .handoff_core import HandoffCore
from .models import (
    ABANDONED,
    CLAIMED,
    COMPLETED,
    CONNECTED,
    FINAL_STATES,
    PENDING,
    REQUESTED,
    Handoff,
    now_iso,
)
from .paging import page
from .store import Keys

log = logging.getLogger(__name__)


class HandoffClaims(HandoffCore):
    """What connectors and CRMs do to a handoff once it exists."""

    def list(
        self, *, state=None, channel=None, destination=None, shared_id=None, limit: int = 50, cursor: str | None = None
    ):
        store = self.store

        def keep(h: Handoff) -> bool:
            return (
                (state is None or h.state == state)
                and (channel is None or h.channel == channel)
                and (
                    destination is None
                    or (h.destination or {}).get("id") == destination
                    or (h.destination or {}).get("name", "").casefold() == destination.casefold()
                )
                and (shared_id is None or h.shared_id == shared_id)
            )

        return page(
            lambda after, n: store.scan_index(Keys.handoffs, after, n),
            store.get_handoffs,
            keep,
            limit,
            cursor,
            lambda members: store.forget_from_index(Keys.handoffs, members),
        )

    def claim(self, ref: str, agent: str) -> Handoff:
        handoff_id = self.get(ref).id

        def mutate(h: Handoff) -> bool:
            if h.claimed_by or h.state in FINAL_STATES:
                return False
            h.claimed_by = agent
            if h.state == PENDING or (h.state == REQUESTED and h.channel != "voice"):
                # A voice handoff still `requested` is about to be transferred by the
                # worker: claiming it must not stop that.
                h.move_to(CLAIMED, {"agent": agent})
            else:
                h.updated_at = now_iso()  # a live call keeps its state: claiming is not a change of it
            return True

        handoff, won = self.update(handoff_id, mutate)
        if not won:
            who = handoff.claimed_by
            raise Conflict(
                f"handoff {handoff_id} is already claimed by {who}"
                if who
                else f"handoff {handoff_id} is {handoff.state} and cannot be claimed"
            )
        return handoff

    def merge_data(self, ref: str, data: dict) -> Handoff:
        handoff_id = self.get(ref).id

        def mutate(h: Handoff) -> None:
            h.data = {**h.data, **data}
            h.updated_at = now_iso()

        handoff, _ = self.update(handoff_id, mutate)
        return handoff

    def record_outcome(self, ref: str, outcome: dict) -> Handoff:
        handoff_id = self.get(ref).id
        outcome = {**outcome, "at": now_iso()}

        def mutate(h: Handoff) -> None:
            h.outcome = outcome
            h.updated_at = outcome["at"]
            if h.state in (CLAIMED, CONNECTED):
                h.move_to(COMPLETED, {"resolution": outcome.get("resolution")})

        handoff, _ = self.update(handoff_id, mutate)
        Conversations(self.services).set_outcome(handoff.conversation_id, outcome)
        return handoff

    def expire_pending(self, handoff_id: str) -> bool:
        """A chat/SMS handoff no connector claimed within HANDOFF_PENDING_TIMEOUT: the user
        is taken to have gone (closing the bot session alone does not say so)."""

        def mutate(h: Handoff) -> bool:
            if h.state == PENDING:
                h.move_to(ABANDONED, {"reason": "pending_timeout"})
                return True
            return False

        _, expired = self.update(handoff_id, mutate)
        return bool(expired)

    def abandon(self, ref: str, detail: dict) -> Handoff:
        """A connector says the user left before a human answered."""
        handoff_id = self.get(ref).id

        def mutate(h: Handoff) -> bool:
            if h.state in FINAL_STATES:
                return h.state == ABANDONED
            h.move_to(ABANDONED, detail)
            return True

        handoff, done = self.update(handoff_id, mutate)
        if not done:
            raise Conflict(f"handoff {handoff_id} is {handoff.state} and cannot be abandoned")
        return handoff
