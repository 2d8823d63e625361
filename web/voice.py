"""Twilio voice webhooks. Every answer is 200 with TwiML: no caller meets an error page.

When Redis cannot be reached, each route answers from the last known configuration
(`Snapshot`) and logs that it did; any other failure is logged and the caller is sent to
the default destination the same way.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import re

from flask import Blueprint, Response, request
from marshmallow import ValidationError

from handoff import callback_urls, jsontext
from handoff.calls import Calls, classify
from handoff.conversations import Conversations, sip_header_state
from handoff.errors import NotFound
from handoff.handoffs import HandoffRequest, Handoffs
from handoff.models import ConversationRecord, warning
from handoff.router import GREETING, Router
from handoff.services import REDIS_ERRORS
from handoff.store import WriteBatch
from handoff.transfers import call_leg
from schemas.common import validate_header_map
from schemas.handoffs import HandoffRequestSchema
from twiml import voice as voice_twiml

from .context import public_base_url, services
from .twilio_auth import twilio_signed

log = logging.getLogger(__name__)
bp = Blueprint("voice", __name__, url_prefix="/voice")

FINAL_CALL_STATUSES = {"completed", "busy", "failed", "no-answer", "canceled"}


def twiml_response(body) -> Response:
    return Response(str(body), status=200, mimetype="text/xml")


def params() -> dict[str, str]:
    """Twilio's parameters: query string and form body. Where a name is in both, the query
    string's value is taken (request.values reads args first): it is the URL the operator
    configured (`?destination=billing`), and Twilio signs it with the form."""
    return request.values.to_dict(flat=True)


def read_request(values: dict[str, str]) -> HandoffRequest:
    """A handoff request from webhook fields; unreadable parts become warnings, not errors."""
    problems: list[dict] = []
    data = {}
    if values.get("data"):
        try:
            data = jsontext.loads(values["data"])
            if not isinstance(data, dict):
                data = {"value": data}
        except ValueError as exc:  # deep nesting and NaN too (handoff/jsontext.py)
            problems.append(warning("bad_data", f"data was not usable JSON ({exc}); kept as text in data.raw"))
            data = {"raw": values["data"][:4000]}
    headers: dict[str, str] = {}
    if values.get("sip_headers"):
        try:
            candidate = jsontext.loads(values["sip_headers"])
            if not isinstance(candidate, dict) or not all(isinstance(v, str) for v in candidate.values()):
                raise ValueError("not an object of text values")
            validate_header_map(candidate)
            headers = candidate
        except (ValueError, ValidationError) as exc:
            problems.append(warning("bad_sip_headers", f"sip_headers ignored: {exc}"))
    return HandoffRequest(
        destination=values.get("destination") or None,
        reason=(values.get("reason") or None) and values["reason"][:200],
        utterance=(values.get("utterance") or None) and values["utterance"][:2000],
        data=data,
        sip_headers=headers,
        route=(values.get("route") or None),
        warnings=problems,
    )


HANDOFF_DATA_LIMIT = 16 * 1024
HANDOFF_REQUEST = HandoffRequestSchema()  # built once: handoffData comes with voice handoffs


def read_handoff_data(raw: str | None) -> tuple[HandoffRequest, dict]:
    """ConversationRelay's handoffData: a JSON string of {destination?, reason?, utterance?,
    sip_headers?, data?, state?}, checked with the API's schema. Anything unreadable means
    the default destination and a `bad_handoff_data` warning, never a dropped caller."""
    def bad(why: str) -> tuple[HandoffRequest, dict]:
        return HandoffRequest(warnings=[warning("bad_handoff_data", why)]), {}

    if not raw:
        return bad("the agent ended the session without handoffData")
    if len(raw) > HANDOFF_DATA_LIMIT:
        return bad(f"handoffData is over {HANDOFF_DATA_LIMIT} characters")
    try:
        doc = jsontext.loads(raw)
    except ValueError as exc:
        return bad(f"handoffData is not usable JSON ({exc})")
    if not isinstance(doc, dict):
        return bad("handoffData is not a JSON object")
    state = doc.pop("state", None)
    if state is not None and not isinstance(state, dict):
        return bad("handoffData.state is not an object")
    try:
        fields = HANDOFF_REQUEST.load(doc)
    except ValidationError as exc:
        return bad(f"handoffData fields rejected: {json.dumps(exc.messages, sort_keys=True)[:300]}")
    return HandoffRequest(**fields), state or {}


def offline_transfer(values: dict[str, str], request_: HandoffRequest | None = None):
    """TwiML from the last known configuration, for when Redis is unreachable."""
    svc = services()
    return Handoffs(svc).start_offline(svc.snapshot.last_known(), request_ or read_request(values),
                                       call=values, base_url=public_base_url())


def voice_route(view):
    """Signed, and never anything but TwiML: Redis down or a bug still moves the caller."""

    @twilio_signed
    @functools.wraps(view)
    def answered(*args, **kwargs):
        values = params()
        try:
            return twiml_response(view(values, *args, **kwargs))
        except REDIS_ERRORS as exc:
            log.error("Redis unreachable (%s) on %s for call %s: answering from the configuration "
                      "snapshot", type(exc).__name__, request.path, values.get("CallSid"))
        except Exception:
            log.exception("error on %s for call %s: sending the caller to the default destination",
                          request.path, values.get("CallSid"))
        try:
            return twiml_response(offline_transfer(values))
        except Exception:
            log.exception("could not build the fallback transfer; apologising instead")
            return twiml_response(voice_twiml.apology())

    return answered


def agent_twiml(agent_url: str, conversation_id: str, shared_id: str | None = None):
    """The caller's way to the AI agent: ConversationRelay for a wss:// agent (its end
    message comes back to /voice/agent/ended), a <Redirect> for a TwiML URL."""
    if callback_urls.is_relay_agent(agent_url):
        return voice_twiml.relay(agent_url, callback_urls.agent_ended(public_base_url()),
                                 {"conversation_id": conversation_id, "shared_id": shared_id})
    return voice_twiml.redirect(agent_url)


def call_conversation(values: dict[str, str], *, batch: WriteBatch | None = None,
                      stored: ConversationRecord | None = None, **extra) -> ConversationRecord:
    """The conversation of this call (id = CallSid), recorded on first sight. With `batch`,
    `stored` is what the claim's round trip read (None: none yet), and a new one is written
    with the batch."""
    conversations = Conversations(services())
    fields = dict(channel="voice", conversation_id=values["CallSid"], from_=values.get("From"),
                  to=values.get("To"), leg=call_leg(values), env=request.args.get("env"), **extra)
    if batch is not None:
        # Should another request record this call in the few milliseconds between the read
        # and the write, the write keeps that one; this handoff is planned on what was read.
        return stored or conversations.create_with(batch, **fields)
    conversation, _ = conversations.create(**fields)
    return conversation


def transfer_call(values: dict[str, str], conversation: ConversationRecord, handoff_request: HandoffRequest,
                  batch: WriteBatch | None = None):
    """Start a handoff on this live call; the TwiML of its first attempt."""
    _, twiml = Handoffs(services()).start_voice(conversation, handoff_request, call_sid=values["CallSid"],
                                                base_url=public_base_url(), leg=call_leg(values), batch=batch)
    return twiml


def greet(call_sid: str):
    """No AI agent: the built-in topic router greets the caller and listens."""
    Router(services()).say(call_sid, GREETING)
    return voice_twiml.ask(GREETING, callback_urls.router_turn(public_base_url(), 1))


def _fingerprint(values: dict[str, str]) -> str:
    """The step a webhook delivery stands for: Twilio's idempotency token when it sent one
    (retries carry the same token), else the request's own content."""
    token = request.headers.get("I-Twilio-Idempotency-Token")
    if token:
        return "t:" + token
    content = json.dumps(sorted(values.items()))
    return "c:" + hashlib.sha256(content.encode()).hexdigest()


