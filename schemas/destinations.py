from __future__ import annotations

from marshmallow import Schema, fields, validate

from handoff.models import ENCRYPTIONS, FAILURE_DISPOSITIONS, METHODS, TRANSFER_MODES

from .common import SipHeaderSchema, WarningSchema, text


class DestinationInput(Schema):
    """Body of POST /v1/destinations (PATCH takes any subset)."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=100),
                         metadata={"description": "unique, case-insensitively", "example": "Billing"})
    description = text(500, load_default="")
    method = fields.String(load_default="sip_refer", validate=validate.OneOf(METHODS))
    route = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=255), metadata={
        "description": "SIP URI (sip:/sips:), bare extension or E.164 number; required for "
                       "sip_refer and sip_invite, ignored for sip_bye",
        "example": "sip:billing@pbx.example.com"})
    sip_headers = fields.List(fields.Nested(SipHeaderSchema), load_default=list,
                              validate=validate.Length(max=20))
    encryption = fields.String(load_default="tls_srtp", validate=validate.OneOf(ENCRYPTIONS))
    ring_timeout = fields.Integer(load_default=30, strict=True, validate=validate.Range(min=5, max=120))
    transfer_mode = fields.String(load_default="blind", validate=validate.OneOf(TRANSFER_MODES))
    detect_voicemail = fields.Boolean(load_default=False)
    on_failure = fields.String(load_default="next", validate=validate.OneOf(FAILURE_DISPOSITIONS))
    fallback = fields.String(allow_none=True, load_default=None, metadata={
        "description": "id of the destination to try next when this one fails"})


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
