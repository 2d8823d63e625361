from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from handoff.destinations import NAME_LIMIT
from handoff.models import ENCRYPTIONS, FAILURE_DISPOSITIONS, INTROS, METHODS, TRANSFER_MODES

from .common import SipHeaderSchema, WarningSchema, patch_schema, text


class RouteField(fields.Field):
    """A route, or (simultaneous ring) a list of up to 10 routes."""

    def _deserialize(self, value, attr, data, **kwargs):
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(v, str) and 0 < len(v) <= 255 for v in items):
            raise ValidationError("a route is text of 1 to 255 characters, or a list of such routes")
        return value


class DestinationInput(Schema):
    """Body of POST /v1/destinations (PATCH takes any subset)."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=NAME_LIMIT),
                         metadata={"description": "unique, case-insensitively", "example": "Billing"})
    description = text(500, load_default="")
    method = fields.String(load_default="sip_refer", validate=validate.OneOf(METHODS))
    route = RouteField(allow_none=True, load_default=None, metadata={
        "description": "SIP URI (sip:/sips:), bare extension or E.164 number; required for "
                       "sip_refer and sip_invite, ignored for sip_bye; for sip_invite a list of up "
                       "to 10 rung at once; for twilio_flex a TaskRouter Workflow SID",
        # null inside a branch: OpenAPI 3.0's `nullable` does not reach into a oneOf
        "oneOf": [{"type": "string", "nullable": True},
                  {"type": "array", "items": {"type": "string"}, "maxItems": 10}],
        "example": "sip:billing@pbx.example.com"})
    sip_headers = fields.List(fields.Nested(SipHeaderSchema), load_default=list,
                              validate=validate.Length(max=20))
    encryption = fields.String(load_default="tls_srtp", validate=validate.OneOf(ENCRYPTIONS))
    ring_timeout = fields.Integer(load_default=30, strict=True, validate=validate.Range(min=5, max=120))
    transfer_mode = fields.String(load_default="blind", validate=validate.OneOf(TRANSFER_MODES))
    detect_voicemail = fields.Boolean(load_default=False)
    on_failure = fields.String(load_default="next", validate=validate.OneOf(FAILURE_DISPOSITIONS))
    hours = fields.Dict(allow_none=True, load_default=None, metadata={
        "description": 'opening hours: {"timezone": "Europe/London", "weekly": {"mon": '
                       '[["09:00", "17:30"]]}, "closed_dates": ["2026-12-25"]}; outside them the '
                       "destination is skipped (reason closed)"})
    fallback = fields.String(allow_none=True, load_default=None, metadata={
        "description": "id of the destination to try next when this one fails"})
    caller_id = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=64), metadata={
        "description": "caller ID on <Dial>: an E.164 number or a template such as $called_number",
        "example": "$called_number"})
    extension = fields.String(allow_none=True, load_default=None, validate=validate.Length(min=1, max=64),
                              metadata={"description": "phone-number routes: DTMF digits (0-9, *, #) "
                                                       "and w (half-second pause) sent after answer",
                                        "example": "ww1234#"})
    hold_audio_url = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=500),
                                   metadata={"description": "consult: https URL of what the caller "
                                                            "hears while waiting (unset: Twilio's hold music)"})
    intro = fields.String(load_default="private", validate=validate.OneOf(INTROS), metadata={
        "description": "consult: public announces the reason to both as the human joins"})


_DESTINATION_INPUT = DestinationInput()
_DESTINATION_FIELDS = patch_schema(DestinationInput)


def load_destination(fields: dict, *, partial: bool = False) -> dict:
    """Destination fields checked as a POST /v1/destinations body is (marshmallow's
    ValidationError when invalid); `partial`: only the fields given, no defaults, read as
    a PATCH body is (schemas.common.patch_schema). What handoff/adk.py's import is given,
    so the domain never imports this package."""
    return (_DESTINATION_FIELDS if partial else _DESTINATION_INPUT).load(fields)


class DestinationSchema(DestinationInput):
    id = fields.String()
    is_default = fields.Boolean()
    warnings = fields.List(fields.Nested(WarningSchema))
    last_test = fields.Dict(allow_none=True, metadata={
        "description": "the last test call: {id, status, sip_code, requested_at, finished_at}"})
    created_at = fields.String()
    updated_at = fields.String()


class DestinationList(Schema):
    items = fields.List(fields.Nested(DestinationSchema))


class IntegrationSchema(Schema):
    provider = fields.String(required=True, validate=validate.OneOf(("twilio", "sip_trunk")))
    required_method = fields.String(allow_none=True, load_default=None, validate=validate.OneOf(METHODS))
    route_editable = fields.Boolean(load_default=True)
    sip_headers_supported = fields.Boolean(load_default=True)
