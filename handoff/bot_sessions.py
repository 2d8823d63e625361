"""Bot sessions: webchat and SMS conversations with the built-in router, until a handoff."""
from __future__ import annotations

from .conversations import Conversations
from .errors import Conflict
from .handoffs import Handoffs
from .models import ABANDONED, CLAIMED, FINAL_STATES, PENDING, ConversationRecord
from .router import GREETING, Router
from .services import Services

SMS_BODY_LIMIT = 1600  # an inbound Body's limit (https://www.twilio.com/docs/messaging/guides/webhook-request)
SMS_EMPTY = "I didn't get any text. What can I help you with? Reply AGENT to reach a person."
SMS_MEDIA_ONLY = "I can only read text for now. Please tell me in words what you need."
SMS_WAITING = "Thanks, a member of our team will reply here shortly."
# Texts Twilio takes as an opt-out on long codes: it confirms them itself and sends nothing
# more to the sender until they opt back in ("Advanced Opt-Out",
# https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out). Matched whole.
OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})


class Chat:
    def __init__(self, services: Services):
        self.services = services
        self.conversations = Conversations(services)
        self.router = Router(services)

    def create(self, shared_id: str | None = None, state: dict | None = None, *,
               channel: str = "webchat", integration_attributes: dict | None = None,
               polyai_chat: dict | None = None) -> dict:
        """A new bot session; a PolyAI widget's integration attributes, variant and language
        codes are kept on the conversation."""
        conversation, _ = self.conversations.create(channel=channel, shared_id=shared_id, state=state,
                                                    integration_attributes=integration_attributes,
                                                    polyai_chat=polyai_chat)
        self.router.say(conversation.id, GREETING)
        return {"conversation_id": conversation.id, "response": GREETING}

    def respond(self, conversation_id: str, message: str) -> dict:
        conversation = self.conversations.load(conversation_id)
        if conversation.ended_at or conversation.agent_done:
            raise Conflict(f"conversation {conversation_id!r} has ended; start a new one")
        turn = self.router.turn(conversation_id, message)
        body = {"conversation_id": conversation_id, "response": turn.response, "handoff": None,
                "end_conversation": False}
        if turn.handoff is not None:
            handoff = Handoffs(self.services).start(conversation_id, turn.handoff, base_url=None)
            self.router.agent_done(conversation_id)
            body["handoff"] = {"id": handoff.id, "destination": (handoff.destination or {}).get("name"),
                               "reason": handoff.reason}
            body["end_conversation"] = True
        return body

    def close(self, conversation_id: str) -> dict:
        """Ends the bot session only. A pending handoff stays pending for a connector:
        PolyAI's widget closes the bot session as soon as it routes to live chat. It is
        abandoned after HANDOFF_PENDING_TIMEOUT, or when a connector says the user left."""
        self.conversations.load(conversation_id)
        self.conversations.end(conversation_id)
        return {"success": True}


class Sms:
    """One open conversation per (From, To) pair; a handoff leaves it with a person."""

    def __init__(self, services: Services):
        self.services = services
        self.conversations = Conversations(services)
        self.router = Router(services)

    def _thread(self, sender: str, recipient: str) -> ConversationRecord:
        store = self.services.store
        conversation_id = store.sms_thread(sender, recipient)
        conversation = store.get_conversation(conversation_id) if conversation_id else None
        if conversation is not None and not conversation.ended_at:
            latest = store.newest_handoff_for_conversation(conversation.id)
            if not (conversation.agent_done and (latest is None or latest.state in FINAL_STATES)):
                return conversation
            self.conversations.end(conversation.id)  # the person is done: the next text starts afresh
        conversation, _ = self.conversations.create(channel="sms", from_=sender, to=recipient)
        store.remember_sms_thread(sender, recipient, conversation.id)
        return conversation

    def opted_out(self, sender: str, recipient: str) -> None:
        """The sender opted out: no reply can reach them, so their open thread ends and a
        handoff waiting for (or held by) a person is `abandoned`, as when a user leaves."""
        store = self.services.store
        conversation_id = store.sms_thread(sender, recipient)
        conversation = store.get_conversation(conversation_id) if conversation_id else None
        if conversation is None or conversation.ended_at:
            return
        latest = store.newest_handoff_for_conversation(conversation.id)
        if latest is not None and latest.state in (PENDING, CLAIMED):
            def abandon(h) -> None:
                if h.state in (PENDING, CLAIMED):
                    h.move_to(ABANDONED, {"reason": "opted_out"})

            Handoffs(self.services).update(latest.id, abandon)
        self.conversations.end(conversation.id)

    def incoming(self, sender: str, recipient: str, body: str | None, media: int) -> str | None:
        """The reply to one inbound text, or None for no reply (a person has the thread, or
        the sender opted out)."""
        text = (body or "").strip()
        if text.upper() in OPT_OUT_KEYWORDS:
            self.opted_out(sender or "unknown", recipient or "unknown")
            return None
        conversation = self._thread(sender or "unknown", recipient or "unknown")
        if conversation.agent_done:
            if text:
                self.conversations.append(conversation.id, "transcript",
                                          {"role": "user", "text": text[:SMS_BODY_LIMIT]})
            latest = self.services.store.newest_handoff_for_conversation(conversation.id)
            return SMS_WAITING if latest is not None and latest.state == PENDING else None
        if not text:
            return SMS_MEDIA_ONLY if media else SMS_EMPTY
        turn = self.router.turn(conversation.id, text[:SMS_BODY_LIMIT])
        if turn.handoff is not None:
            Handoffs(self.services).start(conversation.id, turn.handoff, base_url=None)
            self.router.agent_done(conversation.id)
        return turn.response


__all__ = ["Chat", "Sms", "CLAIMED"]
