from __future__ import annotations

from marshmallow import Schema, fields, validate

from .common import text


class ChatCreate(Schema):
    shared_id = text(200, allow_none=True, load_default=None)
    state = fields.Dict(load_default=dict)


class ChatCreated(Schema):
    conversation_id = fields.String()
    response = fields.String()


class ChatRespond(Schema):
    conversation_id = fields.String(required=True)
    message = fields.String(required=True, validate=validate.Length(min=1, max=4000))


class ChatHandoff(Schema):
    id = fields.String()
    destination = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)


class ChatResponse(Schema):
    conversation_id = fields.String()
    response = fields.String()
    handoff = fields.Nested(ChatHandoff, allow_none=True)
    end_conversation = fields.Boolean()


class ChatClose(Schema):
    conversation_id = fields.String(required=True)


class ChatClosed(Schema):
    success = fields.Boolean()


class TopicAction(Schema):
    type = fields.String(load_default="handoff", validate=validate.OneOf(("handoff",)))
    destination = fields.String(allow_none=True, load_default=None)
    reason = text(200, allow_none=True, load_default=None)
    utterance = text(2000, allow_none=True, load_default=None)


class TopicInput(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    phrases = fields.List(fields.String(validate=validate.Length(min=1, max=200)), required=True,
                          validate=validate.Length(min=1, max=100))
    action = fields.Nested(TopicAction, required=True)


class TopicSchema(TopicInput):
    id = fields.String()
    warnings = fields.List(fields.Dict())
    created_at = fields.String()
    updated_at = fields.String()


class TopicList(Schema):
    items = fields.List(fields.Nested(TopicSchema))