def _delivery_ttl() -> int:
    """How long a delivery's answer is kept for its retries: an hour under Twilio's token,
    else briefly (identical content later on is a new request that happens to look alike)."""
    return 3600 if request.headers.get("I-Twilio-Idempotency-Token") else 30


@bp.route("/call", methods=["POST", "GET"])
@voice_route
def inbound_call(values):
    svc = services()
    call_sid = values.get("CallSid")
    if not call_sid:
        return offline_transfer(values)
    state = sip_header_state(values)
    shared_id = values.get("shared_id") or state.get("x_shared_id")

    def answer() -> str:
        call_conversation(values, state=state, shared_id=shared_id)
        if svc.config.agent_url:
            return str(agent_twiml(svc.config.agent_url, call_sid, shared_id))
        return str(greet(call_sid))

    return svc.store.answer_once("call", call_sid, answer)


@bp.route("/router", methods=["POST", "GET"])
@voice_route
def router_turn(values):
    """One answer to the router's <Gather>: a handoff, or one reprompt."""
    svc = services()
    call_sid = values.get("CallSid")
    if not call_sid:
        return offline_transfer(values)
    turn_number = request.args.get("turn", "1")

    def answer() -> str:
        conversation = call_conversation(values)
        turn = Router(svc, conversation.env).turn(call_sid, values.get("SpeechResult"), values.get("Digits"))
        if turn.handoff is None:
            # Ours, from the URL Twilio was given; anything else (unsigned text cannot get
            # here, but a digit int() refuses, "²", would raise) starts the count again.
            next_turn = int(turn_number) + 1 if re.fullmatch(r"[0-9]{1,6}", turn_number) else 2
            return str(voice_twiml.ask(turn.response, callback_urls.router_turn(public_base_url(), next_turn)))
        return str(transfer_call(values, conversation, turn.handoff))

    return svc.store.answer_once("router", f"{call_sid}:{turn_number}", answer)


