"""PolyAI-shaped routes: a widget or connector written against PolyAI's Chat, Handoff and
Conversations APIs works here after changing only its base URL.

Paths, bodies, status codes and error envelopes are PolyAI's own (its OpenAPI documents in
the public repository PolyAI-LDN/polyai-mintlify-doc; copies in tests/data/polyai/). The
native /v1 routes keep their own shapes."""
from __future__ import annotations

import logging
import re
import uuid
from datetime import datetime

from flask import Blueprint, jsonify, request
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from werkzeug.exceptions import HTTPException

from handoff import polyai
from handoff.bot_sessions import Chat
from handoff.errors import Conflict, NotFound, ServiceError, TooManyRequests
from handoff.paging import decode_cursor
from handoff.services import REDIS_ERRORS

from . import throttling
from .context import matching_key, services

log = logging.getLogger(__name__)

bp = Blueprint("polyai", __name__)

PREFIX = "/<any(v1, v3):version>/<account_id>/<project_id>"
CHANNELS = ("webchat", "whatsapp", "sms", "api")
# Which of our channels a PolyAI chat channel becomes (handoffs know voice, webchat, sms).
OUR_CHANNEL = {"webchat": "webchat", "whatsapp": "webchat", "api": "webchat", "sms": "sms"}


class PolyAIError(Exception):
    """An error answered in PolyAI's envelope for the route it happened on."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _is_handoff_state() -> bool:
    return (request.endpoint or "").endswith("handoff_state")


def _render(error: PolyAIError):
    if _is_handoff_state():
        # The Handoff API's HandoffError: just a message.
        return jsonify(error_message=error.message), error.status
    # The Chat and Conversations APIs' Error envelope; its error_id is the request's
    # X-PolyAI-Correlation-Id, which the answer carries too.
    error_id = str(uuid.uuid4())
    body = jsonify(success=False, error=error.message, error_id=error_id, error_code=error.code,
                   error_message=error.message, data=None)
    body.headers["X-PolyAI-Correlation-Id"] = error_id
    return body, error.status


@bp.errorhandler(PolyAIError)
def polyai_error(error: PolyAIError):
    return _render(error)


@bp.errorhandler(ServiceError)
def service_error(error: ServiceError):
    if isinstance(error, NotFound):
        return _render(PolyAIError(404, "CONVERSATION_NOT_FOUND", error.message))
    if isinstance(error, Conflict):
        return _render(PolyAIError(400, "CONVERSATION_ENDED", error.message))
    if isinstance(error, TooManyRequests):
        # The failed-key throttle (web/throttling.py): 429 with Retry-After, as on /v1.
        body, status = _render(PolyAIError(429, "TOO_MANY_REQUESTS", error.message))
        return body, status, {"Retry-After": str(error.retry_after)}
    if error.status >= 500:
        return _render(PolyAIError(error.status, "UNAVAILABLE", error.message))
    return _render(PolyAIError(400, "BAD_REQUEST", error.message))


@bp.errorhandler(413)
def too_large(_error):
    return _render(PolyAIError(413, "PAYLOAD_TOO_LARGE", "the body is over 1 MiB"))


@bp.errorhandler(Exception)
def unexpected(error: Exception):
    if isinstance(error, HTTPException):
        code = re.sub(r"[^A-Z0-9]+", "_", (error.name or "error").upper()).strip("_")
        return _render(PolyAIError(error.code or 400, code, error.description or error.name))
    if isinstance(error, REDIS_ERRORS):
        log.error("Redis unreachable on %s: %s", request.path, error)
        return _render(PolyAIError(503, "UNAVAILABLE", "the store is unreachable; try again shortly"))
    log.exception("unexpected error on %s", request.path)
    return _render(PolyAIError(500, "INTERNAL_ERROR", "unexpected error; it was logged"))


@bp.before_request
def require_key_and_project():
    """PolyAI's headers: X-API-KEY (any case: HTTP header names are case-insensitive) or
    X-TOKEN, carrying one of HANDOFF_API_KEYS; then the account and project, if pinned."""
    config = services().config
    given = [key for key in (request.headers.get("X-API-Key", ""), request.headers.get("X-TOKEN", "")) if key]
    if given:
        throttling.refuse_if_throttled()
    if all(matching_key(candidate) is None for candidate in given):
        # One count with /v1's and the sign-in page's: the same keys open all three. A
        # request with a different guess in each header tried two keys: both count.
        for _ in set(given):
            throttling.key_failed()
        raise PolyAIError(401, "UNAUTHORIZED", "a valid API key is required (X-API-KEY or X-TOKEN)")
    args = request.view_args or {}
    if config.polyai_account_id and args.get("account_id") not in _pinned(config.polyai_account_id):
        raise PolyAIError(404, "ACCOUNT_NOT_FOUND", "Account ID does not exist.")
    if config.polyai_project_id and args.get("project_id") not in _pinned(config.polyai_project_id):
        raise PolyAIError(404, "PROJECT_NOT_FOUND", "Project ID does not exist.")


def _pinned(setting: str) -> set[str]:
    """POLYAI_ACCOUNT_ID / POLYAI_PROJECT_ID, comma-separated: PolyAI accepts an account or
    project in its slug form and its prefixed form (ws-…, PROJECT-…) alike."""
    return {part.strip() for part in setting.split(",") if part.strip()}


# -- parsing --------------------------------------------------------------------------
class CreateChatRequest(Schema):
    class Meta:
        unknown = EXCLUDE  # a widget may send more than we use; PolyAI's schema allows it

    integration_attributes = fields.Dict(load_default=dict)
    variant_id = fields.String(load_default=None, validate=validate.Length(max=200))
    channel = fields.String(load_default="webchat", validate=validate.OneOf(CHANNELS))
    asr_lang_code = fields.String(load_default=None, validate=validate.Length(max=35))
    tts_lang_code = fields.String(load_default=None, validate=validate.Length(max=35))


class RespondChatRequest(Schema):
    class Meta:
        unknown = EXCLUDE

    conversation_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    message = fields.String(load_default="", validate=validate.Length(max=4000))


class CloseChatRequest(Schema):
    class Meta:
        unknown = EXCLUDE

    conversation_id = fields.String(required=True, validate=validate.Length(min=1, max=200))


def _body(schema: Schema, *, optional: bool = False) -> dict:
    raw = request.get_data()
    if not raw.strip() and optional:
        data = {}
    else:
        data = request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        raise PolyAIError(400, "INVALID_REQUEST_BODY", "the body must be a JSON object")
    try:
        return schema.load(data)
    except ValidationError as exc:
        problems = "; ".join(f"{name}: {' '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}"
                             for name, msgs in sorted(exc.messages.items()))
        raise PolyAIError(400, "INVALID_REQUEST_BODY", problems) from None


def _chat_only(version: str) -> None:
    if version != "v1":
        raise PolyAIError(404, "NOT_FOUND", f"no route {request.path}")


def _shared_id(value) -> str | None:
    """The conversation's shared id from `integration_attributes.shared_id`. PolyAI's schema
    allows any object there: a number is the id as text; anything else that is not text
    (an object, a list, a bool) is kept with the attributes but is no shared id."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    if not 0 < len(value) <= 200:
        raise PolyAIError(400, "INVALID_REQUEST_BODY", "integration_attributes.shared_id: text of 1 to 200 characters")
    return value


