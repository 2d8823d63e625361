"""Planning one transfer attempt: from a destination and the conversation to TwiML.

Pure over the objects it is given (no Redis, no Flask): the lifecycle code in
`handoffs.py` loads what is needed, calls `Planner.attempt`, and persists the result.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from twilio.twiml.voice_response import VoiceResponse

from twiml import voice as voice_twiml

from . import callback_urls, hours, sip
from .destinations import integration_of
from .models import FAILED, TRANSFERRING, Destination, Handoff
from .snapshot import RoutingTable
from .templating import merge_headers, render_headers, render_value

SUMMARY_HEADER = "X-Transfer-Summary"
SUMMARY_LIMIT = 300  # characters of the summary before encoding; Twilio caps all headers at 1023
WHISPER_LIMIT = 600
WARM_MODES = ("warm_message", "warm_accept")
# Flex task attributes are kept small: they travel inside the TwiML, and TwiML sent over
# the REST API is capped at 4000 characters (Twilio error 32018).
TASK_LIMIT = 2000


def call_leg(params: dict[str, str]) -> str | None:
    """'sip', 'client' or 'pstn' from a voice webhook's parameters (None if unknown).

    Twilio accepts <Refer> only on SIP legs (https://www.twilio.com/docs/api/errors/13801); a call to a
    SIP Domain carries SipCallId and sip: URIs in From/To, a Voice SDK call `client:`."""
    values = [str(params.get(k) or "") for k in ("From", "To", "Caller", "Called")]
    if params.get("SipCallId") or params.get("SipDomain") or any(v.startswith(("sip:", "sips:")) for v in values):
        return "sip"
    if any(v.startswith("client:") for v in values):
        return "client"
    if params.get("From") or params.get("Caller"):
        return "pstn"
    return None


def next_destination(configuration: RoutingTable, tried: list[str]) -> Destination | None:
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


def number_of(address: str | None) -> str | None:
    """`sip:+14155550100@sbc.example.com` → `+14155550100`; other addresses unchanged."""
    if address and address.lower().startswith(("sip:", "sips:")):
        return address.split(":", 1)[1].split("@", 1)[0].split(";", 1)[0]
    return address


def template_variables(handoff: Handoff, conversation: dict) -> dict[str, Any]:
    return {
        "caller_id": number_of(conversation.get("from")),
        "called_number": number_of(conversation.get("to")),
        "call_sid": handoff.call_sid,
        "conversation_id": handoff.conversation_id,
        "shared_id": handoff.shared_id or conversation.get("shared_id"),
        "handoff_id": handoff.id,
        "reason": handoff.reason,
    }


# What Twilio takes as a caller ID: toward a phone number, a number (Dial page, callerId,
# https://www.twilio.com/docs/voice/twiml/dial; error 13214); toward a <Sip>, "any alphanumeric
# string. Optionally include the following chars: +-_., but no whitespace"
# (https://www.twilio.com/docs/voice/twiml/sip).
SIP_CALLER_ID = re.compile(r"^[A-Za-z0-9+\-_.]+$")


def caller_id_fits(value: str, kinds) -> bool:
    """Whether Twilio accepts `value` as the caller ID of a call to targets of these kinds."""
    if "number" in kinds:
        return bool(sip.E164.match(value))
    return bool(SIP_CALLER_ID.match(value))


def rendered_caller_id(destination: Destination, handoff: Handoff, conversation: dict) -> str | None:
    """The destination's caller ID, a template rendered (None: unset, or no value)."""
    if not destination.caller_id:
        return None
    text, _ = render_value(destination.caller_id, template_variables(handoff, conversation),
                           conversation.get("state") or {})
    return text or None


def caller_id_for(destination: Destination, handoff: Handoff, conversation: dict,
                  default_caller_id: str | None, kinds=("number",)) -> str | None:
    """Who the human sees calling: the destination's caller ID (a template is rendered),
    else DEFAULT_CALLER_ID; None when neither gives a value. A template renders what the
    call carried ("anonymous", a SIP user name), which Twilio refuses as a caller ID toward
    a phone number (error 13214 says to substitute a valid one): the default replaces it."""
    text = rendered_caller_id(destination, handoff, conversation)
    if text and caller_id_fits(text, kinds):
        return text
    return default_caller_id


def _squash(text: str) -> str:
    return " ".join(str(text).split())


def transcript_tail(conversation: dict) -> list[dict]:
    """The last turns of the conversation (a loader, called only when needed, or a list)."""
    tail = conversation.get("transcript_tail") or []
    return tail() if callable(tail) else tail


def transfer_summary(handoff: Handoff, last_turns: list[dict], limit: int = SUMMARY_LIMIT) -> str:
    """What the human should know in one line: reason, what the agent said, the last turns."""
    parts = []
    if handoff.reason:
        parts.append(f"reason: {handoff.reason}")
    if handoff.utterance:
        parts.append(f"said: {handoff.utterance}")
    turns = [f"{t.get('role')}: {t.get('text')}" for t in last_turns[-3:] if t.get("text")]
    if turns:
        parts.append("last: " + " | ".join(turns))
    summary = _squash("; ".join(parts))
    return summary if len(summary) <= limit else summary[: limit - 1] + "…"


def _spoken_name(header: str) -> str:
    return re.sub(r"^[Xx]-", "", header).replace("-", " ")


def whisper_text(handoff: Handoff, conversation: dict, headers: dict[str, str]) -> str:
    """What the human hears before the caller is bridged: reason, caller, key context."""
    parts = ["Incoming transfer."]
    if handoff.reason:
        parts.append(f"Reason: {handoff.reason.replace('_', ' ')}.")
    caller = number_of(conversation.get("from"))
    if caller:
        parts.append(f"Caller: {' '.join(caller)}.")  # spoken digit by digit
    for name, value in headers.items():
        if name != SUMMARY_HEADER:
            parts.append(f"{_spoken_name(name)}: {value}.")
    if handoff.utterance:
        parts.append(f"The assistant said: {handoff.utterance}")
    text = _squash(" ".join(parts))
    return text[:WHISPER_LIMIT]


def task_attributes(handoff: Handoff, conversation: dict, headers: dict[str, str],
                    limit: int = TASK_LIMIT) -> tuple[str, bool]:
    """Flex task attributes (the agent's screen pop) as JSON, and whether they were trimmed
    to fit: the conversation state goes first, then the transcript summary."""
    attributes = {
        "type": "handoff", "handoff_id": handoff.id, "conversation_id": handoff.conversation_id,
        "shared_id": handoff.shared_id or conversation.get("shared_id"), "reason": handoff.reason,
        "utterance": handoff.utterance, "caller": number_of(conversation.get("from")),
        "called": number_of(conversation.get("to")), "context": headers,
        "summary": transfer_summary(handoff, transcript_tail(conversation)),
        "state": conversation.get("state") or {},
    }
    text = json.dumps(attributes, separators=(",", ":"), default=str)
    trimmed = False
    for key in ("state", "summary", "context", "utterance"):
        if len(text) <= limit:
            break
        attributes.pop(key, None)
        trimmed = True
        text = json.dumps(attributes, separators=(",", ":"), default=str)
    return text, trimmed


@dataclass
class Planner:
    """Turns a destination into the TwiML of one attempt, recording it on the handoff."""

    configuration: RoutingTable
    sip_domain: str | None = None
    now: datetime | None = None  # for opening hours; None means "always open"
    default_caller_id: str | None = None  # DEFAULT_CALLER_ID
    # Redis is unreachable: nothing can follow a consult (no store, no worker), so a consult
    # destination is transferred the way its method does without one.
    offline: bool = False

    @property
    def integration(self) -> dict:
        return integration_of(self.configuration)

    def render(self, handoff: Handoff, destination: Destination, conversation: dict) -> dict[str, str]:
        """The destination's headers merged with the call-time ones, rendered."""
        if not self.integration.get("sip_headers_supported", True):
            return {}
        templates = merge_headers(destination.sip_headers, handoff.header_overrides)
        headers, warnings = render_headers(templates, template_variables(handoff, conversation),
                                           conversation.get("state") or {})
        if destination.transfer_mode == "blind_with_summary_header":
            summary = transfer_summary(handoff, transcript_tail(conversation))
            headers, trimmed = sip.fit_headers({**headers, SUMMARY_HEADER: summary})
            if trimmed and not any(w["code"] == "headers_truncated" for w in warnings):
                warnings.append({"code": "headers_truncated",
                                 "message": "header values trimmed to fit Twilio's 1024-character limit"})
        for entry in warnings:
            handoff.add_warning(entry["code"], entry["message"])
        return headers

    def attempt(self, handoff: Handoff, destination: Destination | None, conversation: dict,
                failed: dict | None = None) -> VoiceResponse:
        """Point the handoff at `destination` (or the next one that can be dialled) and
        return its TwiML; with nothing left, mark the handoff failed and apologise."""
        while destination is not None:
            handoff.attempts.append(destination.id)
            if self.now is not None and not hours.is_open(destination.hours, self.now):
                # Outside its hours: skipped like a failure, without ringing anyone.
                failed = {"destination": destination.id, "attempt": len(handoff.attempts), "result": "closed"}
                destination = next_destination(self.configuration, handoff.attempts)
                continue
            if destination.method == "sip_bye" and handoff.leg in ("pstn", "client"):
                # A BYE hands a SIP leg back to the SBC that sent it; a phone or Voice SDK
                # caller has no SBC to go back to, so hanging up would only drop them.
                handoff.add_warning("bye_unsupported_leg",
                                    f"{destination.id}: the caller is on a {handoff.leg} leg, where a SIP BYE "
                                    "hands the call to nobody; tried the next destination instead")
                failed = {"destination": destination.id, "attempt": len(handoff.attempts),
                          "result": "bye_unsupported_leg"}
                destination = next_destination(self.configuration, handoff.attempts)
                continue
            try:
                transfer = self._transfer(handoff, destination, conversation)
            except sip.RouteError as exc:
                handoff.add_warning("route_unresolvable", f"{destination.id}: {exc}")
                failed = {"destination": destination.id, "result": "route_unresolvable"}
                destination = next_destination(self.configuration, handoff.attempts)
                continue
            handoff.destination = destination.summary()
            handoff.sip_headers = transfer.headers
            detail = {"destination": destination.id, "attempt": len(handoff.attempts)}
            if failed:
                detail["after"] = failed
            handoff.move_to(TRANSFERRING, detail, again=True)
            return voice_twiml.transfer_twiml(transfer)
        detail = {"reason": "no_destination_left"}
        if failed:
            detail.update(failed)
        handoff.move_to(FAILED, detail)
        return voice_twiml.apology()

    def _transfer(self, handoff: Handoff, destination: Destination, conversation: dict) -> voice_twiml.Transfer:
        attempt = len(handoff.attempts)
        base = handoff.callback_base or ""
        url = lambda step: callback_urls.handoff_step(base, handoff.id, step, attempt, handoff.attempts)  # noqa: E731
        # Said once, before the first attempt that reaches the caller (a destination skipped
        # as closed or unusable before it never spoke).
        spoken = any(entry["state"] == TRANSFERRING for entry in handoff.history)
        utterance = None if spoken else handoff.utterance
        if destination.method == "sip_bye":
            return voice_twiml.Transfer(method="sip_bye", action_url=url("status"), utterance=utterance)
        if destination.transfer_mode == "consult" and not self.offline:
            return consult_transfer(self, handoff, destination, conversation, utterance)
        method = destination.method
        if method == "sip_refer" and handoff.leg not in (None, "sip"):
            # Twilio refuses REFER on PSTN and Voice SDK legs (13801): bridge instead.
            handoff.add_warning("refer_unsupported_leg",
                                f"the caller is on a {handoff.leg} leg, where Twilio cannot send REFER; "
                                "bridged with <Dial> instead")
            method = "sip_invite"
        if method == "twilio_flex":
            headers = self.render(handoff, destination, conversation)
            task, trimmed = task_attributes(handoff, conversation, headers)
            if trimmed:
                handoff.add_warning("task_attributes_truncated",
                                    f"Flex task attributes trimmed to {TASK_LIMIT} characters")
            return voice_twiml.Transfer(method=method, action_url=url("status"), target=str(destination.route),
                                        task=task, headers=headers, utterance=utterance)
        routes = destination.route if isinstance(destination.route, list) else [destination.route or ""]
        targets = None
        if handoff.route_override and attempt == 1:
            try:
                targets = (sip.dial_target(handoff.route_override, method=method, sip_domain=self.sip_domain,
                                           encryption=destination.encryption),)
            except sip.RouteError as exc:
                # An allowed override this method cannot dial (an extension without
                # SIP_DOMAIN…): the requested destination's own route, never a skipped one.
                handoff.add_warning("route_unusable", f"the route override cannot be dialled ({exc}); "
                                                      f"used {destination.id}'s route instead")
        if targets is None:
            targets = tuple(sip.dial_target(r, method=method, sip_domain=self.sip_domain,
                                            encryption=destination.encryption) for r in routes)
        kind, target = targets[0]
        headers = self.render(handoff, destination, conversation) if any(k == "sip" for k, _ in targets) else {}
        screened = method == "sip_invite" and (destination.transfer_mode in WARM_MODES or destination.detect_voicemail)
        machine_detection = method == "sip_invite" and destination.detect_voicemail
        caller_id = None
        if method == "sip_invite":
            kinds = {k for k, _ in targets}
            caller_id = caller_id_for(destination, handoff, conversation, self.default_caller_id, kinds)
            rendered = rendered_caller_id(destination, handoff, conversation)
            if rendered and rendered != caller_id:
                handoff.add_warning("caller_id_unusable",
                                    f"{destination.id}: caller_id {destination.caller_id} gave {rendered[:40]!r}, "
                                    "which Twilio refuses as a caller ID (error 13214); "
                                    + (f"used DEFAULT_CALLER_ID {caller_id}" if caller_id else "left out"))
        if (method == "sip_invite" and not caller_id and handoff.leg in ("sip", "client")
                and any(k == "number" for k, _ in targets)):
            handoff.add_warning("caller_id_missing",
                                f"{destination.id}: no caller ID for a call from a {handoff.leg} leg to a phone "
                                "number; Twilio needs a Twilio or verified number (errors 13214, 13227)")
        return voice_twiml.Transfer(
            method=method, action_url=url("status"), kind=kind, target=target, headers=headers,
            targets=targets if len(targets) > 1 else (), utterance=utterance, ring_timeout=destination.ring_timeout,
            screen_url=url("whisper") if screened else None,
            machine_detection=machine_detection,
            # Without amdStatusCallback Twilio has nowhere to send the result (warning 21262).
            amd_url=url("amd") if machine_detection else None,
            answered_url=url("answered") if method == "sip_invite" and not screened else None,
            caller_id=caller_id,
            send_digits=destination.extension,
        )


# -- consult attempts: planned here like any other; handoff/consult.py follows them -----

def conference_name(handoff_id: str, attempt: int) -> str:
    """One room per attempt: a later consult attempt never meets an earlier one's room."""
    return f"{handoff_id}-{attempt}"


def consult_url(handoff: Handoff, step: str, attempt: int) -> str:
    return callback_urls.consult_step(handoff.callback_base or "", handoff.id, step, attempt)


def human_route(handoff: Handoff, destination: Destination, attempt: int) -> str:
    if handoff.route_override and attempt == 1:
        return handoff.route_override
    route = destination.route
    return route[0] if isinstance(route, list) else (route or "")


def human_target(route: str, destination: Destination, sip_domain: str | None) -> tuple[str, str]:
    """(`number` | `sip`, address) of the human for a REST call: numbers are called as
    numbers whatever the method; SIP URIs and extensions as the destination's method would
    dial them (secure media for a `sip_invite` with `tls_srtp`)."""
    if sip.classify_route(route) == "number":
        return "number", route.strip()
    return sip.dial_target(route, method=destination.method, sip_domain=sip_domain,
                           encryption=destination.encryption)


def consult_transfer(planner: Planner, handoff: Handoff, destination: Destination, conversation: dict,
                     utterance: str | None) -> voice_twiml.Transfer:
    """The caller's TwiML of a consult attempt (the conference flow that follows is
    handoff/consult.py's). The route is checked
    now, so an unusable one moves the chain on before the caller is put on hold."""
    attempt = len(handoff.attempts)
    human_target(human_route(handoff, destination, attempt), destination, planner.sip_domain)
    # Rendered for every route kind: on a SIP route they ride on the INVITE, and they are
    # always the key state the whisper reads out.
    headers = planner.render(handoff, destination, conversation)
    return voice_twiml.Transfer(
        method="consult", action_url=consult_url(handoff, "status", attempt),
        target=conference_name(handoff.id, attempt), headers=headers, utterance=utterance,
        wait_url=destination.hold_audio_url, events_url=consult_url(handoff, "conference", attempt))
