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


@bp.route("/incoming", methods=["POST"])
@twilio_signed
def incoming():
    values = request.values
    try:
        media = int(values.get("NumMedia") or 0)
    except ValueError:
        media = 0
    try:
        text = Sms(services()).incoming(values.get("From"), values.get("To"), values.get("Body"), media)
    except Exception:
        # Never an error page to Twilio: the sender gets a plain apology instead.
        log.exception("SMS from %s could not be handled", values.get("From"))
        text = SORRY
    return Response(str(reply(text)), mimetype="text/xml")
