"""Starting a handoff: from a voice webhook, the API or Python, or a preview that stores nothing."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from twilio.twiml.voice_response import VoiceResponse

from . import route_allowlist, sip
from .errors import NotFound, ValidationFailed
from .handoff_core import HandoffCore
from .models import (
    PENDING,
    REQUESTED,
    TRANSFERRING,
    ConversationRecord,
    Destination,
    Handoff,
)
from .snapshot import RoutingTable
from .store import WriteBatch
from .transfers import call_leg

log = logging.getLogger(__name__)


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


# Sample caller and called addresses of a preview, per caller leg.
PREVIEW_ADDRESSES = {
    "sip": ("sip:+14155550100@sbc.example.com", "sip:+14155550199@example.sip.twilio.com"),
    "pstn": ("+14155550100", "+14155550199"),
    "client": ("client:preview", "+14155550199"),
}


def new_handoff_id() -> str:
    return "HO" + uuid.uuid4().hex


def route_problem(route: str) -> str | None:
    """Why a route override cannot be dialled at all, or None."""
    try:
        sip.classify_route(route)
    except sip.RouteError as exc:
        return str(exc)
    return None


class HandoffStarts(HandoffCore):
    """One code path for every trigger: a `HandoffRequest` resolved against the destinations,
    planned into its first attempt's TwiML and persisted."""

    def _new(
        self,
        conversation: ConversationRecord,
        request: HandoffRequest,
        *,
        channel: str,
        call_sid: str | None,
        base_url: str | None,
        leg: str | None = None,
        strict_route: bool = False,
    ) -> Handoff:
        """A new handoff for `request`; `strict_route`: a route override it may not use is a
        422 (the API's callers) rather than a warning (a call must keep moving)."""
        handoff = Handoff(
            id=new_handoff_id(),
            conversation_id=conversation.id,
            channel=channel,
            shared_id=conversation.shared_id,
            reason=request.reason,
            utterance=request.utterance,
            data=dict(request.data or {}),
            header_overrides=dict(request.sip_headers or {}),
            call_sid=call_sid,
            callback_base=base_url,
            leg=leg or conversation.leg,
        )
        for entry in request.warnings:
            handoff.add_warning(entry["code"], entry["message"])
        if request.route:
            self._take_route(handoff, request.route, strict=strict_route)
        handoff.move_to(REQUESTED)
        return handoff

    def _take_route(self, handoff: Handoff, route: str, *, strict: bool) -> None:
        """The one check of a call-time route override: kept when it can be dialled and
        matches ALLOWED_ROUTE_PATTERNS; otherwise a 422 (`strict`) or a warning, the override
        ignored and never dialled (the requested destination is still tried)."""
        patterns = self.services.config.allowed_route_patterns
        problem = route_problem(route)
        if problem is None and route_allowlist.route_allowed(route, patterns):
            handoff.route_override = route
        elif strict:
            raise ValidationFailed.field("route", problem or "route overrides must match ALLOWED_ROUTE_PATTERNS"
                                         + ("" if patterns else " (none are allowed: it is unset)"))
        elif problem:
            handoff.add_warning("route_unusable", f"the route override cannot be dialled ({problem}); ignored")
        else:
            handoff.add_warning("route_refused", "the route override is not in ALLOWED_ROUTE_PATTERNS; ignored")

    def _resolve(self, handoff: Handoff, configuration: RoutingTable, ref: str | None) -> Destination | None:
        found = configuration.find(ref)
        if ref and found is None:
            handoff.add_warning("unknown_destination", f"no destination {ref!r}; used the default instead")
        return found or configuration.default

    def start_voice(
        self, conversation: ConversationRecord, request: HandoffRequest, *, call_sid: str, base_url: str,
        leg: str | None = None, batch: WriteBatch | None = None
    ) -> tuple[Handoff, VoiceResponse]:
        """A handoff on a live call whose webhook is waiting for TwiML now (stored with
        `batch` when the webhook's answer is: store.answer_once)."""
        configuration = self.services.configuration(conversation.env)
        handoff, twiml = self.plan_voice(
            configuration, conversation, request, call_sid=call_sid, base_url=base_url, leg=leg
        )
        self._persist_new(handoff, batch)
        return handoff, twiml

    def plan_voice(
        self,
        configuration: RoutingTable,
        conversation: ConversationRecord,
        request: HandoffRequest,
        *,
        call_sid: str,
        base_url: str,
        leg: str | None,
        offline: bool = False,
    ) -> tuple[Handoff, VoiceResponse]:
        """The handoff and TwiML a voice handoff answers, nothing stored: shared by real
        handoffs, previews and `offline` ones (Redis unreachable: the transcript is not read),
        so a preview is exactly what a call would get."""
        handoff = self._new(conversation, request, channel="voice", call_sid=call_sid, base_url=base_url, leg=leg)
        destination = self._resolve(handoff, configuration, request.destination)
        if destination is None and not configuration.destinations:
            handoff.add_warning("no_destinations", "no destination is configured")
        context = conversation.public() if offline else self.context(conversation)
        twiml = self.planner(configuration, offline=offline).attempt(handoff, destination, context)
        return handoff, twiml

    def preview(
        self,
        destination_id: str,
        leg: str,
        request: HandoffRequest,
        *,
        state: dict,
        caller: str | None,
        called: str | None,
        base_url: str,
    ) -> tuple[Handoff, VoiceResponse]:
        """What a handoff to this destination (in the sandbox draft) would answer on a
        call from `leg`, with sample state; nothing is created."""
        configuration = self.services.configuration("sandbox")
        if configuration.by_id().get(destination_id) is None:
            raise NotFound(f"no destination with id {destination_id!r}")
        sample_from, sample_to = PREVIEW_ADDRESSES[leg]
        call_sid = "CA" + uuid.uuid4().hex
        conversation = ConversationRecord(id=call_sid, from_=caller or sample_from, to=called or sample_to, state=state)
        request.destination = destination_id
        return self.plan_voice(configuration, conversation, request, call_sid=call_sid, base_url=base_url, leg=leg)

    def start_offline(
        self, configuration: RoutingTable, request: HandoffRequest, *, call: dict, base_url: str
    ) -> VoiceResponse:
        """Redis is unreachable: TwiML from the last known configuration, nothing stored.
        The action URL carries the chain so the callback can continue it."""
        handoff, twiml = self.plan_voice(
            configuration, ConversationRecord.for_call(call), request, call_sid=call.get("CallSid"),
            base_url=base_url, leg=call_leg(call), offline=True,
        )
        log.warning(
            "Redis unreachable: handoff for call %s sent to %s from the configuration snapshot (not recorded)",
            call.get("CallSid"),
            handoff.destination and handoff.destination["id"],
        )
        return twiml

    def start(self, conversation_id: str, request: HandoffRequest, *, base_url: str | None) -> Handoff:
        """The API / Python trigger. A live voice call is redirected by a background job;
        chat and SMS handoffs wait `pending` for a connector to claim them."""
        conversation = self.store.get_conversation(conversation_id)
        if conversation is None:
            raise NotFound(f"no conversation with id {conversation_id!r}")
        channel = conversation.channel or "voice"
        live_call = channel == "voice" and not conversation.ended_at
        handoff = self._new(
            conversation,
            request,
            channel=channel,
            call_sid=conversation.id if channel == "voice" else None,
            base_url=base_url or self.services.config.public_base_url,
            strict_route=True,
        )
        configuration = self.services.configuration(conversation.env)
        if request.destination and configuration.find(request.destination) is None and not configuration.default:
            raise ValidationFailed.field("destination", f"no destination {request.destination!r} and no default")
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
            self.services.enqueue(
                "handoff.jobs.redirect_call",
                handoff.id,
                job_id=f"redirect-{handoff.id}",
                retry=self.services.job_retry(),
            )
        return handoff

    def in_progress_for_call(self, conversation_id: str) -> VoiceResponse | None:
        """The TwiML for a call this service is already handing off (None if it is not).

        An API handoff moves the live call with a REST update, and that update ends the
        agent's <Connect>, whose action then reaches /voice/agent/ended: it must not start
        a second handoff. Still `requested` (the worker has not moved the call yet), the
        first attempt is answered here and the worker's redirect finds nothing to do;
        already under way, the REST update's TwiML runs and this answer is not used. A
        handoff that already connected is over as far as this call's agent is concerned: an
        agent that has the caller again may hand them off anew."""
        handoff = self.store.newest_handoff_for_conversation(conversation_id)
        if handoff is None or handoff.channel != "voice" or handoff.state not in (REQUESTED, TRANSFERRING):
            return None
        conversation = self.conversation_of(handoff)
        configuration = self.services.configuration(conversation.env)

        def mutate(h: Handoff) -> VoiceResponse:
            if h.state != REQUESTED:
                return VoiceResponse()
            destination = configuration.find((h.destination or {}).get("id")) or configuration.default
            return self.planner(configuration).attempt(h, destination, self.context(conversation))

        _, twiml = self.update(handoff.id, mutate)
        return twiml
