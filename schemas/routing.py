"""Versions, sandbox and live, preview and test calls of the routing configuration."""
from __future__ import annotations

import re

from marshmallow import Schema, ValidationError, fields, validate

from .common import WarningSchema, text
from .destinations import DestinationSchema
from .handoffs import HandoffRequestSchema

LEGS = ("sip", "pstn", "client")


class VersionRef(fields.Field):
    """A version number, or `live` / `sandbox`."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value in ("live", "sandbox"):
            return value
        # ASCII digits only: str.isdigit() also says yes to "²", which int() refuses.
        if isinstance(value, str) and re.fullmatch(r"[0-9]{1,12}", value):
            return int(value)
        raise ValidationError("a version number, live or sandbox")


class VersionItem(Schema):
    version = fields.Integer()
    at = fields.String()
    who = fields.String(metadata={"description": "the API key's label, or page"})
    summary = fields.String()
    live = fields.Boolean(metadata={"description": "the version callers meet"})


class VersionList(Schema):
    items = fields.List(fields.Nested(VersionItem), metadata={"description": "newest first"})


class DiffQuery(Schema):
    from_ = VersionRef(data_key="from", metadata={"description": "a version, live or sandbox (default live)"})
    to = VersionRef(metadata={"description": "a version, live or sandbox (default sandbox)"})


class ChangeSchema(Schema):
    destination = fields.String(allow_none=True, metadata={
        "description": "the destination id (null for a topic or the integration)"})
    topic = fields.String(metadata={"description": "the topic id, for a change to a topic"})
    field = fields.String(allow_none=True, metadata={
        "description": "the field; null when the whole destination was added or deleted"})
    from_ = fields.Raw(data_key="from", attribute="from", allow_none=True)
    to = fields.Raw(allow_none=True)


class DiffSchema(Schema):
    changes = fields.List(fields.Nested(ChangeSchema))


class RollbackInput(Schema):
    version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=10**12))


class PreviewInput(HandoffRequestSchema):
    """A handoff request (its `reason`, `utterance` and `sip_headers` under the very rules a
    real one meets) to a destination the path names, on a sample call."""

    class Meta:
        exclude = ("destination", "data", "route")

    leg = fields.String(required=True, validate=validate.OneOf(LEGS), metadata={
        "description": "the caller's leg: sip (a SIP Domain or trunk), pstn (a phone), client (Voice SDK)"})
    state = fields.Dict(load_default=dict, metadata={"description": "sample conversation state"})
    from_ = text(255, data_key="from", allow_none=True, load_default=None,
                 metadata={"description": "sample caller address (default: one for the leg)"})
    to = text(255, allow_none=True, load_default=None, metadata={"description": "sample called address"})


class PreviewSchema(Schema):
    twiml = fields.String()
    sip_headers = fields.Dict(keys=fields.String(), values=fields.String())
    warnings = fields.List(fields.Nested(WarningSchema))


class TestCallInput(Schema):
    message = text(300, allow_none=True, load_default=None)
    from_ = text(64, data_key="from", allow_none=True, load_default=None, metadata={
        "description": "caller ID of the test call; needed for a phone number route (a Twilio "
                       "or verified number)"})


class LastTestSchema(Schema):
    id = fields.String()
    status = fields.String(metadata={"description": "queued, calling, answered, busy, no-answer, failed, canceled"})
    sip_code = fields.Integer(allow_none=True)
    requested_at = fields.String()
    finished_at = fields.String(allow_none=True)
    detail = fields.String(allow_none=True)


class DestinationListQuery(Schema):
    limit = fields.Integer(validate=validate.Range(min=1, max=500), metadata={
        "description": "page size (with cursor alone: 100); without limit and cursor every destination"})
    cursor = fields.String(metadata={"description": "the next_cursor of the previous page"})


class DestinationPage(Schema):
    items = fields.List(fields.Nested(DestinationSchema))
    next_cursor = fields.String(allow_none=True, metadata={"description": "only when paging; null on the last page"})
