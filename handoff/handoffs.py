"""Handing a conversation to a human: one `Handoffs` over its lifecycle's parts.

Starting (handoff_starts.py), following a live call's attempts (handoff_attempts.py) and
the human side (handoff_claims.py) share handoff_core.py; Twilio's callbacks are read by
the pure functions of callback_reading.py.
"""

from __future__ import annotations

from .callback_reading import AttemptResult, is_machine, read_callback  # noqa: F401
from .consult import Consults
from .handoff_attempts import HandoffAttempts
from .handoff_claims import HandoffClaims
from .handoff_starts import HandoffRequest, HandoffStarts, new_handoff_id  # noqa: F401


class Handoffs(HandoffStarts, HandoffAttempts, HandoffClaims):
    """Every operation on handoffs, for views, jobs and the Python API."""

    def expire(self, handoff_id: str, attempt: int) -> bool:
        """A transfer still waiting for its outcome after the timeout has failed; a consult
        attempt's caller, on hold, is moved on by the consult flow (handoff/consult.py)."""
        consults = Consults(self.services)
        if consults.owns(handoff_id, attempt):
            return consults.timed_out(handoff_id, attempt)
        return super().expire(handoff_id, attempt)
