"""How Twilio's action callbacks are read: pure functions over a callback's parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .models import (
    ABANDONED,
    COMPLETED,
    CONNECTED,
    FAILED,
)

# How Twilio's action callbacks are read (https://www.twilio.com/docs/voice/twiml/dial, .../refer and .../enqueue;
# the README's "What happens after the TwiML" says the same in prose).
# Dial: busy, no-answer and failed fail; `canceled` is a REST cancellation of the dialled
# leg ("canceled via the REST API before it was answered"), so it fails too: the caller is
# still there. The caller leaving shows in the parent's CallStatus instead.
DIAL_FAILURES = {"busy", "no-answer", "failed", "canceled"}

CALLER_GONE = {"completed", "canceled"}

# <Enqueue> (Flex): Twilio requests the action when the call leaves the queue. `bridged` is
# after the bridge ended; `bridging-in-process` is a bridge under way ("Twilio has been
# instructed to bridge the enqueued party"): a human has the caller either way. `hangup`
# is the caller leaving; `redirected` (out of the queue by a REST request) ends the attempt
# without the caller being gone; leave, queue-full, error, system-error mean nobody took it.
QUEUE_OUTCOMES = {
    "bridged": COMPLETED,
    "bridging-in-process": CONNECTED,
    "redirected-from-bridged": COMPLETED,
    "hangup": ABANDONED,
    "redirected": "redirected",
}


@dataclass(frozen=True)
class AttemptResult:
    """What an action callback says about one attempt."""

    outcome: str  # connected | completed | failed | abandoned
    result: str  # Twilio's status word
    sip_code: int | None = None


def int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def read_callback(params: dict[str, str]) -> AttemptResult:
    """Classify a <Refer>, <Dial> or <Enqueue> action request exactly as Twilio sends it
    (https://www.twilio.com/docs/voice/twiml/refer, .../dial, .../enqueue)."""
    caller_gone = params.get("CallStatus") in CALLER_GONE
    if "QueueResult" in params:
        status = params.get("QueueResult") or "error"
        return AttemptResult(QUEUE_OUTCOMES.get(status, FAILED), status)
    if "ReferCallStatus" in params or "ReferSipResponseCode" in params:
        return _read_refer(params, caller_gone)
    status = params.get("DialCallStatus") or "failed"
    code = int_or_none(params.get("DialSipResponseCode"))
    if status in ("completed", "answered") and not (code is not None and code >= 400):
        if (params.get("DialBridged") or "").lower() == "false":
            # The human's leg ended during the screening URL (whisper, accept gate): the
            # caller never reached them (Dial page, DialBridged).
            return AttemptResult(ABANDONED if caller_gone else FAILED, "not_bridged", code)
        return AttemptResult(COMPLETED, status, code)
    if caller_gone:
        return AttemptResult(ABANDONED, status, code)
    return AttemptResult(FAILED, status, code)


def _read_refer(params: dict[str, str], caller_gone: bool) -> AttemptResult:
    """Refer page: ReferCallStatus is omitted when the far end sends no NOTIFY, and the
    action also runs when the subscription ends or the call to Twilio hangs up: read the
    REFER's own answer (ReferSipResponseCode) and the call's status too."""
    status = params.get("ReferCallStatus")
    refer_code = int_or_none(params.get("ReferSipResponseCode"))
    code = int_or_none(params.get("NotifySipResponseCode")) or refer_code
    if status == "in-progress":
        return AttemptResult(CONNECTED, status, code)
    if status:
        return AttemptResult(ABANDONED if status == "canceled" or caller_gone else FAILED, status, code)
    if refer_code is not None and 200 <= refer_code < 300:
        if caller_gone:
            # Accepted, no NOTIFY, and the SBC took the call away from Twilio: transferred.
            return AttemptResult(COMPLETED, "unconfirmed", refer_code)
        # Accepted but the caller is still on Twilio's leg: the transfer did not happen.
        return AttemptResult(FAILED, "no_notify", refer_code)
    return AttemptResult(ABANDONED if caller_gone else FAILED, "refused" if refer_code else "failed", code)


def is_machine(answered_by: str | None) -> bool:
    """AnsweredBy of Twilio's answering machine detection: machine_start, machine_end_beep,
    machine_end_silence, machine_end_other and fax are not a person."""
    answered_by = answered_by or ""
    return answered_by.startswith("machine") or answered_by == "fax"
