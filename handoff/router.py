"""One turn of the built-in router, the same for voice, webchat and SMS.

Records the user's turn, matches it against the topics, and says what to do: answer with a
reprompt, or hand off. A second miss in a row hands off to the default with `no_match`, so
nobody is left going round in circles."""
from __future__ import annotations

from dataclasses import dataclass

from .conversations import Conversations
from .handoffs import HandoffRequest
from .models import ConversationRecord
from .services import Services
from .topics import NO_MATCH, Topics

GREETING = "Hello! How can I help you today? You can ask for a person at any time."
REPROMPT = "Sorry, I didn't catch that. Could you say it another way, or ask for a person?"
CONNECTING = "Let me connect you with someone who can help."
MAX_MISSES = 2


@dataclass(frozen=True)
class Turn:
    response: str
    handoff: HandoffRequest | None = None


class Router:
    def __init__(self, services: Services, env: str = "live"):
        self.services = services
        self.env = env  # which routing configuration's topics: live, or the sandbox draft
        self.conversations = Conversations(services)

    def say(self, conversation_id: str, text: str) -> None:
        self.conversations.append(conversation_id, "transcript", {"role": "agent", "text": text})

    def turn(self, conversation_id: str, text: str | None, digits: str | None = None) -> Turn:
        heard = (text or "").strip() or (f"[pressed {digits}]" if digits else "")
        if heard:
            self.conversations.append(conversation_id, "transcript", {"role": "user", "text": heard[:10000]})
        route = Topics(self.services, self.env).route(text, digits)
        if route is None:
            misses = self._missed(conversation_id)
            if misses < MAX_MISSES:
                self.say(conversation_id, REPROMPT)
                return Turn(REPROMPT)
            request = HandoffRequest(reason=NO_MATCH, utterance=CONNECTING)
        else:
            self._reset_misses(conversation_id)
            request = HandoffRequest(destination=route.destination, reason=route.reason,
                                     utterance=route.utterance or CONNECTING,
                                     data={"topic": route.topic_id} if route.topic_id else {})
        self.say(conversation_id, request.utterance)
        return Turn(request.utterance, request)

    def agent_done(self, conversation_id: str) -> None:
        """The conversation was handed off: the bot answers it no more."""
        def done(conversation: ConversationRecord) -> None:
            conversation.agent_done = True

        self.services.store.update_conversation(conversation_id, done)

    def _missed(self, conversation_id: str) -> int:
        def bump(conversation: ConversationRecord) -> None:
            conversation.router_misses += 1

        conversation = self.services.store.update_conversation(conversation_id, bump)
        return MAX_MISSES if conversation is None else conversation.router_misses

    def _reset_misses(self, conversation_id: str) -> None:
        def reset(conversation: ConversationRecord) -> None:
            conversation.router_misses = 0

        self.services.store.update_conversation(conversation_id, reset)
