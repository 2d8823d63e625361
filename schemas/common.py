from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates

from handoff import sip
from handoff.handoff_request_schema import validate_header_map  # noqa: F401

# validate_header_map: the call-time header rules of a handoff request, which the domain
# owns (handoff/handoff_request_schema.py); the voice webhook's `sip_headers` text meets
# the same ones (web/voice.py).


class SipHeaderSchema(Schema):
    name = fields.String(required=True, metadata={"example": "X-Customer-ID"})
    value = fields.String(required=True, metadata={"example": "$customer.id"})

    @validates("name")
    def _name(self, value: str, **_):
        problem = sip.header_name_problem(value)
        if problem:
            raise ValidationError(problem)

    @validates("value")
    def _value(self, value: str, **_):
        problem = sip.header_value_problem(value)
        if problem:
            raise ValidationError(problem)


def patch_schema(schema_class: type[Schema]) -> Schema:
    """The schema of a partial change (a PATCH body, the page's edit form, an import
    updating by name): every top-level field optional, but what is sent whole (a header,
    a topic's action) still needs all its fields — `partial=True` would reach into those
    too and let a header without a value through."""
    return schema_class(partial=tuple(schema_class().fields))


def text(limit: int, **kwargs) -> fields.String:
    return fields.String(validate=validate.Length(max=limit), **kwargs)


class ConfirmQuery(Schema):
    """Query of a DELETE that names what it deletes (the views read `confirm` themselves)."""

    confirm = fields.String(metadata={"description": "the exact name of what is deleted; without "
                                                     "it the answer is 409 confirmation_required"})


class WarningSchema(Schema):
    code = fields.String()
    message = fields.String()


class ErrorBody(Schema):
    code = fields.String()
    message = fields.String()
    fields = fields.Dict()


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBody)
