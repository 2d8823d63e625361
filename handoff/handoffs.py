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

from twilio.twiml.voice_response import VoiceResponse

from twiml import voice as voice_twiml

from . import sip
from .destinations import integration_of
from .errors import Conflict, NotFound, ValidationFailed
from .models import (ABANDONED, CLAIMED, COMPLETED, CONNECTED, FAILED, FINAL_STATES, PENDING,
                     REQUESTED, TRANSFERRING, Destination, Handoff, utcnow)
from .paging import page
from .services import REDIS_ERRORS, Services
from .snapshot import Configuration
from .store import Keys
from .templating import merge_headers, render_headers

log = logging.getLogger(__name__)

# Refer: Twilio advises treating anything but `in-progress` as a failed transfer
# (TWILIO_NOTES.md §1). Dial: busy, no-answer, failed fail; `canceled` is the caller leaving.
DIAL_FAILURES = {"busy", "no-answer", "failed"}


@dataclass
class HandoffRequest:
    destination: str | None = None
    reason: str | None = None
    utterance: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    sip_headers: dict[str, str] = field(default_factory=dict)
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


def status_url(base: str, handoff_id: str, attempt: int, tried: list[str] | None = None) -> str:
    url = f"{base}/voice/handoff/{handoff_id}/status?attempt={attempt}"
    if tried:
        # Carries the chain in the URL too, so a callback for a handoff that could not be
        # stored (Redis down) can still move on to the next fallback.
        url += "&tried=" + ",".join(tried)
    return url


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def read_callback(params: dict[str, str]) -> AttemptResult:
    """Classify a <Refer> or <Dial> action request (TWILIO_NOTES.md §1, §2)."""
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


def next_destination(configuration: Configuration, tried: list[str]) -> Destination | None:
    """The last tried destination's fallback, else the default; none tried twice."""
    by_id = configuration.by_id()
    if tried:
        last = by_id.get(tried[-1])
        if last and last.fallback and last.fallback in by_id and last.fallback not in tried:
            return by_id[last.fallback]
    default = configuration.default
    if default and default.id not in tried:
        return default
    return None


def template_variables(handoff: Handoff, conversation: dict) -> dict[str, Any]:
    return {
        "caller_id": conversation.get("from"),
        "called_number": conversation.get("to"),
        "call_sid": handoff.call_sid,
        "conversation_id": handoff.conversation_id,
        "shared_id": handoff.shared_id or conversation.get("shared_id"),
        "handoff_id": handoff.id,
        "reason": handoff.reason,
    }


