from __future__ import annotations

from marshmallow import Schema, fields, validate

from handoff.review import GROUPS


class StatsQuery(Schema):
    from_ = fields.String(data_key="from", metadata={
        "description": "first day (ISO 8601 date or date-time, UTC); default: 6 days before `to`"})
    to = fields.String(metadata={"description": "last day, included; default: today (UTC)"})
    group_by = fields.String(load_default="day", validate=validate.OneOf(GROUPS))


class StatsItem(Schema):
    key = fields.String(allow_none=True, metadata={
        "description": "the reason (null: none given), the destination id, or the day (YYYY-MM-DD)"})
    handoffs = fields.Integer()
    connected = fields.Integer(metadata={"description": "handoffs that reached a human at any attempt"})
    completed = fields.Integer()
    failed = fields.Integer()
    abandoned = fields.Integer()
    resolved = fields.Integer(metadata={"description": "handoffs with an outcome pushed"})
    connected_rate = fields.Float(allow_none=True)
    resolution_rate = fields.Float(allow_none=True)
    median_seconds_to_connect = fields.Float(allow_none=True)
    attempts = fields.Integer(metadata={"description": "transfer attempts (a fallback is another attempt)"})
    failures = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": "failed attempts by result: busy, no-answer, voicemail, closed, timeout, sip_<code>…"})


class WarningCount(Schema):
    code = fields.String()
    count = fields.Integer(metadata={"description": "handoffs that carried this warning"})


class StatsPage(Schema):
    from_ = fields.String(data_key="from", attribute="from")
    to = fields.String()
    group_by = fields.String()
    items = fields.List(fields.Nested(StatsItem))
    warnings = fields.List(fields.Nested(WarningCount))
