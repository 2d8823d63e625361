"""Twilio's callbacks of consult transfers, under /voice/handoff/<id>/consult/ (signed).

The caller's `<Dial><Conference>` action and the conference's events; the human's call:
its TwiML (whisper, accept gate), status callback and answering-machine result; and the
announcement of `intro: public`. The steps themselves are `handoff.consult.Consults`.
"""
from __future__ import annotations

import functools
import logging

from flask import Blueprint

from handoff.consult import Consults
from handoff.errors import NotFound
from twiml import voice as voice_twiml

from .context import services
from .twilio_auth import twilio_signed
from .voice import _attempt, human_leg_route, params, twiml_response, voice_route

log = logging.getLogger(__name__)
bp = Blueprint("consult", __name__, url_prefix="/voice/handoff/<handoff_id>/consult")


def event_route(what: str):
    """A notification from Twilio (its answer is ignored): signed; trouble is logged and
    answered with an empty document, never an error page."""

    def wrap(view):
        @twilio_signed
        @functools.wraps(view)
        def noted(handoff_id):
            try:
                view(handoff_id, _attempt(), params())
            except NotFound:
                log.warning("%s for unknown handoff %s", what, handoff_id)
            except Exception:
                log.exception("%s of handoff %s failed", what, handoff_id)
            return twiml_response(voice_twiml.VoiceResponse())

        return noted

    return wrap


@bp.route("/status", methods=["POST", "GET"])
@voice_route
def caller_dial_ended(values, handoff_id):
    """The caller's <Dial><Conference> returned. Trouble here sends the caller to the
    default destination (voice_route), never into silence."""
    svc = services()
    attempt = _attempt()
    return svc.store.answer_once("consult-status", f"{handoff_id}:{attempt}",
                                 lambda: Consults(svc).caller_dial_ended(handoff_id, attempt, values),
                                 ttl=svc.config.retention_seconds)


@bp.route("/conference", methods=["POST"])
@event_route("conference event")
def conference_event(handoff_id, attempt, values):
    Consults(services()).conference_event(handoff_id, attempt, values)


@bp.route("/whisper", methods=["POST", "GET"])
@human_leg_route(voice_twiml.hangup, "consult briefing (ending the human's leg; the caller moves on)")
def whisper(handoff_id, attempt, values):
    return Consults(services()).whisper(handoff_id, attempt, values)


@bp.route("/accept", methods=["POST", "GET"])
@human_leg_route(voice_twiml.hangup, "consult accept gate (ending the human's leg; the caller moves on)")
def accept(handoff_id, attempt, values):
    svc = services()
    return svc.store.answer_once("consult-accept", f"{handoff_id}:{attempt}",
                                 lambda: str(Consults(svc).accept(handoff_id, attempt, values.get("Digits"))))


@bp.route("/call", methods=["POST"])
@event_route("status of the human's call")
def human_call_status(handoff_id, attempt, values):
    Consults(services()).human_call_status(handoff_id, attempt, values)


@bp.route("/amd", methods=["POST"])
@event_route("answering-machine result of the human's call")
def answering_machine(handoff_id, attempt, values):
    Consults(services()).answering_machine(handoff_id, attempt, values)


@bp.route("/announce", methods=["POST", "GET"])
@human_leg_route(voice_twiml.VoiceResponse, "consult announcement (skipped)")
def announcement(handoff_id, attempt, values):
    return Consults(services()).announcement(handoff_id)