# -- Chat API ---------------------------------------------------------------------------
@bp.post(PREFIX + "/chat/create")
def chat_create(version, account_id, project_id):
    _chat_only(version)
    fields_ = _body(CreateChatRequest(), optional=True)
    attributes = fields_["integration_attributes"]
    shared_id = _shared_id(attributes.get("shared_id"))
    polyai_chat = {k: fields_[k] for k in ("variant_id", "channel", "asr_lang_code", "tts_lang_code")
                   if fields_[k] is not None}
    created = Chat(services()).create(shared_id, channel=OUR_CHANNEL[fields_["channel"]],
                                      integration_attributes=attributes, polyai_chat=polyai_chat)
    return jsonify(conversation_id=created["conversation_id"], response=created["response"])


@bp.post(PREFIX + "/chat/respond")
def chat_respond(version, account_id, project_id):
    _chat_only(version)
    fields_ = _body(RespondChatRequest())
    answer = Chat(services()).respond(fields_["conversation_id"], fields_["message"])
    body = {"conversation_id": answer["conversation_id"], "response": answer["response"],
            "end_conversation": answer["end_conversation"]}
    if answer["handoff"]:
        # PolyAI's handoff object: destination and reason, each a string when present.
        body["handoff"] = {k: answer["handoff"][k] for k in ("destination", "reason") if answer["handoff"][k]}
    return jsonify(body)


@bp.put(PREFIX + "/chat/close")
def chat_close(version, account_id, project_id):
    _chat_only(version)
    fields_ = _body(CloseChatRequest())
    return jsonify(Chat(services()).close(fields_["conversation_id"]))


# -- Handoff API ------------------------------------------------------------------------
@bp.get(PREFIX + "/handoff_state")
def handoff_state(version, account_id, project_id):
    conversation_id, shared_id = request.args.get("id"), request.args.get("shared_id")
    if not conversation_id and not shared_id:
        raise PolyAIError(400, "BAD_REQUEST", "Either id or shared_id must be provided.")
    try:
        return jsonify(polyai.handoff_state(services(), conversation_id, shared_id))
    except NotFound:
        raise PolyAIError(404, "NOT_FOUND", "No handoff state found.") from None


