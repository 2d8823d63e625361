"""What every part of a handoff's lifecycle shares: loading, planning, and the one atomic
update whose new history entries become events and webhooks.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from . import logs, metrics
from .errors import NotFound
from .models import (
    PENDING,
    TRANSFERRING,
    ConversationRecord,
    Handoff,
)
from .services import Services
from .snapshot import RoutingTable
from .store import PENDING_DEADLINE, WriteBatch
from .transfers import Planner

log = logging.getLogger(__name__)


# No deadline for these attempts: a Flex caller may wait in the queue as long as TaskRouter
# keeps them, and a BYE has no outcome callback (the call's end completes it).
UNTIMED_METHODS = ("twilio_flex", "sip_bye")
# The longest a <Dial> to a human may take before Twilio reports on it, in seconds: ringing
# (ring_timeout, at most 120: schemas/destinations.py), the machine check on the human's leg
# (Twilio's machineDetectionTimeout, 30 by default: the Number and Sip pages of Twilio's TwiML
# reference), the whisper and the accept gate (~45), and the callback's own way here (30).
DIAL_LONGEST = 120 + 30 + 45 + 30


def _consulting(entry: dict) -> bool:
    """The history entry of a consult whose human is being called (handoff/consult.py's
    CONSULTING step; that module builds on this one, so the name is spelled out here)."""
    return entry["state"] == TRANSFERRING and (entry.get("detail") or {}).get("step") == "consulting"


class HandoffCore:
    """The store, the planner and `update`, for the lifecycle classes built on it."""

    def __init__(self, services: Services):
        self.services = services

    @property
    def store(self):
        return self.services.store

    def planner(self, configuration: RoutingTable, offline: bool = False) -> Planner:
        config = self.services.config
        return Planner(
            configuration, config.sip_domain, self.services.clock(), config.default_caller_id, offline=offline
        )

    def conversation_of(self, handoff: Handoff) -> ConversationRecord:
        """The handoff's conversation; once it has expired, a bare one (no caller details,
        the live configuration) so the handoff can still be planned."""
        return self.store.get_conversation(handoff.conversation_id) or ConversationRecord(id=handoff.conversation_id)

    def context(self, conversation: ConversationRecord) -> dict:
        """The conversation as planning needs it: the last transcript turns are read only
        if a summary needs them (not on every transfer), and then once however many parts
        of the answer use them (a Flex task's summary and a summary header; each attempt of
        a chain)."""
        store, conversation_id = self.store, conversation.id
        return {
            **conversation.public(),
            "transcript_tail": functools.cache(lambda: store.conversation_part(conversation_id, "transcript", last=3)),
        }

    def _persist_new(self, handoff: Handoff, batch: WriteBatch | None = None) -> None:
        """Store a new handoff now, or with `batch` (its side effects wait for the write)."""
        deadlines = self._deadlines(handoff, handoff.history)
        if batch is None:
            self.store.create_handoff(handoff, deadlines)
            self._after_change(handoff, 0)
            return
        self.store.create_handoff(handoff, deadlines, pipe=batch.pipe)
        batch.after_stored.append(lambda: self._after_change(handoff, 0))

    def _deadlines(self, handoff: Handoff, entries: list[dict]) -> list[tuple[str, float]]:
        """When each new attempt times out if no outcome comes, and when a chat/SMS handoff
        left pending is given up on (both swept by the worker)."""
        config = self.services.config
        now = self.services.clock().timestamp()
        found = []
        if config.pending_timeout and any(entry["state"] == PENDING for entry in entries):
            found.append((f"{handoff.id}:{PENDING_DEADLINE}", now + config.pending_timeout))
        method = (handoff.destination or {}).get("method")
        if not config.transfer_timeout or method in UNTIMED_METHODS:
            return found
        timeout = config.transfer_timeout
        if method == "sip_invite" or any(_consulting(entry) for entry in entries):
            # A <Dial> always reports its outcome; the timeout is for outcomes that never come
            # (a REFER's missing NOTIFY). Failing a <Dial> sooner would fail a human who is
            # about to press 1, and hang up the caller when Twilio then reports no answer.
            # So does a consult's call to the human, whatever the destination's method: it is
            # a REST call whose end Twilio always reports (its status callback).
            timeout = max(timeout, DIAL_LONGEST)
        due = now + timeout
        return found + [
            (f"{handoff.id}:{entry['detail']['attempt']}", due)
            for entry in entries
            if entry["state"] == TRANSFERRING and (entry.get("detail") or {}).get("attempt")
        ]

    def _after_change(self, handoff: Handoff, first_new: int) -> None:
        """Side effects of new history entries: one signed webhook each, from the worker."""
        metrics.record_history(handoff, first_new)
        logs.bind_handoff(handoff)
        if not self.services.config.webhook_url:
            return
        for index in range(first_new, len(handoff.history)):
            self.services.enqueue(
                "handoff.jobs.deliver_event",
                handoff.id,
                index,
                job_id=f"event-{handoff.id}-{index}",
                retry=self.services.job_retry(),
            )

    def update(self, handoff_id: str, mutate) -> tuple[Handoff, Any]:
        """Atomically change a handoff; new history entries become events and webhooks."""
        holder: dict[str, int] = {}

        def wrapped(handoff: Handoff):
            holder["before"] = len(handoff.history)
            return mutate(handoff)

        handoff, result, new_states = self.store.update_handoff(handoff_id, wrapped, self._deadlines)
        if handoff is None:
            raise NotFound(f"no handoff with id {handoff_id!r}")
        if new_states:
            self._after_change(handoff, holder["before"])
        return handoff, result

    def load(self, handoff_id: str) -> tuple[Handoff, RoutingTable, dict]:
        """A handoff with the configuration its call runs on (the sandbox draft for a test
        number's call) and its planning context; consults plan failed attempts with it too."""
        handoff = self.store.get_handoff(handoff_id)
        if handoff is None:
            raise NotFound(handoff_id)
        conversation = self.conversation_of(handoff)
        return handoff, self.services.configuration(conversation.env), self.context(conversation)

    def get(self, ref: str) -> Handoff:
        handoff = self.store.get_handoff(ref) or self.store.newest_handoff_for_shared_id(ref)
        if handoff is None:
            raise NotFound(f"no handoff with id or shared_id {ref!r}")
        return handoff