@bp.route("/handoff", methods=["POST", "GET"])
@voice_route
def handoff(values):
    svc = services()
    handoff_request = read_request(values)
    call_sid = values.get("CallSid")
    if not call_sid:
        return offline_transfer(values, handoff_request)

    def read_along(pipe) -> None:
        svc.config_store.queue_live_version(pipe)
        svc.store.queue_conversation_read(pipe, call_sid)

    def answer(batch, *along) -> str:
        # Two round trips in all: the idempotency claim brought the live configuration's
        # version and the call's conversation (if any); the new conversation, the handoff and
        # this answer are written together (store.answer_once).
        stored = svc.store.stored_conversation(along[1], call_sid) if batch else None
        with svc.config_store.live_version_known(*along[:1]):
            conversation = call_conversation(values, batch=batch, stored=stored, state=sip_header_state(values))
            return str(transfer_call(values, conversation, handoff_request, batch=batch))

    return svc.store.answer_once("handoff", f"{call_sid}:{_fingerprint(values)}", answer, ttl=_delivery_ttl(),
                                 read_along=read_along, batched=True)


@bp.route("/handoff/<handoff_id>/status", methods=["POST", "GET"])
@voice_route
def handoff_status(values, handoff_id):
    svc = services()
    attempt = _attempt()
    tried = [t for t in (request.args.get("tried") or "").split(",") if t]

    def answer() -> str:
        try:
            return str(Handoffs(svc).attempt_finished(handoff_id, attempt, values, tried))
        except NotFound:
            # A handoff started while Redis was down was never stored: continue its chain
            # from the destinations named in the action URL.
            return str(Handoffs(svc).attempt_finished_offline(
                svc.configuration(), handoff_id, tried, values, public_base_url()))

    try:
        return svc.store.answer_once("status", f"{handoff_id}:{attempt}", answer,
                                     ttl=svc.config.retention_seconds)
    except REDIS_ERRORS:
        log.error("Redis unreachable on the outcome of handoff %s: continuing from the snapshot", handoff_id)
        return Handoffs(svc).attempt_finished_offline(svc.snapshot.last_known(), handoff_id,
                                                      tried, values, public_base_url())


