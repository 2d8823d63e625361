"""Messaging TwiML: a reply is one <Message> to the sender
(https://www.twilio.com/docs/messaging/twiml/message)."""
from __future__ import annotations

from twilio.twiml.messaging_response import MessagingResponse


def reply(text: str | None) -> MessagingResponse:
    """A <Message> with the text, or an empty <Response/> (no reply) when there is none."""
    response = MessagingResponse()
    if text:
        response.message(text[:1600])
    return response
