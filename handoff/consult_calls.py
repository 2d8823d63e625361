"""The worker's side of consult transfers: Twilio REST calls (rq jobs; ids in, idempotent).

- `call_human`: create the human's call (Calls resource), briefed by `consult/whisper`.
- `move_caller`: update the caller's call with the TwiML `on_failure` chose.
- `end_human_leg`: hang up the human's call.
- `announce`: `intro: public`, the reason announced to the conference (announceUrl).
"""
from __future__ import annotations

import logging

from twilio.base.exceptions import TwilioRestException

from twiml.sip_uri import sip_uri_with_headers

from .consult import CONSULTING, WAITING, Consults, consult_caller_id
from .jobs import TWIML_LIMIT, end_call_leg, job_handoff, retry_or_give_up, services
from .models import TRANSFERRING, Handoff
from .sip import RouteError
from .transfers import consult_url, human_route, human_target
from .twilio_rest import twilio_client

log = logging.getLogger(__name__)


def call_human(handoff_id: str, attempt: int) -> str:
    """Call the human for a consult attempt whose caller is on hold."""
    svc = services()
    consults = Consults(svc)
    handoff = job_handoff(svc, handoff_id)
    if handoff is None or consults.step(handoff, attempt) != CONSULTING or handoff.state != TRANSFERRING:
        return "nothing to do"
    if handoff.attempt_marks.get(f"{attempt}.call"):
        return "already called"
    record = consults.handoffs.conversation_of(handoff)
    destination = consults.destination_of(handoff, attempt, record)
    if destination is None:
        consults.human_unavailable(handoff_id, attempt, "call_failed", reason="destination_deleted")
        return "failed"
    conversation = consults.handoffs.context(record)
    try:
        kind, target = human_target(human_route(handoff, destination, attempt), destination, svc.config.sip_domain)
    except RouteError as exc:
        consults.human_unavailable(handoff_id, attempt, "call_failed", reason=str(exc))
        return "failed"
    params = {
        "to": sip_uri_with_headers(target, handoff.sip_headers) if kind == "sip" else target,
        "from_": consult_caller_id(destination, handoff, conversation, svc.config.default_caller_id, kind),
        "url": consult_url(handoff, "whisper", attempt), "method": "POST",
        "status_callback": consult_url(handoff, "call", attempt), "status_callback_method": "POST",
        "timeout": destination.ring_timeout,
    }
    if kind == "number" and destination.extension:
        params["send_digits"] = destination.extension
    if destination.detect_voicemail and "send_digits" not in params:
        # Async: the human hears the briefing at once; a machine verdict arrives meanwhile.
        params.update(machine_detection="Enable", async_amd="true",
                      async_amd_status_callback=consult_url(handoff, "amd", attempt),
                      async_amd_status_callback_method="POST")
    elif destination.detect_voicemail:
        # Twilio ignores MachineDetection on a call with SendDigits (Calls resource).
        consults.handoffs.update(handoff_id, lambda h: h.add_warning(
            "voicemail_detection_skipped", "no answering-machine detection on a route with an extension"))
    try:
        call = twilio_client(svc.config).calls.create(**params)
    except TwilioRestException as exc:
        retry_or_give_up(exc)
        consults.human_unavailable(handoff_id, attempt, "call_failed", twilio_status=exc.status,
                                   twilio_code=exc.code)
        return "failed"

    def remember(h: Handoff) -> bool:
        h.attempt_marks[f"{attempt}.call"] = call.sid
        return consults.step(h, attempt) in WAITING

    _, still_waiting = consults.handoffs.update(handoff_id, remember)
    if not still_waiting:
        # The caller hung up while the call was being placed: nobody to brief.
        end_human_leg(handoff_id, attempt)
        return "caller gone"
    return "called"


def move_caller(handoff_id: str, attempt: int) -> str:
    """Send the caller on hold to what `on_failure` chose (REST update of their call)."""
    svc = services()
    handoff = job_handoff(svc, handoff_id)
    twiml = handoff and handoff.attempt_marks.get(f"{attempt}.next")
    if not twiml or handoff.attempt_marks.get(f"{attempt}.moved"):
        return "nothing to do"
    if len(twiml) > TWIML_LIMIT:
        # Inline TwiML is capped at 4000 characters (error 32018): Twilio fetches it from the
        # caller's <Dial> action instead, which answers a decided attempt with this TwiML.
        update = {"url": consult_url(handoff, "status", attempt), "method": "POST"}
    else:
        update = {"twiml": twiml}
    moved = lambda h: h.attempt_marks.__setitem__(f"{attempt}.moved", "rest")  # noqa: E731
    # Marked before the REST call, as jobs.redirect_call does: if Redis fails after Twilio
    # took the update, rq's retry records the move instead of restarting the transfer.
    if not svc.store.first_try("move", f"{handoff_id}:{attempt}", ttl=svc.config.retention_seconds):
        log.warning("handoff %s: an earlier try already moved the caller; recording it", handoff_id)
        Consults(svc).handoffs.update(handoff_id, moved)
        return "moved"
    try:
        twilio_client(svc.config).calls(handoff.call_sid).update(**update)
    except TwilioRestException as exc:
        svc.store.forget_try("move", f"{handoff_id}:{attempt}")  # refused: the caller did not move
        retry_or_give_up(exc)
        log.warning("handoff %s: could not move the caller (%s): %s", handoff_id, exc.status, exc.msg)
        return "caller gone"
    except Exception:
        svc.store.forget_try("move", f"{handoff_id}:{attempt}")  # no answer from Twilio: a retry sends it
        raise
    Consults(svc).handoffs.update(handoff_id, moved)
    return "moved"


def end_human_leg(handoff_id: str, attempt: int) -> str:
    """Hang up the human's call (`completed` ends it ringing or answered, Calls resource)."""
    svc = services()
    handoff = job_handoff(svc, handoff_id)
    call_sid = handoff and handoff.attempt_marks.get(f"{attempt}.call")
    if not call_sid:
        return "nothing to do"  # not placed yet: `call_human` will see the attempt is over
    return end_call_leg(call_sid)


def announce(handoff_id: str, attempt: int) -> str:
    """intro public: play the reason to everyone in the room as the human joins."""
    svc = services()
    handoff = job_handoff(svc, handoff_id)
    conference_sid = handoff and handoff.attempt_marks.get(f"{attempt}.conference")
    if not conference_sid:
        return "nothing to do"
    try:
        twilio_client(svc.config).conferences(conference_sid).update(
            announce_url=consult_url(handoff, "announce", attempt), announce_method="POST")
    except TwilioRestException as exc:
        retry_or_give_up(exc)
        return "conference over"
    return "announced"