def _attempt() -> int:
    try:
        return int(request.args.get("attempt", "1"))
    except ValueError:
        return 1


def human_leg_route(on_error, what: str):
    """Webhooks of the human's leg: signed, and an error answers `on_error()`'s TwiML
    (chosen per route so that a failure never drops the caller)."""

    def wrap(view):
        @twilio_signed
        @functools.wraps(view)
        def answered(handoff_id):
            try:
                return twiml_response(view(handoff_id, _attempt(), params()))
            except Exception:
                log.exception("%s of handoff %s failed", what, handoff_id)
                return twiml_response(on_error())

        return answered

    return wrap


@bp.route("/handoff/<handoff_id>/whisper", methods=["POST", "GET"])
@human_leg_route(voice_twiml.VoiceResponse, "screening (bridging without a whisper)")
def handoff_whisper(handoff_id, attempt, values):
    """The human's leg, before the bridge (the <Dial> noun's `url`). Any trouble here
    bridges the call rather than dropping it: an empty answer connects the two legs."""
    return Handoffs(services()).screen(handoff_id, attempt, values)


@bp.route("/handoff/<handoff_id>/accept", methods=["POST", "GET"])
@human_leg_route(voice_twiml.hangup, "accept gate (refusing this leg)")
def handoff_accept(handoff_id, attempt, values):
    try:
        return Handoffs(services()).accept(handoff_id, attempt, values.get("Digits"))
    except REDIS_ERRORS:
        if (values.get("Digits") or "").strip() != "1":
            raise
        # The human accepted: bridging needs nothing from Redis (the <Dial> action records
        # the outcome), and refusing would drop the human the caller was waiting for.
        log.error("Redis unreachable at the accept gate of handoff %s: bridging as the human asked", handoff_id)
        return voice_twiml.VoiceResponse()


@bp.route("/handoff/<handoff_id>/answered", methods=["POST", "GET"])
@human_leg_route(voice_twiml.VoiceResponse, "recording the answer")
def handoff_answered(handoff_id, attempt, values):
    """Status callback of the human's leg (event `answered`): connected, not just ringing."""
    if values.get("CallStatus") in ("in-progress", "answered", None):
        Handoffs(services()).leg_answered(handoff_id, attempt)
    return voice_twiml.VoiceResponse()


@bp.route("/handoff/<handoff_id>/amd", methods=["POST"])
@human_leg_route(voice_twiml.VoiceResponse, "reading the machine check")
def handoff_amd(handoff_id, attempt, values):
    """amdStatusCallback of the human's leg (Twilio ignores the answer)."""
    Handoffs(services()).machine_checked(handoff_id, attempt, values)
    return voice_twiml.VoiceResponse()


@bp.route("/handoff/<handoff_id>/recording", methods=["POST", "GET"])
@voice_route
def handoff_recording(values, handoff_id):
    """The caller's voicemail (on_failure: voicemail): keep its URL on the handoff."""
    svc = services()
    return svc.store.answer_once("recording", handoff_id,
                                 lambda: str(Handoffs(svc).voicemail_left(handoff_id, values)))


@bp.route("/status", methods=["POST", "GET"])
@voice_route
def call_status(values):
    svc = services()
    call_sid = values.get("CallSid")
    status = values.get("CallStatus", "")
    if call_sid and status in FINAL_CALL_STATUSES:
        try:
            Calls(svc).ended(call_sid, values)
            Conversations(svc).end(call_sid)
            Handoffs(svc).call_ended(call_sid, status)
        except REDIS_ERRORS:
            # The call is over either way; Twilio ignores this answer, so no transfer TwiML.
            log.error("Redis unreachable: could not record the end (%s) of call %s", status, call_sid)
    return voice_twiml.VoiceResponse()


