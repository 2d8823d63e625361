"""What a handoff request may carry: one marshmallow schema that the /v1 API, the voice
webhook, handoffData and the agent's `conv.call_handoff(...)` all load it with.

It lives in the domain because the Python API (handoff/agent_api.py) checks a request
itself, with no view in front of it; schemas/ imports it from here, so the dependency
points one way (schemas/ → handoff/).
"""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from . import sip

MAX_CALL_TIME_HEADERS = 20


def validate_header_map(value: dict) -> None:
    """Call-time headers, {"X-Name": "value"}, under the same rules as a destination's."""
    if len(value) > MAX_CALL_TIME_HEADERS:
        raise ValidationError(f"at most {MAX_CALL_TIME_HEADERS} headers")
    problems = []
    for name, text in value.items():
        problem = sip.header_name_problem(name) or sip.header_value_problem(text)
        if problem:
            problems.append(f"{name}: {problem}")
    if problems:
        raise ValidationError("; ".join(problems))


class HandoffRequestSchema(Schema):
    """What to hand off: the same fields for the API, the voice webhook and handoffData."""

    destination = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=100))
    reason = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=200))
    utterance = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=2000))
    data = fields.Dict(load_default=dict)
    sip_headers = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict,
                              validate=validate_header_map)
    route = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=255),
                          metadata={"description": "override the destination's route; must match "
                                                   "ALLOWED_ROUTE_PATTERNS"})
