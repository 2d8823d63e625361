"""Background work run by the Procfile `worker` (rq). Jobs take ids and are idempotent."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging

import requests
from rq import get_current_job
from twilio.base.exceptions import TwilioRestException

from twiml import voice as voice_twiml

from . import logs, metrics
from .config import Config
from .errors import ValidationFailed
from .handoffs import Handoffs
from .models import FAILED, REQUESTED, Handoff
from .services import Services
from .test_calls import TestCalls, test_target
from .twilio_rest import twilio_client, worth_retrying

log = logging.getLogger(__name__)

_services: Services | None = None


def use(services: Services) -> None:
    """Run jobs in this process against these services (the worker, or a test)."""
    global _services
    _services = services


def services() -> Services:
    global _services
    if _services is None:
        _services = Services(Config.from_env())
    return _services


def job_handoff(svc: Services, handoff_id: str) -> Handoff | None:
    """The handoff a job works on (None once retention removed it). The read every such job
    makes anyway binds its conversation and call ids to the job's log lines from here on
    (the worker binds only the handoff id: handoff/worker.py)."""
    handoff = svc.store.get_handoff(handoff_id)
    if handoff is not None:
        logs.bind_handoff(handoff)
    return handoff


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


TWIML_LIMIT = 4000  # characters of TwiML a REST call update may carry (error 32018)


class DeliveryFailed(Exception):
    """The receiver did not take the event; rq retries the job."""


def _is_last_try() -> bool:
    job = get_current_job()
    return job is None or not job.retries_left


def _no_more_tries() -> None:
    """The job is failing for a reason another try will not mend (a 4xx, a redirect): rq
    marks it failed instead of retrying it (the worker reads this job's retries_left)."""
    job = get_current_job()
    if job is not None:
        job.retries_left = 0


def retry_or_give_up(exc: TwilioRestException) -> None:
    """Twilio's 5xx, a 429 and no answer at all are worth another try (twilio_rest.worth_retrying):
    re-raised, rq retries the job while it has tries left; any other 4xx will not change,
    and neither does the last try's error: the job handles it (records why it gave up)."""
    if worth_retrying(exc) and not _is_last_try():
        raise exc


def deliver_event(handoff_id: str, index: int) -> str:
    """POST one handoff state change to HANDOFF_WEBHOOK_URL, signed, with an idempotency key
    (the receiver may see a retry of a delivery it already took)."""
    svc = services()
    config = svc.config
    handoff = job_handoff(svc, handoff_id)
    if handoff is None or index >= len(handoff.history):
        return "skipped"  # retention removed it: nothing is left to tell
    if not config.webhook_url:
        # The web process queued this because it has HANDOFF_WEBHOOK_URL; this worker does
        # not (set on one dyno only?): the receiver will never hear of the event, so say so.
        log.warning("event %s:%s not delivered: this worker has no HANDOFF_WEBHOOK_URL "
                    "(set it on the worker as on the web process)", handoff_id, index)
        Handoffs(svc).update(handoff_id, lambda h: h.add_warning(
            "webhook_not_configured",
            "events were not delivered: the worker has no HANDOFF_WEBHOOK_URL"))
        return "skipped"
    entry = handoff.history[index]
    event_id = f"{handoff_id}:{index}"
    body = json.dumps({"id": event_id, "type": "handoff.state_changed", "state": entry["state"],
                       "at": entry["at"], "handoff": handoff.public()}, sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": event_id,
               "User-Agent": "handoff-webhook/1"}
    if config.webhook_secret:
        headers["X-Handoff-Signature"] = sign(body, config.webhook_secret)
    try:
        # A redirect is not followed: requests would turn a 302 into a GET without the event
        # (counted as delivered) and re-send a 307 signed to any address the answer names.
        response = requests.post(config.webhook_url, data=body, headers=headers, timeout=5,
                                 allow_redirects=False)
        status = response.status_code
    except requests.RequestException as exc:
        status, problem = None, f"{type(exc).__name__}"
    else:
        problem = f"HTTP {status}"
        if response.is_redirect:
            problem += " (a redirect, not followed: set HANDOFF_WEBHOOK_URL to the address it names)"
    if status is not None and 200 <= status < 300:
        metrics.webhook_delivery("delivered")
        return "delivered"
    retryable = status is None or status >= 500 or status == 429
    if retryable and not _is_last_try():
        metrics.webhook_delivery("retried")
        raise DeliveryFailed(f"{event_id}: {problem}")
    metrics.webhook_delivery("given_up")
    Handoffs(svc).update(handoff_id, lambda h: h.add_warning(
        "webhook_failed", f"event {index} ({entry['state']}) not delivered: {problem}"))
    _no_more_tries()
    raise DeliveryFailed(f"{event_id}: gave up: {problem}")


def redirect_call(handoff_id: str) -> str:
    """Move a live call into a handoff made through the API: update the call with the
    handoff's TwiML over Twilio's REST API (calls(sid).update(twiml=...))."""
    svc = services()
    handoffs = Handoffs(svc)
    handoff = job_handoff(svc, handoff_id)
    if handoff is None or handoff.state != REQUESTED:
        return "nothing to do"
    conversation = handoffs.conversation_of(handoff)
    configuration = svc.configuration(conversation.env)
    # Plan on a copy first: the call is updated before the handoff is, so a Twilio error
    # never leaves a record claiming a transfer that did not happen.
    destination = configuration.find((handoff.destination or {}).get("id")) or configuration.default
    planner, context = handoffs.planner(configuration), handoffs.context(conversation)

    def plan(utterance: str | None):
        copy = handoff.copy()
        copy.utterance = utterance
        return copy, planner.attempt(copy, destination, context)

    planned, twiml = plan(handoff.utterance)
    if len(str(twiml)) > TWIML_LIMIT and handoff.utterance:
        # TwiML sent over the REST API is capped at 4000 characters (Twilio error 32018):
        # the spoken utterance gives way so that the transfer itself fits.
        planned, twiml = plan(None)
        planned.add_warning("utterance_dropped", "left out: the TwiML was over Twilio's 4000-character limit")
    # The mark goes before the REST call: should recording the transfer fail after Twilio
    # took it (Redis gone for a moment), rq's retry of this job must not move the caller
    # again, out of the ringing or answered transfer and into a second one.
    if not svc.store.first_try("redirect", handoff_id, ttl=svc.config.retention_seconds):
        log.warning("handoff %s: an earlier try already redirected the call; recording it", handoff_id)
        handoffs.update(handoff_id, commit_plan(planned))
        return "redirected"
    try:
        twilio_client(svc.config).calls(handoff.call_sid).update(twiml=str(twiml))
    except TwilioRestException as exc:
        svc.store.forget_try("redirect", handoff_id)  # refused: the call did not move
        retry_or_give_up(exc)
        detail = {"reason": "call_update_failed", "twilio_status": exc.status, "twilio_code": exc.code}
        message = f"Twilio refused to redirect the call: {exc.msg}"

        def fail(h):
            if h.state == REQUESTED:
                h.add_warning("call_update_failed", message)
                h.move_to(FAILED, detail)

        handoffs.update(handoff_id, fail)
        return "failed"
    except Exception:
        svc.store.forget_try("redirect", handoff_id)  # no answer from Twilio: a retry sends it
        raise
    handoffs.update(handoff_id, commit_plan(planned))
    return "redirected"


def commit_plan(planned: Handoff):
    """The update that records a redirect's plan on its handoff (still `requested`)."""

    def commit(h):
        if h.state == REQUESTED:
            h.attempts, h.destination, h.sip_headers = planned.attempts, planned.destination, planned.sip_headers
            h.warnings = planned.warnings
            h.history = h.history + planned.history[len(h.history):]
            h.state, h.updated_at = planned.state, planned.updated_at

    return commit


def end_call_leg(call_sid: str) -> str:
    """End a call or one leg of it over REST (`completed` ends it ringing or answered):
    a voicemail that answered the human's leg, whose caller's <Dial> then returns and its
    action moves them on; a consult's human; a call an agent function hung up."""
    svc = services()
    try:
        twilio_client(svc.config).calls(call_sid).update(status="completed")
    except TwilioRestException as exc:
        retry_or_give_up(exc)
        log.warning("could not end call leg %s: %s", call_sid, exc.msg)
        return "already over"
    return "ended"


def goodbye_that_fits(text: str) -> str:
    """`<Say>text</Say><Hangup/>` within the 4000 characters a call update may carry (error
    32018): refused, the call would not be hung up at all, so a long text is cut instead."""
    twiml = str(voice_twiml.goodbye(text))
    while len(twiml) > TWIML_LIMIT and text:
        # Cut by at least the overflow; XML escaping only ever makes the text longer.
        text = text[:max(0, len(text) - (len(twiml) - TWIML_LIMIT))]
        twiml = str(voice_twiml.goodbye(text))
    return twiml


def say_and_end_call(call_sid: str, utterance: str) -> str:
    """End a call after the caller hears `utterance` (an agent function's PolyAI return
    `{"utterance", "hangup": true}`): the live call is given TwiML that says it, then hangs up."""
    svc = services()
    try:
        twilio_client(svc.config).calls(call_sid).update(twiml=goodbye_that_fits(utterance))
    except TwilioRestException as exc:
        retry_or_give_up(exc)
        log.warning("could not end call %s with a goodbye: %s", call_sid, exc.msg)
        return "already over"
    return "ended"


SWEEP_JOB_ID = "sweep-transfers"


def sweep_transfers() -> int:
    """The scheduled job that times out silent transfers: each handoff attempt records a
    deadline in the same transaction that starts it; this job fails the overdue ones, then
    schedules its next run (one chain, whatever the number of workers: same job id). Each
    run also looks at the next slice of the listing indexes for expired items."""
    svc = services()
    try:
        return Handoffs(svc).expire_due()
    finally:
        try:
            svc.store.forget_expired_listings()
        finally:
            schedule_sweep(svc)


def schedule_sweep(svc: Services) -> None:
    svc.schedule(svc.config.sweep_interval, sweep_transfers, job_id=SWEEP_JOB_ID)


def act_on_classification(call_sid: str) -> str:
    """What an outbound call's answering-machine result asks for: leave the configured
    message on a voicemail box, hang up on a fax (or when told to); a person stays."""
    svc = services()
    conversation = svc.store.get_conversation(call_sid)
    if conversation is None:
        return "gone"
    classification = conversation.classification
    on_voicemail = (conversation.outbound_options or {}).get("on_voicemail") or {"action": "hangup"}
    call = twilio_client(svc.config).calls(call_sid)
    try:
        if classification == "voicemail" and on_voicemail.get("action") == "message" and on_voicemail.get("message"):
            call.update(twiml=goodbye_that_fits(on_voicemail["message"]))
            return "message left"
        if classification in ("voicemail", "fax"):
            call.update(status="completed")
            return "hung up"
    except TwilioRestException as exc:
        retry_or_give_up(exc)
        log.warning("could not act on %s for call %s: %s", classification, call_sid, exc.msg)
        return "call already over"
    return "nothing to do"


def place_test_call(destination_id: str, test_id: str, message: str, caller: str, status_url: str) -> str:
    """Ring a destination's route with a short spoken message (Calls API), for its test."""
    svc = services()
    tests = TestCalls(svc)
    destination = svc.configuration("sandbox").by_id().get(destination_id)
    if destination is None:
        tests.refused(destination_id, test_id, "the destination was deleted")
        return "gone"
    try:
        _, target = test_target(destination, svc.config.sip_domain)
        call = twilio_client(svc.config).calls.create(
            to=target, from_=caller, twiml=str(voice_twiml.goodbye(message)),
            status_callback=status_url, status_callback_method="POST", timeout=destination.ring_timeout)
    except TwilioRestException as exc:
        retry_or_give_up(exc)
        tests.refused(destination_id, test_id, f"Twilio refused the call: {exc.msg}")
        return "refused"
    except ValidationFailed as exc:  # the route changed since the test was asked for
        tests.refused(destination_id, test_id, exc.message)
        return "refused"
    tests.placed(destination_id, test_id, call.sid)
    return "placed"