# -- Conversations API v3 ---------------------------------------------------------------
def _time(name: str) -> datetime | None:
    text = request.args.get(name)
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PolyAIError(400, "INVALID_QUERY_PARAMETER", f"{name}: not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise PolyAIError(400, "INVALID_QUERY_PARAMETER", f"{name}: give a time zone (e.g. Z)")
    return parsed


BOOLEAN = re.compile(r"^(true|false)$", re.IGNORECASE)
# PolyAI's environments (its `client_env`, default live); ours are live and sandbox, so a
# pre-release listing is empty.
CLIENT_ENVS = ("sandbox", "pre-release", "live")


def _retrieval_mode() -> dict[str, str]:
    """PolyAI's retrieval modes, checked by its rules: `query_type` (with `query`) or
    `sample`, not both, each within a `start_time`..`end_time` window. Transcript search
    is done here; semantic search and random sampling are refused rather than ignored (a
    client would otherwise take every conversation for its results)."""
    args = request.args
    query_type, sample, query, turn_type = (args.get(name) for name in ("query_type", "sample", "query", "turn_type"))
    if query_type is None and sample is None:
        return {}
    if query_type is not None and query_type not in ("transcript", "semantic"):
        raise PolyAIError(400, "INVALID_QUERY_PARAMETER", "query_type: transcript or semantic")
    if sample is not None and sample != "random":
        raise PolyAIError(400, "INVALID_QUERY_PARAMETER", "sample: random")
    if query_type and sample:
        raise PolyAIError(400, "INVALID_QUERY_PARAMETER", "give query_type or sample, not both")
    if query_type and not query:
        raise PolyAIError(400, "INVALID_QUERY_PARAMETER", "query: required with query_type")
    if turn_type is not None and turn_type not in ("user", "agent"):
        raise PolyAIError(400, "INVALID_QUERY_PARAMETER", "turn_type: user or agent")
    if not args.get("start_time") or not args.get("end_time"):
        raise PolyAIError(400, "INVALID_QUERY_PARAMETER", "start_time and end_time: required with query_type or sample")
    if query_type != "transcript":
        raise PolyAIError(400, "UNSUPPORTED_RETRIEVAL_MODE",
                          f"{'query_type=semantic' if query_type else 'sample=random'} is not available here; "
                          "query_type=transcript is")
    return {"query": query, **({"turn_type": turn_type} if turn_type else {})}


@bp.get(PREFIX + "/conversations")
def list_conversations(version, account_id, project_id):
    if version != "v3":
        raise PolyAIError(404, "NOT_FOUND", f"no route {request.path}")
    try:
        limit = int(request.args.get("limit", 1000))
    except ValueError:
        limit = 0
    if limit < 1:
        raise PolyAIError(400, "INVALID_QUERY_PARAMETER", "limit: an integer of 1 or more")
    # PolyAI's OpenAPI document pages at most 1000; its guide allows asking for up to 5000.
    limit = min(limit, 1000)
    try:
        offset = int(request.args.get("offset", 0))
    except ValueError:
        offset = -1
    if offset < 0:
        raise PolyAIError(400, "INVALID_QUERY_PARAMETER", "offset: an integer of 0 or more")
    in_progress_text = request.args.get("in_progress")
    if in_progress_text is not None and not BOOLEAN.match(in_progress_text):
        raise PolyAIError(400, "INVALID_QUERY_PARAMETER", "in_progress: true or false")
    cursor = request.args.get("cursor")
    try:
        decode_cursor(cursor)
    except ServiceError:
        raise PolyAIError(400, "INVALID_CURSOR", "cursor: not a cursor this service issued") from None
    client_env = request.args.get("client_env") or "live"
    if client_env not in CLIENT_ENVS:
        raise PolyAIError(400, "INVALID_QUERY_PARAMETER", "client_env: one of " + ", ".join(CLIENT_ENVS))
    retrieval = _retrieval_mode()
    variant_id, variant_name = request.args.get("variant_id"), request.args.get("variant_name")
    if variant_id and variant_name:
        raise PolyAIError(400, "INVALID_QUERY_PARAMETER", "give variant_id or variant_name, not both")
    channels = [c for value in request.args.getlist("channel") for c in value.split(",") if c]
    return jsonify(polyai.list_conversations(
        services(), account_id=account_id, project_id=project_id, limit=limit, cursor=cursor,
        client_env=client_env, offset=offset, variant_id=variant_id or None, variant_name=variant_name or None,
        search=retrieval.get("query"), turn_type=retrieval.get("turn_type"),
        start_time=_time("start_time"), end_time=_time("end_time"), channels=channels,
        in_progress=None if in_progress_text is None else in_progress_text.lower() == "true"))
