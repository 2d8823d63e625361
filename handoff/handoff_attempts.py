"""Following a live call's attempts: Twilio's callbacks, the human's leg, timeouts, the call's end."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from twilio.twiml.voice_response import VoiceResponse

from twiml import voice as voice_twiml

from . import callback_urls
from .callback_reading import int_or_none, is_machine, read_callback
from .errors import NotFound
from .handoff_core import HandoffCore
from .models import (
    ABANDONED,
    COMPLETED,
    CONNECTED,
    FAILED,
    FINAL_STATES,
    REQUESTED,
    TRANSFERRING,
    ConversationRecord,
    Handoff,
)
from .snapshot import RoutingTable
from .store import PENDING_DEADLINE
from .transfers import call_leg, next_destination, whisper_text

log = logging.getLogger(__name__)


VOICEMAIL_PROMPT = "Sorry, nobody could take your call. Please leave a message after the tone."


def timed_out_too_soon(h: Handoff, attempt: int, outcome: str) -> bool:
    """The sweep failed this attempt for want of an outcome (`timeout`), and the outcome came
    after all, a failure: the caller is still on the call (a REFER's final NOTIFY can come
    minutes later, from a PBX queue). The chain goes on as if it had come in time; hanging
    up would drop a caller who is still waiting."""
    detail = (h.history[-1].get("detail") or {}) if h.history else {}
    return (h.state == FAILED and outcome == FAILED and detail.get("reason") == "timeout"
            and detail.get("attempt") == attempt)


def catch_up(h: Handoff, configuration: RoutingTable, attempt: int, tried: list[str]) -> None:
    """Record the attempts the call made while Redis was unreachable. Their callbacks were
    answered from the snapshot (`attempt_finished_offline`), which moved the caller on
    without a word to the stored handoff: its callback for a later attempt would otherwise
    be read as a stale one, and the caller hung up on instead of meeting the rest of the
    chain. Only a chain the URL shows growing from the stored one is taken."""
    known = len(h.attempts)
    if not known < attempt == len(tried) or tried[:known] != h.attempts:
        return
    if h.state in FINAL_STATES and not timed_out_too_soon(h, known, FAILED):
        return  # ended for good meanwhile (the caller left, or a human answered)
    for number in range(known + 1, attempt + 1):
        destination = configuration.by_id().get(tried[number - 1])
        h.attempts.append(tried[number - 1])
        if destination is not None:
            h.destination = destination.summary()
        h.move_to(TRANSFERRING, {"destination": tried[number - 1], "attempt": number, "after": {
            "destination": tried[number - 2], "attempt": number - 1, "result": "unrecorded"}}, again=True)


class HandoffAttempts(HandoffCore):
    """Each callback records its attempt's outcome and answers where the caller goes next."""

    def expire_due(self, limit: int = 500) -> int:
        """Fail every transfer whose deadline passed with no outcome, and abandon every
        chat/SMS handoff nobody claimed in time; returns how many."""
        due = self.store.due_transfers(self.services.clock().timestamp(), limit)
        expired = 0
        for member, _ in due:
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

    def attempt_finished(self, handoff_id: str, attempt: int, params: dict[str, str],
                         chain: list[str] | None = None) -> VoiceResponse:
        """A <Refer>/<Dial> action callback: record the outcome, continue the chain.
        `chain` is the destinations tried as the callback URL carries them
        (handoff/callback_urls.py)."""
        result = read_callback(params)
        _, configuration, conversation = self.load(handoff_id)

        def mutate(h: Handoff) -> VoiceResponse | None:
            catch_up(h, configuration, attempt, chain or [])
            if len(h.attempts) != attempt:
                return None  # an earlier attempt's retried or late callback changes nothing
            if h.state in FINAL_STATES and not timed_out_too_soon(h, attempt, result.outcome):
                return None  # already handled
            tried = h.attempts[-1]
            detail = {"destination": tried, "attempt": attempt, "result": result.result}
            if result.sip_code is not None:
                detail["sip_code"] = result.sip_code
            if params.get("DialCallDuration"):
                detail["duration"] = int_or_none(params.get("DialCallDuration"))
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

    def _after_failure(
        self, h: Handoff, configuration: RoutingTable, conversation: dict, detail: dict
    ) -> VoiceResponse:
        """Where the caller goes when an attempt failed: the failed destination's `on_failure`."""
        failed = configuration.by_id().get(detail["destination"])
        disposition = failed.on_failure if failed else "next"
        agent_url = self.services.config.agent_url
        if disposition == "return_to_agent" and agent_url and not callback_urls.is_relay_agent(agent_url):
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
        return self.planner(configuration).attempt(
            h, next_destination(configuration, h.attempts), conversation, failed=detail
        )

    def attempt_finished_offline(
        self, configuration: RoutingTable, handoff_id: str, tried: list[str], params: dict[str, str], base_url: str
    ) -> VoiceResponse:
        """The stateless continuation of a handoff that was never stored."""
        result = read_callback(params)
        if result.outcome == "redirected":
            return voice_twiml.VoiceResponse()
        if result.outcome != FAILED:
            return voice_twiml.hangup()
        conversation = ConversationRecord.for_call(params)
        handoff = Handoff(
            id=handoff_id,
            conversation_id=conversation.id,
            attempts=list(tried),
            callback_base=base_url,
            call_sid=params.get("CallSid"),
            leg=call_leg(params),
        )
        handoff.move_to(TRANSFERRING)
        return self.planner(configuration, offline=True).attempt(
            handoff, next_destination(configuration, handoff.attempts), conversation.public()
        )

    def screen(self, handoff_id: str, attempt: int, params: dict[str, str]) -> VoiceResponse:
        """The human's leg answered (<Dial> noun `url`): check for a machine, whisper,
        and ask for acceptance, as the destination says."""
        handoff, configuration, conversation = self.load(handoff_id)
        destination = (
            configuration.by_id().get(handoff.attempts[attempt - 1]) if len(handoff.attempts) >= attempt else None
        )
        if destination and destination.detect_voicemail and is_machine(params.get("AnsweredBy")):
            self.update(handoff_id, lambda h: h.attempt_marks.__setitem__(str(attempt), "voicemail"))
            return voice_twiml.hangup()
        mode = destination.transfer_mode if destination else "blind"
        if mode == "warm_accept":
            text = whisper_text(handoff, conversation, handoff.sip_headers)
            return voice_twiml.whisper(
                text, callback_urls.handoff_step(handoff.callback_base or "", handoff.id, "accept", attempt)
            )
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
            self.services.enqueue(
                "handoff.jobs.end_call_leg", leg, job_id=f"end-leg-{leg}", retry=self.services.job_retry()
            )

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
        recording = {"url": params.get("RecordingUrl"), "duration": int_or_none(params.get("RecordingDuration"))}

        def mutate(h: Handoff) -> None:
            if h.state in FINAL_STATES or not recording["url"]:
                return
            h.data = {**h.data, "voicemail": recording}
            h.move_to(COMPLETED, {"voicemail": recording["url"]})

        self.update(handoff_id, mutate)
        return voice_twiml.goodbye("Thank you. Your message has been recorded. Goodbye.")

    def expire(self, handoff_id: str, attempt: int) -> bool:
        """A transfer still waiting for its outcome after the timeout has failed. (A
        consult attempt's timeout is the consult flow's: `Handoffs.expire` sends it there.)"""

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
