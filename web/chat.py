"""/v1 chat and topics: the built-in router's own API."""
from __future__ import annotations

from flask import Blueprint, Response, request

from handoff.bot_sessions import Chat
from handoff.topics import Topics
from schemas.chat import (
    ChatClose,
    ChatClosed,
    ChatCreate,
    ChatCreated,
    ChatRespond,
    ChatResponse,
    TopicInput,
    TopicList,
    TopicSchema,
)
from schemas.common import ConfirmQuery, patch_schema

from .api import body, require_api_key
from .context import api_actor, services
from .openapi import documented
from .responses import respond

bp = Blueprint("chat", __name__, url_prefix="/v1")
bp.before_request(require_api_key)


@bp.post("/chat/create")
@documented(
    summary="Start a chat conversation",
    description="Answers with the agent's greeting.",
    body=ChatCreate, body_optional=True,
    responses={201: ChatCreated},
)
def chat_create():
    fields = body(ChatCreate(), optional=True)
    return respond(Chat(services()).create(fields["shared_id"], fields["state"]), 201)


@bp.post("/chat/respond")
@documented(
    summary="Send the user's message, get the agent's response",
    description="A handoff sets `end_conversation` and leaves a `webchat` handoff `pending` "
                "until a connector claims it.",
    body=ChatRespond,
    responses={200: ChatResponse},
    errors={404: "`not_found`: no conversation with that id",
            409: "`conflict`: the conversation has ended"},
)
def chat_respond():
    fields = body(ChatRespond())
    return respond(Chat(services()).respond(fields["conversation_id"], fields["message"]))


@bp.route("/chat/close", methods=["PUT"])
@bp.route("/chat/end", methods=["POST"])
@documented(
    summary="End a chat conversation",
    description="`PUT /v1/chat/close` and `POST /v1/chat/end` are the same route. It ends "
                "the bot session only: a pending handoff waits for a connector, and is "
                "abandoned after HANDOFF_PENDING_TIMEOUT if nobody claims it.",
    body=ChatClose,
    responses={200: ChatClosed},
    errors={404: "`not_found`: no conversation with that id"},
)
def chat_close():
    fields = body(ChatClose())
    return respond(Chat(services()).close(fields["conversation_id"]))


@bp.get("/topics")
@documented(
    summary="List topics",
    responses={200: TopicList},
)
def list_topics():
    return respond({"items": Topics(services()).list()})


@bp.post("/topics")
@documented(
    summary="Create a topic",
    description="Speech, DTMF and chat text that match one of its phrases run its action.",
    body=TopicInput,
    responses={201: TopicSchema},
    errors={409: "`conflict`: a topic with that name exists"},
)
def create_topic():
    return respond(Topics(services(), who=api_actor()).create(body(TopicInput())), 201)


@bp.get("/topics/<topic_id>")
@documented(
    summary="Get a topic",
    responses={200: TopicSchema},
)
def get_topic(topic_id):
    return respond(Topics(services()).get(topic_id))


@bp.patch("/topics/<topic_id>")
@documented(
    summary="Update a topic",
    description="A partial update: only the fields sent change.",
    body=TopicInput(partial=True),
    responses={200: TopicSchema},
    errors={409: "`conflict`: another topic has that name"},
)
def update_topic(topic_id):
    fields = body(patch_schema(TopicInput))  # only what was sent (web/api.py update_destination)
    return respond(Topics(services(), who=api_actor()).update(topic_id, fields))


@bp.delete("/topics/<topic_id>")
@documented(
    summary="Delete a topic",
    query=ConfirmQuery,
    responses={204: None},
    errors={409: "`confirmation_required`: `confirm` is missing or not the exact name"},
)
def delete_topic(topic_id):
    Topics(services(), who=api_actor()).delete(topic_id, request.args.get("confirm"))
    return Response(status=204)
