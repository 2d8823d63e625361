"""Voice TwiML for each handoff method, from Twilio's TwiML pages: <Refer>, <Dial> with <Sip>
and <Number>, <Hangup>, <Enqueue> (https://www.twilio.com/docs/voice/twiml)."""
from __future__ import annotations

from dataclasses import dataclass, field

from twilio.twiml.voice_response import Connect, Dial, Enqueue, Gather, Refer, VoiceResponse

from .sip_uri import sip_uri_with_headers

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
    # <Dial> only: a screening URL run on the human's leg before the bridge (whisper,
    # accept gate, voicemail check), answering-machine detection, and an "answered" callback.
    # Simultaneous ring: every (kind, target) is a noun of one <Dial>; the first to answer wins.
    targets: tuple[tuple[str, str], ...] = ()
    # twilio_flex: the TaskRouter task attributes (JSON text) for <Enqueue><Task>.
    task: str | None = None
    screen_url: str | None = None
    machine_detection: bool = False
    amd_url: str | None = None  # amdStatusCallback: where Twilio posts the machine check's result
    answered_url: str | None = None
    caller_id: str | None = None  # <Dial callerId>
    # <Number sendDigits>: DTMF (and `w` pauses) played once a phone-number route answers.
    send_digits: str | None = None
    # consult: `target` is the conference name; what the caller hears while waiting (None:
    # Twilio's default hold music) and where Twilio reports the conference's events.
    wait_url: str | None = None
    events_url: str | None = None


def _start(utterance: str | None) -> VoiceResponse:
    response = VoiceResponse()
    if utterance:
        response.say(utterance)
    return response


def refer(transfer: Transfer) -> VoiceResponse:
    # <Refer> carries exactly one <Sip>; headers ride in the URI query (https://www.twilio.com/docs/voice/twiml/refer). Twilio requests
    # the action URL once the final NOTIFY arrives, with ReferCallStatus.
    response = _start(transfer.utterance)
    verb = Refer(action=transfer.action_url, method="POST")
    verb.sip(sip_uri_with_headers(transfer.target, transfer.headers))
    response.append(verb)
    return response


def dial(transfer: Transfer) -> VoiceResponse:
    response = _start(transfer.utterance)
    dial_attributes = {"caller_id": transfer.caller_id} if transfer.caller_id else {}
    verb = Dial(action=transfer.action_url, method="POST", timeout=transfer.ring_timeout, **dial_attributes)
    noun = {}
    if transfer.screen_url:
        noun.update(url=transfer.screen_url, method="POST")
    if transfer.machine_detection:
        noun["machine_detection"] = "Enable"
        if transfer.amd_url:
            noun.update(amd_status_callback=transfer.amd_url, amd_status_callback_method="POST")
    if transfer.answered_url:
        # A space-separated string: the library would render a list as "['answered']".
        noun.update(status_callback=transfer.answered_url, status_callback_event="answered",
                    status_callback_method="POST")
    for kind, target in transfer.targets or ((transfer.kind, transfer.target),):
        if kind == "number":
            verb.number(target, send_digits=transfer.send_digits, **noun)
        else:
            verb.sip(sip_uri_with_headers(target, transfer.headers), **noun)
    response.append(verb)
    return response


def bye(transfer: Transfer) -> VoiceResponse:
    # Hand the leg back to the SBC: Twilio answers <Hangup/> with a BYE. No documented way
    # exists to put headers on that BYE (https://www.twilio.com/docs/voice/twiml/hangup:
    # no attributes, nothing nested), so the context travels in the handoff record.
    response = _start(transfer.utterance)
    response.hangup()
    return response


def enqueue(transfer: Transfer) -> VoiceResponse:
    # Flex: TaskRouter creates a task with these attributes (the agent's screen pop); the
    # action URL gets QueueResult when the call leaves the queue.
    response = _start(transfer.utterance)
    verb = Enqueue(workflow_sid=transfer.target, action=transfer.action_url, method="POST")
    verb.task(transfer.task or "{}")
    response.append(verb)
    return response


def consult_hold(transfer: Transfer) -> VoiceResponse:
    """consult: the caller waits in a conference named after the handoff while the human is
    called and briefed on another leg (Conference page, https://www.twilio.com/docs/voice/twiml/conference).
    startConferenceOnEnter=false: the caller hears the wait music until the human (who
    starts it) joins; endConferenceOnExit=true: the caller leaving ends the conference, so
    nobody is left in it. Without a waitUrl Twilio plays its default hold music."""
    response = _start(transfer.utterance)
    verb = Dial(action=transfer.action_url, method="POST")
    hold = {}
    if transfer.wait_url:
        # GET lets Twilio cache a static audio file (error 13234 page).
        hold.update(wait_url=transfer.wait_url, wait_method="GET")
    verb.conference(transfer.target, start_conference_on_enter=False, end_conference_on_exit=True, beep=False,
                    status_callback=transfer.events_url, status_callback_method="POST",
                    status_callback_event="join leave", **hold)
    response.append(verb)
    return response


BUILDERS = {"sip_refer": refer, "sip_invite": dial, "sip_bye": bye, "twilio_flex": enqueue, "consult": consult_hold}


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


def ask(prompt: str, action_url: str) -> VoiceResponse:
    """Say the prompt while listening for speech or a key; with no input at all Twilio
    moves on to the <Redirect>, which reaches the same action so silence is a turn too."""
    response = VoiceResponse()
    gather = Gather(input="speech dtmf", action=action_url, method="POST", num_digits=1,
                    timeout=5, speech_timeout="auto", action_on_empty_result=True)
    gather.say(prompt)
    response.append(gather)
    response.redirect(action_url, method="POST")
    return response


def whisper(text: str, accept_url: str | None = None) -> VoiceResponse:
    """TwiML for the human's leg before the bridge. Without an accept gate, ending the
    TwiML bridges the call; with one, anything but 1 hangs up this leg (refused)."""
    response = VoiceResponse()
    if accept_url is None:
        response.say(text)
        return response
    gather = Gather(input="dtmf", num_digits=1, timeout=6, action=accept_url, method="POST",
                    action_on_empty_result=True)
    gather.say(f"{text} Press 1 to accept the call.")
    response.append(gather)
    response.hangup()
    return response


def voicemail(action_url: str, prompt: str) -> VoiceResponse:
    """Let the caller leave a message; Twilio posts RecordingUrl to the action."""
    response = VoiceResponse()
    response.say(prompt)
    response.record(action=action_url, method="POST", max_length=120, play_beep=True, timeout=5)
    response.say("We did not get a message. Goodbye.")
    response.hangup()
    return response


def goodbye(text: str) -> VoiceResponse:
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return response


def relay(agent_url: str, action_url: str, parameters: dict[str, str]) -> VoiceResponse:
    """Hand the caller to an AI agent on ConversationRelay; when the agent ends the session
    (with handoffData), Twilio requests `action_url` with HandoffData."""
    response = VoiceResponse()
    connect = Connect(action=action_url, method="POST")
    conversation_relay = connect.conversation_relay(url=agent_url)
    for name, value in parameters.items():
        if value:
            conversation_relay.parameter(name=name, value=value)
    response.append(connect)
    return response
