"""Outbound calls with answering-machine detection (`POST /v1/calls`, docs/api.md)."""
from __future__ import annotations

import logging

from twilio.base.exceptions import TwilioRestException

from . import callback_urls
from .conversations import Conversations
from .errors import Unavailable, ValidationFailed
from .models import ConversationRecord
from .services import Services
from .twilio_rest import TwilioUnreachable, require_credentials, twilio_client, worth_retrying

log = logging.getLogger(__name__)

# AnsweredBy values (Twilio: "Answering Machine Detection",
# https://www.twilio.com/docs/voice/answering-machine-detection) → the conversation's classification.
CLASSIFICATIONS = {"human": "human", "fax": "fax", "unknown": "unknown"}
# SIP answers that mean the number does not exist or is not reachable any more.
NOT_IN_SERVICE_CODES = {404, 410, 484, 604}


def classify(answered_by: str | None) -> str:
    value = (answered_by or "unknown").strip()
    if value.startswith("machine"):
        return "voicemail"
    return CLASSIFICATIONS.get(value, "unknown")


class Calls:
    def __init__(self, services: Services):
        self.services = services

    def place(self, fields: dict, base_url: str) -> dict:
        conversations = Conversations(self.services)
        require_credentials(self.services.config, "outbound calls")
        # Redis first: the call is recorded only after Twilio places it, and with Redis down
        # the answer is a 503 'try again', which must not leave a callee rung by a call
        # nothing records (and rung again by the retry).
        self.services.store.ping()
        try:
            call = twilio_client(self.services.config).calls.create(
                to=fields["to"], from_=fields["from_"], url=callback_urls.outbound_answered(base_url), method="POST",
                status_callback=callback_urls.call_status(base_url), status_callback_method="POST",
                # DetectMessageEnd: a machine is reported after its greeting, when a
                # message left now is heard whole. Async: the callee hears no silence.
                machine_detection="DetectMessageEnd", async_amd="true",
                async_amd_status_callback=callback_urls.outbound_amd(base_url), async_amd_status_callback_method="POST",
            )
        except TwilioUnreachable as exc:
            # Said here: the generic handler would blame the store (ConnectionError is an OSError).
            log.warning("Twilio's REST API unreachable placing a call: %s", exc.msg)
            raise Unavailable(f"{exc.msg}; the call was not placed, try again shortly") from None
        except TwilioRestException as exc:
            if not worth_retrying(exc):
                raise ValidationFailed(f"Twilio refused the call: {exc.msg}",
                                       {"to": [f"Twilio error {exc.code}: {exc.msg}"]}) from None
            # A 5xx, or a 429 (Twilio: never processed, safe to retry): the request was fine.
            raise Unavailable(f"Twilio could not place the call now: {exc.msg}") from None
        conversation, _ = conversations.create(
            channel="voice", conversation_id=call.sid, from_=fields["from_"], to=fields["to"],
            shared_id=fields.get("shared_id"), state=fields.get("state"),
            leg="sip" if fields["to"].startswith("sip") else "pstn")

        def outbound(c: ConversationRecord) -> None:
            c.direction = "outbound"
            c.classification = None
            c.outbound_options = {"agent_url": fields.get("agent_url"), "on_voicemail": fields.get("on_voicemail")}

        conversation = self.services.store.update_conversation(conversation.id, outbound)
        return conversations.present(conversation)

    def classified(self, call_sid: str, classification: str) -> ConversationRecord | None:
        """Record what answered; returns the conversation when it needs acting on: only the
        first result of a call (a retried callback acted on again would restart the message
        left on a voicemail box)."""
        first: list[bool] = []

        def mutate(conversation: ConversationRecord) -> None:
            first[:] = [conversation.classification is None]
            conversation.classification = conversation.classification or classification

        conversation = self.services.store.update_conversation(call_sid, mutate)
        return conversation if first and first[0] else None

    def ended(self, call_sid: str, params: dict[str, str]) -> None:
        """A call that never connected: an unreachable number is `not_in_service`."""
        conversation = self.services.store.get_conversation(call_sid)
        if not conversation or conversation.direction != "outbound" or conversation.classification:
            return
        try:
            code = int(params.get("SipResponseCode") or 0)
        except ValueError:
            code = 0
        if params.get("CallStatus") == "failed" or code in NOT_IN_SERVICE_CODES:
            self.classified(call_sid, "not_in_service")
