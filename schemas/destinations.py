from __future__ import annotations

from marshmallow import Schema, fields, validate

from handoff.models import ENCRYPTIONS, METHODS

from .common import SipHeaderSchema, WarningSchema, text


class DestinationInput(Schema):
    """Body of POST /v1/destinations (PATCH takes any subset)."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    description = text(500, load_default="")
    method = fields.String(load_default="sip_refer", validate=validate.OneOf(METHODS))
    route = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=255))
    sip_headers = fields.List(fields.Nested(SipHeaderSchema), load_default=list,
                              validate=validate.Length(max=20))
    encryption = fields.String(load_default="tls_srtp", validate=validate.OneOf(ENCRYPTIONS))
    ring_timeout = fields.Integer(load_default=30, strict=True, validate=validate.Range(min=5, max=120))
    fallback = fields.String(allow_none=True, load_default=None)


class DestinationSchema(DestinationInput):
    id = fields.String()
    is_default = fields.Boolean()
    warnings = fields.List(fields.Nested(WarningSchema))
    created_at = fields.String()
    updated_at = fields.String()


class DestinationList(Schema):
    items = fields.List(fields.Nested(DestinationSchema))


class IntegrationSchema(Schema):
    provider = fields.String(required=True, validate=validate.OneOf(("twilio", "sip_trunk")))
    required_method = fields.String(allow_none=True, load_default=None, validate=validate.OneOf(METHODS))
    route_editable = fields.Boolean(load_default=True)
    sip_headers_supported = fields.Boolean(load_default=True)
