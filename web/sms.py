"""Twilio Messaging webhook: inbound texts go through the router; answers are <Message>."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, request

from handoff.bot_sessions import Sms
from twiml.messaging import reply

from .context import services
from .twilio_auth import twilio_signed

log = logging.getLogger(__name__)
bp = Blueprint("sms", __name__, url_prefix="/sms")
SORRY = "Sorry, something went wrong on our side. Please try again in a minute."
# How long a text's reply is kept for a retried delivery of it (the same MessageSid).
RETRY_WINDOW = 3600


@bp.route("/incoming", methods=["POST"])
@twilio_signed
def incoming():
    values = request.values
    try:
        media = int(values.get("NumMedia") or 0)
    except ValueError:
        media = 0
    svc = services()

    def answer() -> str:
        return str(reply(Sms(svc).incoming(values.get("From"), values.get("To"), values.get("Body"), media)))

    message_sid = values.get("MessageSid")
    try:
        # One text is one turn: Twilio may deliver its webhook again (connection overrides'
        # retries), and a second run would count as the sender's next message.
        body = svc.store.answer_once("sms", message_sid, answer, ttl=RETRY_WINDOW) if message_sid else answer()
    except Exception:
        # Never an error page to Twilio: the sender gets a plain apology instead.
        log.exception("SMS from %s could not be handled", values.get("From"))
        body = str(reply(SORRY))
    return Response(body, mimetype="text/xml")
