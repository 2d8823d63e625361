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

from . import route_allowlist, sip
from .errors import Conflict, NotFound, ValidationFailed
from .models import (ABANDONED, CLAIMED, COMPLETED, CONNECTED, FAILED, FINAL_STATES, OPEN_STATES, PENDING,
                     REQUESTED, TRANSFERRING, Destination, Handoff, utcnow)
from .paging import page
from .services import Services
from .snapshot import Configuration
from .store import Keys
from .transfers import Planner, call_leg, handoff_url, next_destination, whisper_text

log = logging.getLogger(__name__)

# Refer: Twilio advises treating anything but `in-progress` as a failed transfer
# (TWILIO_NOTES.md §1). Dial: busy, no-answer, failed fail; `canceled` is the caller leaving.
DIAL_FAILURES = {"busy", "no-answer", "failed"}
# <Enqueue> (Flex): Twilio requests the action when the call leaves the queue; after a
# bridge that is when both parties have hung up. leave, queue-full, error and
# system-error mean nobody took the call: the chain moves on.
QUEUE_OUTCOMES = {"bridged": COMPLETED, "bridging-in-process": COMPLETED,
                  "redirected-from-bridged": COMPLETED, "hangup": ABANDONED, "redirected": ABANDONED}
# No deadline for these attempts: a Flex caller may wait in the queue as long as TaskRouter
# keeps them, and a BYE has no outcome callback (the call's end completes it).
UNTIMED_METHODS = ("twilio_flex", "sip_bye")
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


def new_handoff_id() -> str:
    return "HO" + uuid.uuid4().hex



