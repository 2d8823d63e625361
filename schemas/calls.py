from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates

from handoff import sip

from .common import text


class OnVoicemail(Schema):
    action = fields.String(load_default="hangup", validate=validate.OneOf(("message", "hangup")))
    message = text(1000, allow_none=True, load_default=None)


class CallCreate(Schema):
    """POST /v1/calls: place an outbound call with answering-machine detection."""

    to = fields.String(required=True, metadata={"example": "+14155550123"})
    from_ = fields.String(data_key="from", required=True, validate=validate.Length(min=1, max=64),
                          metadata={"description": "a Twilio number or verified caller id"})
    agent_url = fields.Url(allow_none=True, load_default=None, schemes={"http", "https", "wss"},
                           metadata={"description": "TwiML URL the answered call goes to; else AGENT_URL, "
                                                    "else the built-in router"})
    shared_id = text(200, allow_none=True, load_default=None)
    state = fields.Dict(load_default=dict)
    on_voicemail = fields.Nested(OnVoicemail, load_default=lambda: {"action": "hangup", "message": None})

    @validates("to")
    def _to(self, value: str, **_):
        try:
            kind = sip.classify_route(value)
        except sip.RouteError as exc:
            raise ValidationError(str(exc)) from None
        if kind == "extension":
            raise ValidationError("call an E.164 number or a sip: URI")