class Handoffs:
    def __init__(self, services: Services):
        self.services = services

    @property
    def store(self):
        return self.services.store

    # -- planning one attempt (pure over the objects given) ----------------------------
    def plan_attempt(self, handoff: Handoff, destination: Destination | None,
                     configuration: Configuration, conversation: dict,
                     failed: dict | None = None) -> VoiceResponse:
        """Point the handoff at `destination` (or the next one that can be dialled) and
        return the TwiML for it; with nothing left, mark it failed and apologise."""
        integration = integration_of(configuration)
        while destination is not None:
            handoff.attempts.append(destination.id)
            attempt = len(handoff.attempts)
            try:
                transfer = self._transfer(handoff, destination, integration, conversation, attempt)
            except sip.RouteError as exc:
                handoff.add_warning("route_unresolvable", f"{destination.id}: {exc}")
                failed = {"destination": destination.id, "result": "route_unresolvable"}
                destination = next_destination(configuration, handoff.attempts)
                continue
            handoff.destination = destination.summary()
            handoff.sip_headers = transfer.headers
            detail = {"destination": destination.id, "attempt": attempt}
            if failed:
                detail["after"] = failed
            handoff.move_to(TRANSFERRING, detail, again=True)
            return voice_twiml.transfer_twiml(transfer)
        detail = {"reason": "no_destination_left"}
        if failed:
            detail.update(failed)
        handoff.move_to(FAILED, detail)
        return voice_twiml.apology()

    def _transfer(self, handoff: Handoff, destination: Destination, integration: dict,
                  conversation: dict, attempt: int) -> voice_twiml.Transfer:
        action = status_url(handoff.callback_base or "", handoff.id, attempt, handoff.attempts)
        if destination.method == "sip_bye":
            return voice_twiml.Transfer(method="sip_bye", action_url=action, utterance=handoff.utterance)
        kind, target = sip.dial_target(destination.route or "", method=destination.method,
                                       sip_domain=self.services.config.sip_domain,
                                       encryption=destination.encryption)
        headers = self._render(handoff, destination, integration, conversation) if kind == "sip" else {}
        return voice_twiml.Transfer(
            method=destination.method, action_url=action, kind=kind, target=target,
            headers=headers, utterance=handoff.utterance if attempt == 1 else None,
            ring_timeout=destination.ring_timeout,
        )

    @staticmethod
    def _render(handoff: Handoff, destination: Destination, integration: dict,
                conversation: dict) -> dict[str, str]:
        """The destination's headers merged with the call-time ones, rendered."""
        if not integration.get("sip_headers_supported", True):
            return {}
        templates = merge_headers(destination.sip_headers, handoff.header_overrides)
        headers, warnings = render_headers(templates, template_variables(handoff, conversation),
                                           conversation.get("state") or {})
        for entry in warnings:
            handoff.add_warning(entry["code"], entry["message"])
        return headers

    # -- starting ----------------------------------------------------------------------
    def _new(self, conversation: dict, request: HandoffRequest, *, channel: str,
             call_sid: str | None, base_url: str | None) -> Handoff:
        handoff = Handoff(
            id=new_handoff_id(), conversation_id=conversation["id"], channel=channel,
            shared_id=conversation.get("shared_id"), reason=request.reason,
            utterance=request.utterance, data=dict(request.data or {}),
            header_overrides=dict(request.sip_headers or {}), call_sid=call_sid,
            callback_base=base_url,
        )
        for entry in request.warnings:
            handoff.add_warning(entry["code"], entry["message"])
        handoff.move_to(REQUESTED)
        return handoff

    def _resolve(self, handoff: Handoff, configuration: Configuration,
                 ref: str | None) -> Destination | None:
        found = configuration.find(ref)
        if ref and found is None:
            handoff.add_warning("unknown_destination",
                                f"no destination {ref!r}; used the default instead")
        return found or configuration.default

    def start_voice(self, conversation: dict, request: HandoffRequest, *, call_sid: str,
                    base_url: str) -> tuple[Handoff, VoiceResponse]:
        """A handoff on a live call whose webhook is waiting for TwiML now."""
        configuration = self.services.configuration()
        handoff = self._new(conversation, request, channel="voice", call_sid=call_sid, base_url=base_url)
        destination = self._resolve(handoff, configuration, request.destination)
        if destination is None and not configuration.destinations:
            handoff.add_warning("no_destinations", "no destination is configured")
        twiml = self.plan_attempt(handoff, destination, configuration, conversation)
        self._persist_new(handoff)
        return handoff, twiml

    def start_offline(self, configuration: Configuration, request: HandoffRequest, *,
                      call: dict, base_url: str) -> VoiceResponse:
        """Redis is unreachable: TwiML from the last known configuration, nothing stored.
        The action URL carries the chain so the callback can continue it."""
        conversation = {"id": call.get("CallSid") or "unknown", "from": call.get("From"),
                        "to": call.get("To"), "state": {}}
        handoff = self._new(conversation, request, channel="voice",
                            call_sid=call.get("CallSid"), base_url=base_url)
        destination = self._resolve(handoff, configuration, request.destination)
        twiml = self.plan_attempt(handoff, destination, configuration, conversation)
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
            handoff.sip_headers = self._render(handoff, destination, integration_of(configuration), conversation)
        if channel != "voice":
            handoff.move_to(PENDING)
        elif live_call:
            if not handoff.callback_base:
                handoff.add_warning("no_public_url", "PUBLIC_BASE_URL is not set: the call cannot be redirected")
        self._persist_new(handoff)
        if live_call and handoff.callback_base:
            self.services.enqueue(jobs.redirect_call, handoff.id, job_id=f"redirect-{handoff.id}",
                                  retry=jobs.job_retry())
        return handoff

    def _persist_new(self, handoff: Handoff) -> None:
        self.store.create_handoff(handoff)
        self._notify(handoff, range(len(handoff.history)))

    def _notify(self, handoff: Handoff, indexes) -> None:
        if not self.services.config.webhook_url:
            return
        from . import jobs

        for index in indexes:
            self.services.enqueue(jobs.deliver_event, handoff.id, index, job_id=f"event-{handoff.id}-{index}",
                                  retry=jobs.job_retry())

    def update(self, handoff_id: str, mutate) -> tuple[Handoff, Any]:
        """Atomically change a handoff; new history entries become events and webhooks."""
        holder: dict[str, int] = {}

        def wrapped(handoff: Handoff):
            holder["before"] = len(handoff.history)
            return mutate(handoff)

        handoff, result, new_states = self.store.update_handoff(handoff_id, wrapped)
        if handoff is None:
            raise NotFound(f"no handoff with id {handoff_id!r}")
        if new_states:
            self._notify(handoff, range(holder["before"], len(handoff.history)))
        return handoff, result

    # -- callbacks on a live call -----------------------------------------------------
    def attempt_finished(self, handoff_id: str, attempt: int, params: dict[str, str]) -> VoiceResponse:
        """A <Refer>/<Dial> action callback: record the outcome, continue the chain."""
        result = read_callback(params)
        handoff = self.store.get_handoff(handoff_id)
        if handoff is None:
            raise NotFound(handoff_id)
        configuration = self.services.configuration()
        conversation = self.store.get_conversation(handoff.conversation_id) or {"id": handoff.conversation_id}

        def mutate(h: Handoff) -> VoiceResponse | None:
            if len(h.attempts) != attempt or h.state in FINAL_STATES:
                return None  # already handled: a retried or late callback changes nothing
            tried = h.attempts[-1]
            detail = {"destination": tried, "attempt": attempt, "result": result.result}
            if result.sip_code is not None:
                detail["sip_code"] = result.sip_code
            if params.get("DialCallDuration"):
                detail["duration"] = _int(params.get("DialCallDuration"))
            if result.outcome == CONNECTED:
                h.move_to(CONNECTED, detail)
                return voice_twiml.hangup()  # the SBC has the caller now
            if result.outcome == COMPLETED:
                h.move_to(CONNECTED, detail)
                h.move_to(COMPLETED, {"destination": tried})
                return voice_twiml.hangup()
            if result.outcome == ABANDONED:
                h.move_to(ABANDONED, detail)
                return voice_twiml.hangup()
            return self.plan_attempt(h, next_destination(configuration, h.attempts),
                                     configuration, conversation, failed=detail)

        _, twiml = self.update(handoff_id, mutate)
        return twiml if twiml is not None else voice_twiml.hangup()

    def attempt_finished_offline(self, configuration: Configuration, handoff_id: str,
                                 tried: list[str], params: dict[str, str], base_url: str) -> VoiceResponse:
        """The stateless continuation of a handoff that was never stored."""
        result = read_callback(params)
        if result.outcome != FAILED:
            return voice_twiml.hangup()
        handoff = Handoff(id=handoff_id, conversation_id=params.get("CallSid") or "unknown",
                          attempts=list(tried), callback_base=base_url, call_sid=params.get("CallSid"))
        handoff.move_to(TRANSFERRING)
        conversation = {"id": handoff.conversation_id, "from": params.get("From"), "to": params.get("To"), "state": {}}
        return self.plan_attempt(handoff, next_destination(configuration, handoff.attempts),
                                 configuration, conversation)

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
            if h.state in (PENDING, REQUESTED):
                h.move_to(CLAIMED, {"agent": agent})
            else:
                h.history.append({"state": h.state, "at": utcnow(), "detail": {"claimed_by": agent}})
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
        if handoff and handoff.state in (REQUESTED, PENDING, TRANSFERRING):
            self.update(handoff.id, lambda h: h.move_to(ABANDONED, detail)
                        if h.state in (REQUESTED, PENDING, TRANSFERRING) else None)