@bp.route("/outbound", methods=["POST", "GET"])
@voice_route
def outbound_answered(values):
    """An outbound call was answered: to its agent, else AGENT_URL, else the router. The
    machine check runs meanwhile (async AMD) and may redirect the call later."""
    svc = services()
    call_sid = values.get("CallSid")
    if not call_sid:
        return offline_transfer(values)

    def answer() -> str:
        conversation = svc.store.get_conversation(call_sid)
        options = (conversation.outbound_options if conversation else None) or {}
        agent_url = options.get("agent_url") or svc.config.agent_url
        if agent_url:
            return str(agent_twiml(agent_url, call_sid, conversation.shared_id if conversation else None))
        return str(greet(call_sid))

    # A retried delivery gets the same answer: the router's greeting is in the transcript once.
    return svc.store.answer_once("outbound", f"{call_sid}:{_fingerprint(values)}", answer, ttl=_delivery_ttl())


@bp.route("/amd", methods=["POST"])
@twilio_signed
def answering_machine():
    """Async AMD result of an outbound call: classify, then act in the background."""
    svc = services()
    values = params()
    call_sid = values.get("CallSid")
    classification = classify(values.get("AnsweredBy"))
    try:
        if call_sid and Calls(svc).classified(call_sid, classification) is not None:
            if classification in ("voicemail", "fax"):
                svc.enqueue("handoff.jobs.act_on_classification", call_sid, job_id=f"amd-{call_sid}",
                            retry=svc.job_retry())
    except REDIS_ERRORS:
        log.error("Redis unreachable: AMD result %s for call %s not recorded", classification, call_sid)
    return twiml_response(voice_twiml.VoiceResponse())


@bp.route("/agent/ended", methods=["POST"])
@voice_route
def agent_ended(values):
    """The ConversationRelay session ended (<Connect> action). With HandoffData the agent
    asked for a handoff: run it exactly like /voice/handoff. Without it and with the
    caller gone, the conversation is over; with the caller still there, nobody is left
    talking to them, so they go to the default destination."""
    svc = services()
    call_sid = values.get("CallSid")
    raw = values.get("HandoffData")
    if not raw and values.get("CallStatus") in FINAL_CALL_STATUSES:
        if call_sid:
            Conversations(svc).end(call_sid)
        return voice_twiml.VoiceResponse()
    handoff_request, state = read_handoff_data(raw)
    if not call_sid:
        return offline_transfer(values, handoff_request)

    def answer() -> str:
        conversation = call_conversation(values)
        under_way = Handoffs(svc).in_progress_for_call(call_sid)
        if under_way is not None:
            return str(under_way)
        if state:
            # The agent's state first, so header templates see what the agent learnt.
            conversation = svc.store.update_conversation(call_sid, lambda c: c.merge_state(state)) or conversation
        return str(transfer_call(values, conversation, handoff_request))

    # One answer per delivery, not per call: a later session of the same call (the caller
    # back with an agent) ending with its own handoffData is a new request.
    return svc.store.answer_once("agent-ended", f"{call_sid}:{_fingerprint(values)}", answer, ttl=_delivery_ttl())


@bp.route("/fallback", methods=["POST", "GET"])
@voice_route
def fallback(values):
    """Twilio's fallback URL: the primary answer failed, so go straight to the default."""
    log.warning("Twilio fallback for call %s (ErrorCode %s on %s)", values.get("CallSid"),
                values.get("ErrorCode"), values.get("ErrorUrl"))
    call_sid = values.get("CallSid")
    fallback_request = HandoffRequest(reason="twilio_fallback", data={
        k: values[k] for k in ("ErrorCode", "ErrorUrl") if values.get(k)})
    if not call_sid:
        return offline_transfer(values, fallback_request)
    # A retried delivery (same idempotency token) gets the first one's transfer, not a second.
    return services().store.answer_once(
        "fallback", f"{call_sid}:{_fingerprint(values)}",
        lambda: str(transfer_call(values, call_conversation(values), fallback_request)), ttl=_delivery_ttl())
