"""Handing a conversation to a human: start a handoff, follow its attempts, record outcomes.

One code path for every trigger (voice webhook, HTTP API, Python API): a `HandoffRequest`
is resolved against the destinations, rendered into a `Transfer` for the TwiML builders,
and persisted as a `Handoff` whose history is the event feed.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from twilio.twiml.voice_response import VoiceResponse

from twiml import voice as voice_twiml

from . import callback_urls, logs, metrics, route_allowlist, sip
from .conversations import Conversations
from .errors import Conflict, NotFound, ValidationFailed
from .models import (
    ABANDONED,
    CLAIMED,
    COMPLETED,
    CONNECTED,
    FAILED,
    FINAL_STATES,
    PENDING,
    REQUESTED,
    TRANSFERRING,
    Destination,
    Handoff,
    now_iso,
)
from .paging import page
from .services import Services
from .snapshot import RoutingTable
from .store import Keys
from .transfers import Planner, call_leg, next_destination, whisper_text

log = logging.getLogger(__name__)

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
QUEUE_OUTCOMES = {"bridged": COMPLETED, "bridging-in-process": CONNECTED,
                  "redirected-from-bridged": COMPLETED, "hangup": ABANDONED, "redirected": "redirected"}
# No deadline for these attempts: a Flex caller may wait in the queue as long as TaskRouter
# keeps them, and a BYE has no outcome callback (the call's end completes it).
UNTIMED_METHODS = ("twilio_flex", "sip_bye")
# The deadline member of a pending chat/SMS handoff (an attempt number names a transfer's).
PENDING_DEADLINE = "pending"
VOICEMAIL_PROMPT = "Sorry, nobody could take your call. Please leave a message after the tone."


@dataclass
class HandoffRequest:
    destination: str | None = None
    reason: str | None = None
    utterance: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    sip_headers: dict[str, str] = field(default_factory=dict)
    route: str | None = None  # call-time route override, only within ALLOWED_ROUTE_PATTERNS
    # Problems found while reading the request that did not stop it (bad `data` text…).
    warnings: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class AttemptResult:
    """What an action callback says about one attempt."""

    outcome: str  # connected | completed | failed | abandoned
    result: str  # Twilio's status word
    sip_code: int | None = None


# Sample caller and called addresses of a preview, per caller leg.
PREVIEW_ADDRESSES = {
    "sip": ("sip:+14155550100@sbc.example.com", "sip:+14155550199@example.sip.twilio.com"),
    "pstn": ("+14155550100", "+14155550199"),
    "client": ("client:preview", "+14155550199"),
}


def env_of(conversation: dict | None) -> str:
    """Which routing configuration a conversation runs on: `sandbox` for a call that came
    in on /voice/call?env=sandbox (and everything that call leads to), else `live`."""
    return "sandbox" if (conversation or {}).get("_env") == "sandbox" else "live"


def new_handoff_id() -> str:
    return "HO" + uuid.uuid4().hex



def _int(value: Any) -> int | None:
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
    code = _int(params.get("DialSipResponseCode"))
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
    refer_code = _int(params.get("ReferSipResponseCode"))
    code = _int(params.get("NotifySipResponseCode")) or refer_code
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


def route_problem(route: str) -> str | None:
    """Why a route override cannot be dialled at all, or None."""
    try:
        sip.classify_route(route)
    except sip.RouteError as exc:
        return str(exc)
    return None


class Handoffs:
    def __init__(self, services: Services):
        self.services = services

    @property
    def store(self):
        return self.services.store

    def planner(self, configuration: RoutingTable, offline: bool = False) -> Planner:
        config = self.services.config
        return Planner(configuration, config.sip_domain, self.services.clock(), config.default_caller_id,
                       offline=offline)

    def context(self, conversation: dict) -> dict:
        """The conversation as planning needs it: the last transcript turns are read only
        if a summary needs them (not on every transfer)."""
        store, conversation_id = self.store, conversation["id"]
        return {**conversation,
                "transcript_tail": lambda: store.conversation_part(conversation_id, "transcript", last=3)}

    # -- starting ----------------------------------------------------------------------
    def _new(self, conversation: dict, request: HandoffRequest, *, channel: str,
             call_sid: str | None, base_url: str | None, leg: str | None = None) -> Handoff:
        handoff = Handoff(
            id=new_handoff_id(), conversation_id=conversation["id"], channel=channel,
            shared_id=conversation.get("shared_id"), reason=request.reason,
            utterance=request.utterance, data=dict(request.data or {}),
            header_overrides=dict(request.sip_headers or {}), call_sid=call_sid,
            callback_base=base_url, leg=leg or conversation.get("_leg"),
        )
        for entry in request.warnings:
            handoff.add_warning(entry["code"], entry["message"])
        if request.route:
            problem = route_problem(request.route)
            if problem:
                # Ignored, never dialled: the requested destination is still tried.
                handoff.add_warning("route_unusable", f"the route override cannot be dialled ({problem}); ignored")
            elif route_allowlist.route_allowed(request.route, self.services.config.allowed_route_patterns):
                handoff.route_override = request.route
            else:
                handoff.add_warning("route_refused", "the route override is not in ALLOWED_ROUTE_PATTERNS; ignored")
        handoff.move_to(REQUESTED)
        return handoff

    def _resolve(self, handoff: Handoff, configuration: RoutingTable,
                 ref: str | None) -> Destination | None:
        found = configuration.find(ref)
        if ref and found is None:
            handoff.add_warning("unknown_destination",
                                f"no destination {ref!r}; used the default instead")
        return found or configuration.default

    def check_route(self, request: HandoffRequest) -> None:
        """API callers get a 422 for a route override they may not use (voice gets a warning)."""
        if not request.route:
            return
        problem = route_problem(request.route)
        if problem:
            raise ValidationFailed.field("route", problem)
        if not route_allowlist.route_allowed(request.route, self.services.config.allowed_route_patterns):
            raise ValidationFailed.field(
                "route", "route overrides must match ALLOWED_ROUTE_PATTERNS"
                + ("" if self.services.config.allowed_route_patterns else " (none are allowed: it is unset)"))

    def start_voice(self, conversation: dict, request: HandoffRequest, *, call_sid: str,
                    base_url: str, leg: str | None = None) -> tuple[Handoff, VoiceResponse]:
        """A handoff on a live call whose webhook is waiting for TwiML now."""
        configuration = self.services.configuration(env_of(conversation))
        handoff, twiml = self.plan_voice(configuration, conversation, request, call_sid=call_sid,
                                         base_url=base_url, leg=leg)
        self._persist_new(handoff)
        return handoff, twiml

    def plan_voice(self, configuration: RoutingTable, conversation: dict, request: HandoffRequest, *,
                   call_sid: str, base_url: str, leg: str | None) -> tuple[Handoff, VoiceResponse]:
        """The handoff and TwiML a voice handoff answers, nothing stored: shared by real
        handoffs and previews, so a preview is exactly what a call would get."""
        handoff = self._new(conversation, request, channel="voice", call_sid=call_sid,
                            base_url=base_url, leg=leg)
        destination = self._resolve(handoff, configuration, request.destination)
        if destination is None and not configuration.destinations:
            handoff.add_warning("no_destinations", "no destination is configured")
        twiml = self.planner(configuration).attempt(handoff, destination, self.context(conversation))
        return handoff, twiml

    def preview(self, destination_id: str, leg: str, request: HandoffRequest, *, state: dict,
                caller: str | None, called: str | None, base_url: str) -> tuple[Handoff, VoiceResponse]:
        """What a handoff to this destination (in the sandbox draft) would answer on a
        call from `leg`, with sample state; nothing is created."""
        configuration = self.services.configuration("sandbox")
        if configuration.by_id().get(destination_id) is None:
            raise NotFound(f"no destination with id {destination_id!r}")
        sample_from, sample_to = PREVIEW_ADDRESSES[leg]
        call_sid = "CA" + uuid.uuid4().hex
        conversation = {"id": call_sid, "from": caller or sample_from, "to": called or sample_to,
                        "state": state, "shared_id": None}
        request.destination = destination_id
        return self.plan_voice(configuration, conversation, request, call_sid=call_sid,
                               base_url=base_url, leg=leg)

    def start_offline(self, configuration: RoutingTable, request: HandoffRequest, *,
                      call: dict, base_url: str) -> VoiceResponse:
        """Redis is unreachable: TwiML from the last known configuration, nothing stored.
        The action URL carries the chain so the callback can continue it."""
        conversation = {"id": call.get("CallSid") or "unknown", "from": call.get("From"),
                        "to": call.get("To"), "state": {}}
        handoff = self._new(conversation, request, channel="voice", call_sid=call.get("CallSid"),
                            base_url=base_url, leg=call_leg(call))
        destination = self._resolve(handoff, configuration, request.destination)
        twiml = self.planner(configuration, offline=True).attempt(handoff, destination, conversation)
        log.warning("Redis unreachable: handoff for call %s sent to %s from the configuration "
                    "snapshot (not recorded)", call.get("CallSid"),
                    handoff.destination and handoff.destination["id"])
        return twiml

    def start(self, conversation_id: str, request: HandoffRequest, *, base_url: str | None) -> Handoff:
        """The API / Python trigger. A live voice call is redirected by a background job;
        chat and SMS handoffs wait `pending` for a connector to claim them."""
        conversation = self.store.get_conversation(conversation_id)
        if conversation is None:
            raise NotFound(f"no conversation with id {conversation_id!r}")
        self.check_route(request)
        configuration = self.services.configuration(env_of(conversation))
        channel = conversation.get("channel") or "voice"
        live_call = channel == "voice" and not conversation.get("ended_at")
        if request.destination and configuration.find(request.destination) is None and not configuration.default:
            raise ValidationFailed.field("destination", f"no destination {request.destination!r} and no default")
        handoff = self._new(conversation, request, channel=channel,
                            call_sid=conversation["id"] if channel == "voice" else None,
                            base_url=base_url or self.services.config.public_base_url)
        destination = self._resolve(handoff, configuration, request.destination)
        if destination is not None:
            handoff.destination = destination.summary()
            # The context a connector shows the human, rendered as a transfer would send it.
            handoff.sip_headers = self.planner(configuration).render(handoff, destination, self.context(conversation))
        if channel != "voice":
            handoff.move_to(PENDING)
        elif live_call and not handoff.callback_base:
            handoff.add_warning("no_public_url", "PUBLIC_BASE_URL is not set: the call cannot be redirected")
        self._persist_new(handoff)
        if live_call and handoff.callback_base:
            self.services.enqueue("handoff.jobs.redirect_call", handoff.id, job_id=f"redirect-{handoff.id}",
                                  retry=self.services.job_retry())
        return handoff

    def in_progress_for_call(self, conversation_id: str) -> VoiceResponse | None:
        """The TwiML for a call this service is already handing off (None if it is not).

        An API handoff moves the live call with a REST update, and that update ends the
        agent's <Connect>, whose action then reaches /voice/agent/ended: it must not start
        a second handoff. Still `requested` (the worker has not moved the call yet), the
        first attempt is answered here and the worker's redirect finds nothing to do;
        already under way, the REST update's TwiML runs and this answer is not used."""
        handoff = self.store.newest_handoff_for_conversation(conversation_id)
        if handoff is None or handoff.channel != "voice" or handoff.state not in (REQUESTED, TRANSFERRING, CONNECTED):
            return None
        configuration = self.services.configuration()
        conversation = self.store.get_conversation(conversation_id) or {"id": conversation_id}

        def mutate(h: Handoff) -> VoiceResponse:
            if h.state != REQUESTED:
                return VoiceResponse()
            destination = configuration.find((h.destination or {}).get("id")) or configuration.default
            return self.planner(configuration).attempt(h, destination, self.context(conversation))

        _, twiml = self.update(handoff.id, mutate)
        return twiml

    def _persist_new(self, handoff: Handoff) -> None:
        self.store.create_handoff(handoff, self._deadlines(handoff, handoff.history))
        self._after_change(handoff, 0)

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
        due = now + config.transfer_timeout
        return found + [(f"{handoff.id}:{entry['detail']['attempt']}", due) for entry in entries
                        if entry["state"] == TRANSFERRING and (entry.get("detail") or {}).get("attempt")]

    def _after_change(self, handoff: Handoff, first_new: int) -> None:
        """Side effects of new history entries: one signed webhook each, from the worker."""
        metrics.record_history(handoff, first_new)
        logs.bind_handoff(handoff)
        if not self.services.config.webhook_url:
            return
        for index in range(first_new, len(handoff.history)):
            self.services.enqueue("handoff.jobs.deliver_event", handoff.id, index,
                                  job_id=f"event-{handoff.id}-{index}", retry=self.services.job_retry())

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

    def expire_due(self, limit: int = 500) -> int:
        """Fail every transfer whose deadline passed with no outcome, and abandon every
        chat/SMS handoff nobody claimed in time; returns how many."""
        due = self.store.due_transfers(self.services.clock().timestamp(), limit)
        expired = 0
        for member in due:
            handoff_id, _, attempt = member.rpartition(":")
            try:
                if attempt == PENDING_DEADLINE:
                    expired += self.expire_pending(handoff_id)
                    continue
                expired += self.expire(handoff_id, int(attempt))
            except (NotFound, ValueError):
                pass  # retention already removed it, or a malformed member
        self.store.forget_deadlines(due)
        return expired

    # -- callbacks on a live call -----------------------------------------------------
    def _load(self, handoff_id: str) -> tuple[Handoff, RoutingTable, dict]:
        handoff = self.store.get_handoff(handoff_id)
        if handoff is None:
            raise NotFound(handoff_id)
        conversation = self.store.get_conversation(handoff.conversation_id) or {"id": handoff.conversation_id}
        return handoff, self.services.configuration(env_of(conversation)), self.context(conversation)

    def attempt_finished(self, handoff_id: str, attempt: int, params: dict[str, str]) -> VoiceResponse:
        """A <Refer>/<Dial> action callback: record the outcome, continue the chain."""
        result = read_callback(params)
        _, configuration, conversation = self._load(handoff_id)

        def mutate(h: Handoff) -> VoiceResponse | None:
            if len(h.attempts) != attempt or h.state in FINAL_STATES:
                return None  # already handled: a retried or late callback changes nothing
            tried = h.attempts[-1]
            detail = {"destination": tried, "attempt": attempt, "result": result.result}
            if result.sip_code is not None:
                detail["sip_code"] = result.sip_code
            if params.get("DialCallDuration"):
                detail["duration"] = _int(params.get("DialCallDuration"))
            outcome = result.outcome
            mark = h.attempt_marks.get(str(attempt))
            if mark in ("voicemail", "not_accepted") and outcome != ABANDONED:
                # The screening URL saw a machine, or the human did not press 1.
                outcome, detail["result"] = FAILED, mark
            if outcome == CONNECTED:
                h.move_to(CONNECTED, detail)
                return voice_twiml.hangup()  # the SBC has the caller now
            if outcome == COMPLETED:
                if result.result == "unconfirmed":
                    detail["unconfirmed"] = True  # no NOTIFY: nobody confirmed the human answered
                h.move_to(CONNECTED, detail)
                h.move_to(COMPLETED, {"destination": tried})
                return voice_twiml.hangup()
            if outcome == "redirected":
                # A REST request took the caller out of the queue: the TwiML it gave runs
                # now, so this attempt ends without continuing the chain or a hangup.
                h.move_to(FAILED, detail)
                return voice_twiml.VoiceResponse()
            if outcome == ABANDONED:
                h.move_to(ABANDONED, detail)
                return voice_twiml.hangup()
            return self._after_failure(h, configuration, conversation, detail)

        _, twiml = self.update(handoff_id, mutate)
        return twiml if twiml is not None else voice_twiml.hangup()

    def _after_failure(self, h: Handoff, configuration: RoutingTable, conversation: dict,
                       detail: dict) -> VoiceResponse:
        """Where the caller goes when an attempt failed: the failed destination's `on_failure`."""
        failed = configuration.by_id().get(detail["destination"])
        disposition = failed.on_failure if failed else "next"
        agent_url = self.services.config.agent_url
        if disposition == "return_to_agent" and agent_url and not agent_url.startswith("wss:"):
            h.move_to(FAILED, {**detail, "disposition": disposition})
            query = urlencode({"handoff_id": h.id, "reason": detail["result"]})
            return voice_twiml.redirect(f"{agent_url}{'&' if '?' in agent_url else '?'}{query}")
        if disposition == "voicemail":
            h.move_to(TRANSFERRING, {**detail, "disposition": disposition}, again=True)
            url = callback_urls.handoff_step(h.callback_base or "", h.id, "recording", len(h.attempts))
            return voice_twiml.voicemail(url, VOICEMAIL_PROMPT)
        if disposition == "hangup":
            h.move_to(FAILED, {**detail, "disposition": disposition})
            return voice_twiml.apology()
        if disposition == "return_to_agent":
            h.add_warning("no_agent_url", "on_failure is return_to_agent but AGENT_URL is not a TwiML URL")
        return self.planner(configuration).attempt(h, next_destination(configuration, h.attempts),
                                                   conversation, failed=detail)

    def attempt_finished_offline(self, configuration: RoutingTable, handoff_id: str,
                                 tried: list[str], params: dict[str, str], base_url: str) -> VoiceResponse:
        """The stateless continuation of a handoff that was never stored."""
        result = read_callback(params)
        if result.outcome == "redirected":
            return voice_twiml.VoiceResponse()
        if result.outcome != FAILED:
            return voice_twiml.hangup()
        handoff = Handoff(id=handoff_id, conversation_id=params.get("CallSid") or "unknown",
                          attempts=list(tried), callback_base=base_url, call_sid=params.get("CallSid"),
                          leg=call_leg(params))
        handoff.move_to(TRANSFERRING)
        conversation = {"id": handoff.conversation_id, "from": params.get("From"), "to": params.get("To"), "state": {}}
        return self.planner(configuration, offline=True).attempt(
            handoff, next_destination(configuration, handoff.attempts), conversation)

    def screen(self, handoff_id: str, attempt: int, params: dict[str, str]) -> VoiceResponse:
        """The human's leg answered (<Dial> noun `url`): check for a machine, whisper,
        and ask for acceptance, as the destination says."""
        handoff, configuration, conversation = self._load(handoff_id)
        destination = configuration.by_id().get(handoff.attempts[attempt - 1]) if len(handoff.attempts) >= attempt else None
        if destination and destination.detect_voicemail and is_machine(params.get("AnsweredBy")):
            self.update(handoff_id, lambda h: h.attempt_marks.__setitem__(str(attempt), "voicemail"))
            return voice_twiml.hangup()
        mode = destination.transfer_mode if destination else "blind"
        if mode == "warm_accept":
            text = whisper_text(handoff, conversation, handoff.sip_headers)
            return voice_twiml.whisper(text, callback_urls.handoff_step(handoff.callback_base or "", handoff.id, "accept", attempt))
        self.leg_answered(handoff_id, attempt)
        if mode == "warm_message":
            return voice_twiml.whisper(whisper_text(handoff, conversation, handoff.sip_headers))
        return voice_twiml.VoiceResponse()  # only a machine check: bridge now

    def machine_checked(self, handoff_id: str, attempt: int, params: dict[str, str]) -> None:
        """The amdStatusCallback of the human's leg: a machine or fax there is a failed
        attempt (`voicemail`). The worker ends that leg over REST; the <Dial> action that
        follows then moves the caller on, reading the mark."""
        if not is_machine(params.get("AnsweredBy")):
            return

        def mutate(h: Handoff) -> bool:
            if len(h.attempts) != attempt or h.state not in (TRANSFERRING, CONNECTED):
                return False  # a late result for an attempt already over
            h.attempt_marks[str(attempt)] = "voicemail"
            return True

        _, marked = self.update(handoff_id, mutate)
        leg = params.get("CallSid")
        if marked and leg:
            self.services.enqueue("handoff.jobs.end_call_leg", leg, job_id=f"end-leg-{leg}",
                                  retry=self.services.job_retry())

    def accept(self, handoff_id: str, attempt: int, digits: str | None) -> VoiceResponse:
        """The warm_accept gate: 1 bridges the call, anything else refuses it."""
        if (digits or "").strip() == "1":
            self.leg_answered(handoff_id, attempt, {"accepted": True})
            return voice_twiml.VoiceResponse()
        self.update(handoff_id, lambda h: h.attempt_marks.__setitem__(str(attempt), "not_accepted"))
        return voice_twiml.hangup()

    def leg_answered(self, handoff_id: str, attempt: int, extra: dict | None = None) -> None:
        """The human picked up: the handoff is connected (not waiting for the call's end)."""

        def mutate(h: Handoff) -> None:
            if len(h.attempts) == attempt and h.state == TRANSFERRING:
                h.move_to(CONNECTED, {"destination": h.attempts[-1], "attempt": attempt, **(extra or {})})

        self.update(handoff_id, mutate)

    def voicemail_left(self, handoff_id: str, params: dict[str, str]) -> VoiceResponse:
        recording = {"url": params.get("RecordingUrl"), "duration": _int(params.get("RecordingDuration"))}

        def mutate(h: Handoff) -> None:
            if h.state in FINAL_STATES or not recording["url"]:
                return
            h.data = {**h.data, "voicemail": recording}
            h.move_to(COMPLETED, {"voicemail": recording["url"]})

        self.update(handoff_id, mutate)
        return voice_twiml.goodbye("Thank you. Your message has been recorded. Goodbye.")

    def expire(self, handoff_id: str, attempt: int) -> bool:
        """A transfer still waiting for its outcome after the timeout has failed."""
        from .consult import Consults

        consults = Consults(self.services)
        if consults.owns(handoff_id, attempt):
            return consults.timed_out(handoff_id, attempt)  # the caller on hold is moved on

        def mutate(h: Handoff) -> bool:
            if len(h.attempts) == attempt and h.state == TRANSFERRING:
                h.move_to(FAILED, {"destination": h.attempts[-1], "attempt": attempt, "reason": "timeout"})
                return True
            return False

        _, expired = self.update(handoff_id, mutate)
        return bool(expired)

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

    def call_ended(self, conversation_id: str, call_status: str) -> None:
        """The call is over: an unfinished transfer was abandoned, a connected one completed."""
        handoff = self.store.newest_handoff_for_conversation(conversation_id)
        if handoff is None or handoff.state in FINAL_STATES:
            return

        def mutate(h: Handoff) -> None:
            if h.state == CONNECTED:
                h.move_to(COMPLETED, {"call_status": call_status})
            elif h.state == TRANSFERRING and h.destination and h.destination.get("method") == "sip_bye":
                h.move_to(COMPLETED, {"call_status": call_status})  # the BYE was the handoff
            elif h.state in (REQUESTED, TRANSFERRING):
                h.move_to(ABANDONED, {"call_status": call_status})

        self.update(handoff.id, mutate)

    # -- reading -----------------------------------------------------------------------
    def get(self, ref: str) -> Handoff:
        handoff = self.store.get_handoff(ref) or self.store.newest_handoff_for_shared_id(ref)
        if handoff is None:
            raise NotFound(f"no handoff with id or shared_id {ref!r}")
        return handoff

    def list(self, *, state=None, channel=None, destination=None, shared_id=None,
             limit: int = 50, cursor: str | None = None):
        store = self.store

        def keep(h: Handoff) -> bool:
            return ((state is None or h.state == state)
                    and (channel is None or h.channel == channel)
                    and (destination is None or (h.destination or {}).get("id") == destination
                         or (h.destination or {}).get("name", "").casefold() == destination.casefold())
                    and (shared_id is None or h.shared_id == shared_id))

        return page(lambda after, n: store.scan_index(Keys.handoffs, after, n),
                    store.get_handoffs, keep, limit, cursor,
                    lambda members: store.forget_from_index(Keys.handoffs, members))

    # -- the human side ----------------------------------------------------------------
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
            raise Conflict(f"handoff {handoff_id} is already claimed by {who}" if who
                           else f"handoff {handoff_id} is {handoff.state} and cannot be claimed")
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
