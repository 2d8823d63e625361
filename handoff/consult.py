"""Consult transfers: the caller holds in a conference while the human is called and briefed.

The story of one attempt, each step a history entry and an event:
1. The caller's TwiML puts them in a `<Conference>` named after the handoff (hold audio;
   planned in handoff/transfers.py like every attempt).
2. Their joining it (the conference's `participant-join` event) starts `consulting`: the
   worker calls the human over Twilio's REST API (`consult_calls.call_human`).
3. The human answers and hears the whisper, then "press 1 to accept".
4. `accepted` (connected): the human joins the conference; with `intro: public` the reason
   is announced to both. Their call ending later ends the conference and the handoff.
5. Declined, busy, no answer, a voicemail, or the human gone before joining: the attempt
   fails and the caller, who only heard hold audio, is moved on by the destination's
   `on_failure` (REST update of their call, `consult_calls.move_caller`).
6. The caller hanging up while waiting: `abandoned`, and the human's leg is ended.

Which step an attempt is at lives in the handoff's `attempt_marks` ("N" → step, and
"N.call", "N.conference", "N.next" for the human's call, the conference and the TwiML the
caller is moved to), changed only inside `Handoffs.update`, so every Twilio callback can
arrive twice, late or out of order and change nothing it should not.
"""
from __future__ import annotations

from datetime import datetime

from twilio.twiml.voice_response import VoiceResponse

from twiml import consult as consult_twiml
from twiml import voice as voice_twiml

from .callback_reading import is_machine
from .errors import NotFound
from .handoff_attempts import HandoffAttempts
from .handoff_core import DIAL_LONGEST
from .models import (
    ABANDONED,
    COMPLETED,
    CONNECTED,
    FINAL_STATES,
    TRANSFERRING,
    ConversationRecord,
    Destination,
    Handoff,
)
from .services import Services
from .transfers import caller_id_for, conference_name, consult_url, number_of, transcript_tail, whisper_text

CONSULTING, ACCEPTED, JOINED = "consulting", "accepted", "joined"
WAITING = (CONSULTING, ACCEPTED)  # the caller is on hold and the human not yet in
CALLER_LEFT = "caller_left"
# The human's call ended before joining (Calls resource status callback): the step recorded.
CALL_ENDINGS = {"busy": "busy", "no-answer": "no_answer", "failed": "call_failed",
                "canceled": "call_failed", "completed": "human_left"}
# Failures that leave the human's call up (a machine answered; the room went away while
# they were being briefed): their leg is ended. A decline hangs up by itself.
LIVE_LEG_FAILURES = ("voicemail", "conference_ended", "timeout")
SUMMARY_TURNS = 2


def consult_caller_id(destination: Destination, handoff: Handoff, conversation: dict,
                      default_caller_id: str | None, kind: str = "number") -> str | None:
    """The consult call's `from`: as for a <Dial> to a target of this `kind`, else the
    number the caller called (a Twilio number: the REST API needs one)."""
    return (caller_id_for(destination, handoff, conversation, default_caller_id, (kind,))
            or number_of(conversation.get("to")))


def briefing(handoff: Handoff, conversation: dict) -> str:
    """The whisper (reason, caller, key state, what the agent said), then the last turns."""
    text = whisper_text(handoff, conversation, handoff.sip_headers)
    turns = [f"{'The caller' if t.get('role') == 'user' else 'The assistant'} said: {t.get('text')}."
             for t in transcript_tail(conversation)[-SUMMARY_TURNS:] if t.get("text")]
    return " ".join([text, *turns])[:1000]