def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def read_callback(params: dict[str, str]) -> AttemptResult:
    """Classify a <Refer>, <Dial> or <Enqueue> action request (TWILIO_NOTES.md §1, §2)."""
    if "QueueResult" in params:
        status = params.get("QueueResult") or "error"
        return AttemptResult(QUEUE_OUTCOMES.get(status, FAILED), status)
    if "ReferCallStatus" in params or "ReferSipResponseCode" in params:
        status = params.get("ReferCallStatus") or "failed"
        code = _int(params.get("NotifySipResponseCode")) or _int(params.get("ReferSipResponseCode"))
        if status == "in-progress":
            return AttemptResult(CONNECTED, status, code)
        if status == "canceled":
            return AttemptResult(ABANDONED, status, code)
        return AttemptResult(FAILED, status, code)
    status = params.get("DialCallStatus") or "failed"
    code = _int(params.get("DialSipResponseCode"))
    if status == "canceled":
        return AttemptResult(ABANDONED, status, code)
    if status in DIAL_FAILURES or (code is not None and code >= 400):
        return AttemptResult(FAILED, status, code)
    if status in ("completed", "answered"):
        return AttemptResult(COMPLETED, status, code)
    return AttemptResult(FAILED, status, code)


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

    def planner(self, configuration: Configuration) -> Planner:
        return Planner(configuration, self.services.config.sip_domain, self.services.clock())

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

    def _resolve(self, handoff: Handoff, configuration: Configuration,
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
        configuration = self.services.configuration()
        handoff = self._new(conversation, request, channel="voice", call_sid=call_sid,
                            base_url=base_url, leg=leg)
        destination = self._resolve(handoff, configuration, request.destination)
        if destination is None and not configuration.destinations:
            handoff.add_warning("no_destinations", "no destination is configured")
        twiml = self.planner(configuration).attempt(handoff, destination, self.context(conversation))
        self._persist_new(handoff)
        return handoff, twiml

    def start_offline(self, configuration: Configuration, request: HandoffRequest, *,
                      call: dict, base_url: str) -> VoiceResponse:
        """Redis is unreachable: TwiML from the last known configuration, nothing stored.
        The action URL carries the chain so the callback can continue it."""
        conversation = {"id": call.get("CallSid") or "unknown", "from": call.get("From"),
                        "to": call.get("To"), "state": {}}
        handoff = self._new(conversation, request, channel="voice", call_sid=call.get("CallSid"),
                            base_url=base_url, leg=call_leg(call))
        destination = self._resolve(handoff, configuration, request.destination)
        twiml = self.planner(configuration).attempt(handoff, destination, conversation)
        log.warning("Redis unreachable: handoff for call %s sent to %s from the configuration "
                    "snapshot (not recorded)", call.get("CallSid"),
                    handoff.destination and handoff.destination["id"])
        return twiml

    def start(self, conversation_id: str, request: HandoffRequest, *, base_url: str | None) -> Handoff:
        """The API / Python trigger. A live voice call is redirected by a background job;
        chat and SMS handoffs wait `pending` for a connector to claim them."""
        from . import jobs  # jobs import this module

        conversation = self.store.get_conversation(conversation_id)
        if conversation is None:
            raise NotFound(f"no conversation with id {conversation_id!r}")
        self.check_route(request)
        configuration = self.services.configuration()
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
            self.services.enqueue(jobs.redirect_call, handoff.id, job_id=f"redirect-{handoff.id}",
                                  retry=jobs.job_retry())
        return handoff

    def _persist_new(self, handoff: Handoff) -> None:
        self.store.create_handoff(handoff, self._deadlines(handoff, handoff.history))
        self._after_change(handoff, 0)

    def _deadlines(self, handoff: Handoff, entries: list[dict]) -> list[tuple[str, float]]:
        """When each new attempt times out if no outcome comes (swept by the worker)."""
        timeout = self.services.config.transfer_timeout
        method = (handoff.destination or {}).get("method")
        if not timeout or method in UNTIMED_METHODS:
            return []
        due = self.services.clock().timestamp() + timeout
        return [(f"{handoff.id}:{entry['detail']['attempt']}", due) for entry in entries
                if entry["state"] == TRANSFERRING and (entry.get("detail") or {}).get("attempt")]

    def _after_change(self, handoff: Handoff, first_new: int) -> None:
        """Side effects of new history entries: one signed webhook each, from the worker."""
        from . import jobs

        if not self.services.config.webhook_url:
            return
        for index in range(first_new, len(handoff.history)):
            self.services.enqueue(jobs.deliver_event, handoff.id, index,
                                  job_id=f"event-{handoff.id}-{index}", retry=jobs.job_retry())

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
        """Fail every transfer whose deadline passed with no outcome; returns how many."""
        due = self.store.due_transfers(self.services.clock().timestamp(), limit)
        expired = 0
        for member in due:
            handoff_id, _, attempt = member.rpartition(":")
            try:
                expired += self.expire(handoff_id, int(attempt))
            except (NotFound, ValueError):
                pass  # retention already removed it, or a malformed member
        self.store.forget_deadlines(due)
        return expired

    # -- callbacks on a live call -----------------------------------------------------
    def _load(self, handoff_id: str) -> tuple[Handoff, Configuration, dict]:
        handoff = self.store.get_handoff(handoff_id)
        if handoff is None:
            raise NotFound(handoff_id)
        conversation = self.store.get_conversation(handoff.conversation_id) or {"id": handoff.conversation_id}
        return handoff, self.services.configuration(), self.context(conversation)

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
                h.move_to(CONNECTED, detail)
                h.move_to(COMPLETED, {"destination": tried})
                return voice_twiml.hangup()
            if outcome == ABANDONED:
                h.move_to(ABANDONED, detail)
                return voice_twiml.hangup()
            return self._after_failure(h, configuration, conversation, detail)

        _, twiml = self.update(handoff_id, mutate)
        return twiml if twiml is not None else voice_twiml.hangup()

    def _after_failure(self, h: Handoff, configuration: Configuration, conversation: dict,
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
            url = handoff_url(h.callback_base or "", h.id, "recording", len(h.attempts))
            return voice_twiml.voicemail(url, VOICEMAIL_PROMPT)
        if disposition == "hangup":
            h.move_to(FAILED, {**detail, "disposition": disposition})
            return voice_twiml.apology()
        if disposition == "return_to_agent":
            h.add_warning("no_agent_url", "on_failure is return_to_agent but AGENT_URL is not a TwiML URL")
        return self.planner(configuration).attempt(h, next_destination(configuration, h.attempts),
                                                   conversation, failed=detail)

    def attempt_finished_offline(self, configuration: Configuration, handoff_id: str,
                                 tried: list[str], params: dict[str, str], base_url: str) -> VoiceResponse:
        """The stateless continuation of a handoff that was never stored."""
        result = read_callback(params)
        if result.outcome != FAILED:
            return voice_twiml.hangup()
        handoff = Handoff(id=handoff_id, conversation_id=params.get("CallSid") or "unknown",
                          attempts=list(tried), callback_base=base_url, call_sid=params.get("CallSid"),
                          leg=call_leg(params))
        handoff.move_to(TRANSFERRING)
        conversation = {"id": handoff.conversation_id, "from": params.get("From"), "to": params.get("To"), "state": {}}
        return self.planner(configuration).attempt(handoff, next_destination(configuration, handoff.attempts),
                                                   conversation)

    def screen(self, handoff_id: str, attempt: int, params: dict[str, str]) -> VoiceResponse:
        """The human's leg answered (<Dial> noun `url`): check for a machine, whisper,
        and ask for acceptance, as the destination says."""
        handoff, configuration, conversation = self._load(handoff_id)
        destination = configuration.by_id().get(handoff.attempts[attempt - 1]) if len(handoff.attempts) >= attempt else None
        answered_by = params.get("AnsweredBy") or ""
        if destination and destination.detect_voicemail and (answered_by.startswith("machine") or answered_by == "fax"):
            self.update(handoff_id, lambda h: h.attempt_marks.__setitem__(str(attempt), "voicemail"))
            return voice_twiml.hangup()
        mode = destination.transfer_mode if destination else "blind"
        if mode == "warm_accept":
            text = whisper_text(handoff, conversation, handoff.sip_headers)
            return voice_twiml.whisper(text, handoff_url(handoff.callback_base or "", handoff.id, "accept", attempt))
        self.leg_answered(handoff_id, attempt)
        if mode == "warm_message":
            return voice_twiml.whisper(whisper_text(handoff, conversation, handoff.sip_headers))
        return voice_twiml.VoiceResponse()  # only a machine check: bridge now

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

        def mutate(h: Handoff) -> bool:
            if len(h.attempts) == attempt and h.state == TRANSFERRING:
                h.move_to(FAILED, {"destination": h.attempts[-1], "attempt": attempt, "reason": "timeout"})
                return True
            return False

        _, expired = self.update(handoff_id, mutate)
        return bool(expired)

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
                h.updated_at = utcnow()  # a live call keeps its state: claiming is not a change of it
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
            h.updated_at = utcnow()

        handoff, _ = self.update(handoff_id, mutate)
        return handoff

    def record_outcome(self, ref: str, outcome: dict) -> Handoff:
        from .conversations import Conversations

        handoff_id = self.get(ref).id
        outcome = {**outcome, "at": utcnow()}

        def mutate(h: Handoff) -> None:
            h.outcome = outcome
            h.updated_at = outcome["at"]
            if h.state in (CLAIMED, CONNECTED):
                h.move_to(COMPLETED, {"resolution": outcome.get("resolution")})

        handoff, _ = self.update(handoff_id, mutate)
        Conversations(self.services).set_outcome(handoff.conversation_id, outcome)
        return handoff

    def abandon_open(self, conversation_id: str, detail: dict) -> None:
        handoff = self.store.newest_handoff_for_conversation(conversation_id)
        if handoff and handoff.state in OPEN_STATES:
            self.update(handoff.id, lambda h: h.move_to(ABANDONED, detail) if h.state in OPEN_STATES else None)
