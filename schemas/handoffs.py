from __future__ import annotations

import re

from marshmallow import Schema, ValidationError, fields, validate

from handoff.handoff_request_schema import HandoffRequestSchema  # noqa: F401
from handoff.models import CHANNELS

from .common import WarningSchema, text

# HandoffRequestSchema is the domain's own (conv.call_handoff checks a request with it
# too: handoff/handoff_request_schema.py); the views read it from here with the rest.


class DestinationRef(Schema):
    id = fields.String()
    name = fields.String()
    method = fields.String()
    route = fields.Raw(allow_none=True, metadata={"description": "a route or a list of routes"})


class HistoryEntry(Schema):
    state = fields.String()
    at = fields.String()
    detail = fields.Dict()


class HandoffSchema(Schema):
    id = fields.String()
    conversation_id = fields.String()
    shared_id = fields.String(allow_none=True)
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    destination = fields.Nested(DestinationRef, allow_none=True)
    reason = fields.String(allow_none=True)
    utterance = fields.String(allow_none=True)
    data = fields.Dict()
    sip_headers = fields.Dict(keys=fields.String(), values=fields.String())
    state = fields.String()
    history = fields.List(fields.Nested(HistoryEntry))
    warnings = fields.List(fields.Nested(WarningSchema))
    outcome = fields.Dict(allow_none=True)
    claimed_by = fields.String(metadata={"description": "the agent who claimed it (present once claimed)"})
    created_at = fields.String()
    updated_at = fields.String()


class HandoffPage(Schema):
    items = fields.List(fields.Nested(HandoffSchema))
    next_cursor = fields.String(allow_none=True)
    has_more = fields.Boolean()


class HandoffListQuery(Schema):
    state = fields.String(validate=validate.OneOf(
        ("requested", "transferring", "connected", "completed", "failed", "pending", "claimed", "abandoned")))
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    destination = fields.String()
    shared_id = fields.String()
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(metadata={"description": "the next_cursor of the previous page"})


# A Redis stream id is two unsigned 64-bit numbers (Redis refuses more with an error). The
# feed reads after an id exclusively, which Redis cannot do past the very last id: no
# millisecond part that large is ever issued, so it is refused too.
_UINT64_MAX = 2 ** 64 - 1


def is_feed_cursor(value: str) -> bool:
    """Whether `value` is a cursor the event feed could have issued (also web/feed_polls.py)."""
    if not re.fullmatch(r"[0-9]{1,20}-[0-9]{1,20}", value):
        return False
    ms, _, seq = value.partition("-")
    return int(ms) < _UINT64_MAX and int(seq) <= _UINT64_MAX


def _stream_id(value: str) -> None:
    if not is_feed_cursor(value):
        raise ValidationError("not a cursor this feed issued")


# A page of the event feed: its default size and the most a connector may ask for; and
# the longest a poll may wait, in seconds.
EVENTS_PAGE = 100
EVENTS_PAGE_MAX = 500
EVENTS_WAIT_MAX = 30


class EventsQuery(Schema):
    after = fields.String(validate=_stream_id, metadata={"description": "the next_cursor of the previous poll; absent "
                                                   "means from the oldest event kept"})
    wait = fields.Float(load_default=0, validate=validate.Range(min=0, max=EVENTS_WAIT_MAX),
                        metadata={"description": "seconds to hold the request open until "
                                                 "something happens"})
    limit = fields.Integer(load_default=EVENTS_PAGE, validate=validate.Range(min=1, max=EVENTS_PAGE_MAX))


class EventSchema(Schema):
    cursor = fields.String()
    handoff_id = fields.String()
    state = fields.String()
    at = fields.String()


class EventPage(Schema):
    items = fields.List(fields.Nested(EventSchema))
    next_cursor = fields.String(allow_none=True)


class ClaimSchema(Schema):
    agent = fields.String(required=True, validate=validate.Length(min=1, max=200))


class HandoffPatchSchema(Schema):
    data = fields.Dict(metadata={"description": "merged into the handoff's data"})
    state = fields.String(validate=validate.OneOf(("abandoned",)), metadata={
        "description": "`abandoned`: the user left before a human answered (a connector's word)"})


class OutcomeSchema(Schema):
    resolution = fields.String(required=True, validate=validate.Length(min=1, max=200))
    resolved_by = text(200, allow_none=True, load_default=None)
    notes = text(5000, allow_none=True, load_default=None)


class HandoffStateQuery(Schema):
    id = fields.String(metadata={"description": "a conversation id"})
    shared_id = fields.String(metadata={"description": "wins when both are given"})


class HandoffStateSchema(Schema):
    id = fields.String()
    shared_id = fields.String(metadata={"description": "absent when the conversation has none"})
    data = fields.Dict(metadata={"description": "the conversation's state.handoff merged with the "
                                                "latest handoff's data; handoff_to, handoff_reason "
                                                "and handoff_state filled in where the agent set none"})
