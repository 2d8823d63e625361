"""PolyAI ADK handoffs.yaml import: its query and its answer."""
from __future__ import annotations

from marshmallow import Schema, fields


class ImportQuery(Schema):
    dry_run = fields.Boolean(load_default=False, metadata={
        "description": "true: answer what would change and write nothing"})


class ImportChange(Schema):
    name = fields.String()
    action = fields.String(metadata={"enum": ["create", "update", "unchanged"]})
    fields_ = fields.Dict(data_key="fields", attribute="fields", metadata={
        "description": 'field name → {"from", "to"} for each field the import sets or changes'})
    make_default = fields.Boolean()


class ImportResult(Schema):
    dry_run = fields.Boolean()
    changes = fields.List(fields.Nested(ImportChange))
