from __future__ import annotations

from marshmallow import Schema, fields, validate

from handoff.conversations import LEVELS, ROLES
from handoff.models import CHANNELS

from .common import text
from .handoffs import HandoffSchema


class ConversationCreate(Schema):
    channel = fields.String(load_default="webchat", validate=validate.OneOf(CHANNELS))
    shared_id = text(200, allow_none=True, load_default=None)
    state = fields.Dict(load_default=dict)
    from_ = text(200, data_key="from", allow_none=True, load_default=None)
    to = text(200, allow_none=True, load_default=None)


class ConversationPatch(Schema):
    shared_id = text(200, allow_none=True, metadata={"description": "null clears it"})
    state = fields.Dict()


class TranscriptEntry(Schema):
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    text = fields.String(required=True, validate=validate.Length(min=1, max=10000))
    at = fields.String()


class LogEntry(Schema):
    level = fields.String(load_default="info", validate=validate.OneOf(LEVELS))
    message = fields.String(required=True, validate=validate.Length(min=1, max=10000))
    at = fields.String()


class LoggedEntry(LogEntry):
    """A log entry as the conversation holds it: the agent's `conv.log.info("text", key=value)`
    also keeps its key=value pairs (the API's POST of a log entry takes none). Agent code logs
    any text at any level (a logger does not refuse a line), so what is read back has none of
    the bounds a POST of a log entry meets."""

    level = fields.String(metadata={"description": "debug, info, warning or error; agent code may name another"})
    message = fields.String(metadata={"description": "any text, empty or long, as agent code logged it"})
    fields_ = fields.Dict(data_key="fields", attribute="fields", metadata={"description": "key=value pairs given to conv.log"})


class MetricEntry(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    value = fields.Raw(required=True, metadata={
        "description": "a number, text or boolean, usually; any JSON value but null is kept as sent"})
    at = fields.String()


class RecordedMetric(MetricEntry):
    """A metric as the conversation holds it: agent code's `conv.write_metric` names it freely."""

    name = fields.String()
    value = fields.Raw(required=True, allow_none=True, metadata={
        "description": "as sent; null when agent code wrote the metric without a value"})


class AnnotationEntry(Schema):
    label = fields.String(required=True, validate=validate.Length(min=1, max=200))
    note = text(5000, allow_none=True, load_default=None)
    author = text(200, allow_none=True, load_default=None)
    at = fields.String()


class ConversationSchema(Schema):
    id = fields.String()
    shared_id = fields.String(allow_none=True)
    channel = fields.String()
    from_ = fields.String(data_key="from", attribute="from", allow_none=True)
    to = fields.String(allow_none=True)
    started_at = fields.String()
    ended_at = fields.String(allow_none=True)
    state = fields.Dict()
    transcript = fields.List(fields.Nested(TranscriptEntry))
    log = fields.List(fields.Nested(LoggedEntry))
    metrics = fields.List(fields.Nested(RecordedMetric))
    annotations = fields.List(fields.Nested(AnnotationEntry))
    handoff = fields.Nested(HandoffSchema, allow_none=True)
    outcome = fields.Dict(allow_none=True)
    direction = fields.String(metadata={"description": '"outbound" on calls placed with POST /v1/calls'})
    classification = fields.String(allow_none=True, metadata={
        "description": "outbound calls: what answered (human, voicemail, fax, unknown, "
                       "not_in_service); null until known"})
    integration_attributes = fields.Dict(metadata={
        "description": "chats started through the PolyAI-shaped chat/create: what the widget passed"})


class ConversationPage(Schema):
    items = fields.List(fields.Nested(ConversationSchema))
    next_cursor = fields.String(allow_none=True)
    has_more = fields.Boolean()


class ConversationListQuery(Schema):
    shared_id = fields.String()
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    has_handoff = fields.Boolean()
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(metadata={"description": "the next_cursor of the previous page"})
