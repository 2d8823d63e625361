"""Voice TwiML for each handoff method (TWILIO_NOTES.md §1–3, §7)."""
from __future__ import annotations

from dataclasses import dataclass, field

from twilio.twiml.voice_response import Dial, Refer, VoiceResponse

from handoff import sip

APOLOGY = "We're sorry, we can't connect you to someone right now. Please try again later. Goodbye."


@dataclass(frozen=True)
class Transfer:
    """Everything the TwiML of one handoff attempt needs, already resolved."""

    method: str  # sip_refer | sip_invite | sip_bye
    action_url: str
    kind: str = "sip"  # sip | number
    target: str = ""  # SIP URI (without headers) or E.164 number
    headers: dict[str, str] = field(default_factory=dict)
    utterance: str | None = None
    ring_timeout: int = 30


def _start(utterance: str | None) -> VoiceResponse:
    response = VoiceResponse()
    if utterance:
        response.say(utterance)
    return response


def refer(transfer: Transfer) -> VoiceResponse:
    # <Refer> carries exactly one <Sip>; headers ride in the URI query (§1). Twilio requests
    # the action URL once the final NOTIFY arrives, with ReferCallStatus.
    response = _start(transfer.utterance)
    verb = Refer(action=transfer.action_url, method="POST")
    verb.sip(sip.sip_uri_with_headers(transfer.target, transfer.headers))
    response.append(verb)
    return response


def dial(transfer: Transfer) -> VoiceResponse:
    response = _start(transfer.utterance)
    verb = Dial(action=transfer.action_url, method="POST", timeout=transfer.ring_timeout)
    if transfer.kind == "number":
        verb.number(transfer.target)
    else:
        verb.sip(sip.sip_uri_with_headers(transfer.target, transfer.headers))
    response.append(verb)
    return response


def bye(transfer: Transfer) -> VoiceResponse:
    # Hand the leg back to the SBC: Twilio answers <Hangup/> with a BYE. No documented way
    # exists to put headers on that BYE (§3), so the context travels in the handoff record.
    response = _start(transfer.utterance)
    response.hangup()
    return response


BUILDERS = {"sip_refer": refer, "sip_invite": dial, "sip_bye": bye}


def transfer_twiml(transfer: Transfer) -> VoiceResponse:
    return BUILDERS[transfer.method](transfer)


def apology(message: str = APOLOGY) -> VoiceResponse:
    response = VoiceResponse()
    response.say(message)
    response.hangup()
    return response


def hangup() -> VoiceResponse:
    response = VoiceResponse()
    response.hangup()
    return response


def redirect(url: str, prompt: str | None = None) -> VoiceResponse:
    response = _start(prompt)
    response.redirect(url, method="POST")
    return response