class Consults:
    """The consult steps, over the store; Twilio REST calls are queued for the worker."""

    def __init__(self, services: Services):
        self.services = services
        self.handoffs = HandoffAttempts(services)  # the chain's rules for a failed attempt

    @property
    def store(self):
        return self.services.store

    def _handoff(self, handoff_id: str) -> Handoff:
        handoff = self.store.get_handoff(handoff_id)
        if handoff is None:
            raise NotFound(handoff_id)
        return handoff

    def destination_of(self, handoff: Handoff, attempt: int,
                       conversation: ConversationRecord | None = None) -> Destination | None:
        """The attempt's destination in the configuration the call runs on (a test number's
        call follows the sandbox draft throughout); `conversation` when already read."""
        if not 1 <= attempt <= len(handoff.attempts):
            return None
        conversation = conversation or self.handoffs.conversation_of(handoff)
        return self.services.configuration(conversation.env).by_id().get(handoff.attempts[attempt - 1])

    @staticmethod
    def step(h: Handoff, attempt: int) -> str | None:
        """The attempt's step, or None when it is not the handoff's current attempt."""
        return h.attempt_marks.get(str(attempt)) if len(h.attempts) == attempt else None

    @staticmethod
    def undecided(h: Handoff, attempt: int) -> bool:
        """The current attempt, its caller still waiting for the human to join."""
        return (len(h.attempts) == attempt and h.state not in FINAL_STATES
                and h.attempt_marks.get(str(attempt)) in WAITING + (None,))

    def _enqueue(self, job: str, handoff_id: str, attempt: int, what: str) -> None:
        """Queue `handoff.consult_calls.<job>` (by name: that module imports this one)."""
        self.services.enqueue(f"handoff.consult_calls.{job}", handoff_id, attempt,
                              job_id=f"consult-{what}-{handoff_id}-{attempt}", retry=self.services.job_retry())

    def _detail(self, h: Handoff, attempt: int, step: str, **extra) -> dict:
        return {"destination": h.attempts[attempt - 1], "attempt": attempt, "step": step, **extra}

    # -- the caller's side -------------------------------------------------------------
    def conference_event(self, handoff_id: str, attempt: int, params: dict[str, str]) -> None:
        """The conference's statusCallback (`participant-join`, `participant-leave`, with the
        participant's CallSid and the ConferenceSid)."""
        handoff = self._handoff(handoff_id)
        event, call_sid = params.get("StatusCallbackEvent"), params.get("CallSid")
        human_sid = handoff.attempt_marks.get(f"{attempt}.call")
        if event == "participant-join" and call_sid == handoff.call_sid:
            self.caller_waiting(handoff_id, attempt, params.get("ConferenceSid"))
        elif event == "participant-join" and call_sid and call_sid == human_sid:
            self.human_joined(handoff_id, attempt)
        elif event == "participant-leave" and call_sid == handoff.call_sid:
            # Only a leave whose call ended is the caller hanging up (ParticipantCallStatus,
            # Twilio changelog 2023-10-25); one still in progress was moved out of the room
            # (our redirect, or the room ending), which the <Dial> action reports.
            status = params.get("ParticipantCallStatus")
            if status and status != "in-progress":
                self.caller_left(handoff_id, attempt, status)

    def caller_waiting(self, handoff_id: str, attempt: int, conference_sid: str | None) -> None:
        """The caller is on hold: consulting starts, the worker calls the human."""
        def mutate(h: Handoff) -> bool:
            if len(h.attempts) != attempt or h.state != TRANSFERRING or str(attempt) in h.attempt_marks:
                return False  # a repeated event, or an attempt that already moved on
            h.attempt_marks[str(attempt)] = CONSULTING
            if conference_sid:
                h.attempt_marks[f"{attempt}.conference"] = conference_sid
            h.move_to(TRANSFERRING, self._detail(h, attempt, CONSULTING), again=True)
            return True

        _, started = self.handoffs.update(handoff_id, mutate)
        if started:
            self._enqueue("call_human", handoff_id, attempt, "call")

    def caller_left(self, handoff_id: str, attempt: int, call_status: str) -> None:
        """The caller hung up. Still waiting: `abandoned`, and the human's leg is ended.
        Already talking to the human: the handoff is complete."""
        def mutate(h: Handoff) -> bool:
            step = self.step(h, attempt)
            if step == JOINED:
                if h.state == CONNECTED:
                    h.move_to(COMPLETED, self._detail(h, attempt, "ended", call_status=call_status))
                return False
            if step not in WAITING and not (step is None and len(h.attempts) == attempt):
                return False  # moved on already (their leaving the room was our redirect)
            h.attempt_marks[str(attempt)] = CALLER_LEFT
            if h.state not in FINAL_STATES:
                h.move_to(ABANDONED, self._detail(h, attempt, CALLER_LEFT, call_status=call_status))
            return step is not None

        _, human_called = self.handoffs.update(handoff_id, mutate)
        if human_called:
            self._enqueue("end_human_leg", handoff_id, attempt, "end")

    def caller_dial_ended(self, handoff_id: str, attempt: int, params: dict[str, str]) -> str:
        """The caller's `<Dial><Conference>` returned (its action URL): the caller hung up,
        or the room ended around them."""
        call_status = params.get("CallStatus") or ""
        handoff = self._handoff(handoff_id)
        if call_status in ("completed", "canceled") or self.step(handoff, attempt) == JOINED:
            # Gone, or the human left after talking to them: the conversation is over.
            self.caller_left(handoff_id, attempt, call_status or "completed")
            return str(voice_twiml.hangup())
        # The room ended with the caller still there and nobody joined (ended through the
        # REST API, say): this attempt failed, and this answer moves the caller on.
        twiml = self.human_unavailable(handoff_id, attempt, "conference_ended", move=False)
        if twiml is not None:
            return str(twiml)
        handoff = self._handoff(handoff_id)
        # Decided already: the TwiML the caller is being moved to by the REST update.
        return handoff.attempt_marks.get(f"{attempt}.next") or str(voice_twiml.hangup())

    # -- the human's side --------------------------------------------------------------
    def whisper(self, handoff_id: str, attempt: int, params: dict[str, str]) -> VoiceResponse:
        """The human answered (the `url` of their call): the briefing, then the accept gate."""
        handoff = self._handoff(handoff_id)
        if self.step(handoff, attempt) not in WAITING or handoff.state in FINAL_STATES:
            return consult_twiml.caller_gone()
        answered_by = params.get("AnsweredBy") or ""
        if is_machine(answered_by):
            self.human_unavailable(handoff_id, attempt, "voicemail")
            return voice_twiml.hangup()
        conversation = self.handoffs.context(self.handoffs.conversation_of(handoff))
        return voice_twiml.whisper(briefing(handoff, conversation), consult_url(handoff, "accept", attempt))

    def accept(self, handoff_id: str, attempt: int, digits: str | None) -> VoiceResponse:
        """1 joins the caller's conference; anything else (or nothing) declines."""
        if (digits or "").strip() != "1":
            self.human_unavailable(handoff_id, attempt, "declined")
            return voice_twiml.goodbye("Declined. Goodbye.")

        def mutate(h: Handoff) -> bool:
            step = self.step(h, attempt)
            if step in (ACCEPTED, JOINED):
                return True  # a retried request: join again
            if step != CONSULTING or h.state != TRANSFERRING:
                return False
            h.attempt_marks[str(attempt)] = ACCEPTED
            h.move_to(CONNECTED, self._detail(h, attempt, ACCEPTED))
            return True

        handoff, accepted = self.handoffs.update(handoff_id, mutate)
        if not accepted:
            return consult_twiml.caller_gone()
        return consult_twiml.join(conference_name(handoff_id, attempt), consult_url(handoff, "conference", attempt))

    def human_joined(self, handoff_id: str, attempt: int) -> None:
        def mutate(h: Handoff) -> bool:
            if self.step(h, attempt) != ACCEPTED:
                return False
            h.attempt_marks[str(attempt)] = JOINED
            return True

        handoff, joined = self.handoffs.update(handoff_id, mutate)
        destination = self.destination_of(handoff, attempt) if joined else None
        if destination is not None and destination.intro == "public":
            self._enqueue("announce", handoff_id, attempt, "announce")

    def _stray_call(self, handoff_id: str, attempt: int, params: dict[str, str]) -> bool:
        """A callback of a call that is not the attempt's recorded human call: one placed
        twice (a create whose answer was lost, tried again). Its end says nothing about the
        human on the recorded call."""
        recorded = self._handoff(handoff_id).attempt_marks.get(f"{attempt}.call")
        call_sid = params.get("CallSid")
        return bool(recorded and call_sid and call_sid != recorded)

    def human_call_status(self, handoff_id: str, attempt: int, params: dict[str, str]) -> None:
        """The status callback of the human's call: an end before joining fails the attempt."""
        step = CALL_ENDINGS.get(params.get("CallStatus") or "")
        if step is not None and not self._stray_call(handoff_id, attempt, params):
            self.human_unavailable(handoff_id, attempt, step, sip_code=params.get("SipResponseCode"))

    def answering_machine(self, handoff_id: str, attempt: int, params: dict[str, str]) -> None:
        """Async AMD result of the human's call: a machine or fax is not the human."""
        answered_by = params.get("AnsweredBy") or ""
        if is_machine(answered_by) and not self._stray_call(handoff_id, attempt, params):
            self.human_unavailable(handoff_id, attempt, "voicemail", answered_by=answered_by)

    def owns(self, handoff_id: str, attempt: int) -> bool:
        """Whether this attempt is a consult (so its timeout is handled here)."""
        handoff = self.store.get_handoff(handoff_id)
        destination = self.destination_of(handoff, attempt) if handoff else None
        return destination is not None and destination.transfer_mode == "consult"

    def timed_out(self, handoff_id: str, attempt: int) -> bool:
        """No outcome within HANDOFF_TRANSFER_TIMEOUT: a caller still on hold (the human's
        call lost, or a conference event that never came) is moved on like any failure."""
        handoff = self.store.get_handoff(handoff_id)
        if handoff is None or handoff.attempt_marks.get(str(attempt)) == ACCEPTED:
            return False  # the human said yes and is on their way in: their call's end decides
        if self._human_may_still_answer(handoff, attempt):
            return False  # the deadline queued with `consulting` looks again
        return self.human_unavailable(handoff_id, attempt, "timeout") is not None

    def _human_may_still_answer(self, handoff: Handoff, attempt: int) -> bool:
        """The human's call was placed less than DIAL_LONGEST ago: it may still ring
        (ring_timeout, up to 120 s) and brief them, and Twilio reports its end whatever
        the destination's method. The attempt's first deadline (HANDOFF_TRANSFER_TIMEOUT from
        the caller's hold) must not end a briefing under way."""
        started = [entry["at"] for entry in handoff.history
                   if (entry.get("detail") or {}).get("step") == CONSULTING
                   and (entry.get("detail") or {}).get("attempt") == attempt]
        if not started:
            return False
        began = datetime.fromisoformat(started[-1].replace("Z", "+00:00"))
        return (self.services.clock() - began).total_seconds() < DIAL_LONGEST

    def announcement(self, handoff_id: str) -> VoiceResponse:
        handoff = self._handoff(handoff_id)
        return consult_twiml.announcement(handoff.reason)

    # -- failing an attempt ------------------------------------------------------------
    def human_unavailable(self, handoff_id: str, attempt: int, step: str, *, move: bool = True,
                          **extra) -> VoiceResponse | None:
        """The human will not join: record why, choose where the caller goes next (the
        destination's `on_failure`, exactly as for any failed attempt), end the human's leg,
        and move the caller — through the worker (`move`), or by the TwiML returned."""
        # Planned like any failed attempt: on the call's own configuration (HandoffCore.load).
        _, configuration, conversation = self.handoffs.load(handoff_id)
        facts = {k: v for k, v in extra.items() if v not in (None, "")}

        def mutate(h: Handoff) -> VoiceResponse | None:
            if not self.undecided(h, attempt):
                return None  # decided already, or the caller is gone
            h.attempt_marks[str(attempt)] = step
            h.move_to(TRANSFERRING, self._detail(h, attempt, step, **facts), again=True)
            # The chain's one rule for where a failed attempt's caller goes next.
            twiml = self.handoffs._after_failure(
                h, configuration, conversation, {"destination": h.attempts[attempt - 1], "attempt": attempt,
                                                 "result": step})
            h.attempt_marks[f"{attempt}.next"] = str(twiml)
            if not move:
                h.attempt_marks[f"{attempt}.moved"] = "answered"
            return twiml

        _, twiml = self.handoffs.update(handoff_id, mutate)
        if twiml is None:
            return None
        if step in LIVE_LEG_FAILURES:
            self._enqueue("end_human_leg", handoff_id, attempt, "end")
        if move:
            self._enqueue("move_caller", handoff_id, attempt, "move")
        return twiml


