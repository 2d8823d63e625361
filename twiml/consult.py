"""TwiML of the human's leg in a consult transfer (pure: plain values in, TwiML out).

The caller's side (waiting in the conference) is `twiml.voice.consult_hold`.
"""
from __future__ import annotations

from twilio.twiml.voice_response import Dial, VoiceResponse

CALLER_GONE = "Sorry, the caller is no longer waiting. Goodbye."


def join(conference: str, events_url: str) -> VoiceResponse:
    """The human accepted: into the caller's conference, which starts as they enter (the
    caller stops hearing hold music and hears them). Their leaving ends it, so the caller
    is not left alone in an empty room (Conference page, endConferenceOnExit)."""
    response = VoiceResponse()
    verb = Dial()
    verb.conference(conference, start_conference_on_enter=True, end_conference_on_exit=True, beep=False,
                    status_callback=events_url, status_callback_method="POST",
                    status_callback_event="join leave")
    response.append(verb)
    return response


def announcement(reason: str | None) -> VoiceResponse:
    """intro public: what both parties hear as the human joins (the conference's announceUrl)."""
    response = VoiceResponse()
    text = "You are now connected."
    if reason:
        text += f" This call is about {reason.replace('_', ' ')}."
    response.say(text)
    return response


def caller_gone() -> VoiceResponse:
    response = VoiceResponse()
    response.say(CALLER_GONE)
    response.hangup()
    return response
