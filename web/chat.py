"""/v1 chat and topics: the built-in router's own API."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from handoff.bot_sessions import Chat
from handoff.topics import Topics
from schemas.chat import ChatClose, ChatCreate, ChatRespond, TopicInput

from .api import body, patch_schema, require_api_key
from .context import api_actor, services

bp = Blueprint("chat", __name__, url_prefix="/v1")
bp.before_request(require_api_key)


@bp.post("/chat/create")
def chat_create():
    fields = body(ChatCreate())
    return jsonify(Chat(services()).create(fields["shared_id"], fields["state"])), 201


@bp.post("/chat/respond")
def chat_respond():
    fields = body(ChatRespond())
    return jsonify(Chat(services()).respond(fields["conversation_id"], fields["message"]))


@bp.route("/chat/close", methods=["PUT"])
@bp.route("/chat/end", methods=["POST"])
def chat_close():
    fields = body(ChatClose())
    return jsonify(Chat(services()).close(fields["conversation_id"]))


@bp.get("/topics")
def list_topics():
    return jsonify(items=Topics(services()).list())


@bp.post("/topics")
def create_topic():
    return jsonify(Topics(services(), who=api_actor()).create(body(TopicInput()))), 201


@bp.get("/topics/<topic_id>")
def get_topic(topic_id):
    return jsonify(Topics(services()).get(topic_id))


@bp.patch("/topics/<topic_id>")
def update_topic(topic_id):
    fields = body(patch_schema(TopicInput))
    provided = set((request.get_json(silent=True) or {}).keys())
    return jsonify(Topics(services(), who=api_actor()).update(topic_id, {k: v for k, v in fields.items() if k in provided}))


@bp.delete("/topics/<topic_id>")
def delete_topic(topic_id):
    Topics(services(), who=api_actor()).delete(topic_id, request.args.get("confirm"))
    return Response(status=204)
