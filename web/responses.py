"""`respond(payload)`: a /v1 view's answer, serialised through the response schema its
`@documented` entry declares (web/openapi.py), so the document and the wire format cannot
drift apart.

Only the fields the schema names go out, under their `data_key`s; the values are the
domain's own (times stay the strings they were stored as, free-form fields such as `data`
and `state` pass through whole). tests/response_conformance.py fails any test whose answer
the schema would cut short, so a field added to the domain is added to its schema too.
A view that builds its own `Response` (a 204, YAML, the event feed) does not call this.
"""
from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request
from marshmallow import Schema
from werkzeug.routing import AnyConverter

SCHEMAS_ATTRIBUTE = "response_schemas"  # where @documented leaves a view's built schemas


def _instance(schema: Any) -> Schema | None:
    """The schema to dump with; None for a status with no marshmallow body (None, or a
    hand-written JSON schema such as the OpenAPI document's)."""
    if isinstance(schema, type) and issubclass(schema, Schema):
        return schema()
    if isinstance(schema, Schema):
        return schema
    return None


def response_schemas(entry: dict[str, Any]) -> dict[str | None, dict[int, Schema | None]]:
    """{variant (None: the view's own): {status: schema instance}} of a @documented entry,
    built once when the view is declared rather than on every request."""
    built: dict[str | None, dict[int, Schema | None]] = {
        None: {status: _instance(schema) for status, schema in entry.get("responses", {}).items()}}
    for value, overrides in (entry.get("variants") or {}).items():
        if "responses" in overrides:
            built[value] = {status: _instance(schema) for status, schema in overrides["responses"].items()}
    return built


def _variant() -> str | None:
    """The value of the rule's `any(...)` segment: which variant of the entry answers."""
    converters = request.url_rule._converters  # noqa: SLF001 - werkzeug has no public accessor
    name = next((name for name, converter in converters.items() if isinstance(converter, AnyConverter)), None)
    return (request.view_args or {}).get(name) if name else None


def dump(schema: Schema, payload: Any) -> Any:
    """What goes on the wire for `payload` (tests/response_conformance.py wraps this)."""
    return schema.dump(payload)


def respond(payload: Any, status: int | None = None) -> Response:
    """`payload` as JSON, dumped through the schema the answering view declares for
    `status` (default: its only declared status, else 200)."""
    view = current_app.view_functions[request.endpoint]
    schemas = getattr(view, SCHEMAS_ATTRIBUTE, None)
    if schemas is None:
        raise TypeError(f"{request.endpoint} declares no responses: give it @documented(responses=...)")
    by_status = schemas.get(_variant(), schemas[None]) if len(schemas) > 1 else schemas[None]
    if status is None:
        status = next(iter(by_status)) if len(by_status) == 1 else 200
    schema = by_status.get(status)
    if schema is None:
        raise TypeError(f"{request.endpoint} declares no response schema for {status}")
    response = jsonify(dump(schema, payload))
    response.status_code = status
    return response
