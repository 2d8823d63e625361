"""`respond(payload)`: a /v1 view's answer, serialised through the response schema its
`@documented` entry declares (web/openapi.py), so the document and the wire format cannot
drift apart.

Only the fields the schema names go out, under their `data_key`s; the values are the
domain's own (times stay the strings they were stored as, free-form fields such as `data`
and `state` pass through whole). Each schema is compiled once, when its view is declared,
into a `Serialiser`. tests/response_conformance.py fails any test whose answer the schema
would cut short, so a field added to the domain is added to its schema too.
A view that builds its own `Response` (a 204, YAML, the event feed) does not call this.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Response, current_app, jsonify, request
from marshmallow import Schema, fields, missing
from werkzeug.routing import AnyConverter

SERIALISERS_ATTRIBUTE = "response_serialisers"  # where @documented leaves them, built


class Serialiser:
    """A response schema, compiled once into the function that answers with it.

    The schema says which fields go out, under which names, nested how; the values are
    the domain's own (a stored time stays the string it was, `data` and `state` pass
    through whole). That is marshmallow's `dump` for the fields the schemas here use,
    without its per-field cost (a page of 100 handoffs took ~3 ms more through
    `Schema.dump`, ~0.3 ms this way). The suite checks the two agree on every answer
    (tests/response_conformance.py)."""

    def __init__(self, schema: Schema):
        self.schema = schema
        self.project = _projection(schema)


# Dumps that return a well-typed value unchanged (String, Integer, Float, Boolean, Raw…).
_AS_IS = frozenset({fields.String._serialize, fields.Number._serialize, fields.Field._serialize})


def _projection(schema: Schema) -> Callable[[Any], dict]:
    steps = tuple((field.attribute or name, field.data_key or name, _converter(field))
                  for name, field in schema.dump_fields.items())

    def project(obj: Any) -> dict:
        out = {}
        if isinstance(obj, Mapping):
            for attribute, key, convert in steps:
                if attribute in obj:
                    value = obj[attribute]
                    out[key] = value if convert is None or value is None else convert(value)
        else:
            for attribute, key, convert in steps:
                value = getattr(obj, attribute, missing)
                if value is not missing:
                    out[key] = value if convert is None or value is None else convert(value)
        return out
    return project


def _converter(field: fields.Field) -> Callable[[Any], Any] | None:
    """How a field's (non-null) value is dumped; None: as it is."""
    if isinstance(field, fields.Nested):
        inner = _projection(field.schema)
        return (lambda values: [inner(value) for value in values]) if field.many else inner
    if isinstance(field, fields.List):
        item = _converter(field.inner)
        return None if item is None else (lambda values: [None if v is None else item(v) for v in values])
    if isinstance(field, fields.Mapping):
        item = _converter(field.value_field) if field.value_field is not None else None
        return None if item is None else (lambda mapping: {k: None if v is None else item(v)
                                                          for k, v in mapping.items()})
    if type(field)._serialize in _AS_IS:
        return None
    return lambda value: field._serialize(value, None, None)  # anything else: marshmallow's own


def _serialiser(schema: Any) -> Serialiser | None:
    """None for a status with no marshmallow body (None, or a hand-written JSON schema
    such as the OpenAPI document's)."""
    if isinstance(schema, type) and issubclass(schema, Schema):
        return Serialiser(schema())
    if isinstance(schema, Schema):
        return Serialiser(schema)
    return None


def serialisers_for(entry: dict[str, Any]) -> dict[str | None, dict[int, Serialiser | None]]:
    """{variant (None: the view's own): {status: serialiser}} of a @documented entry,
    built once when the view is declared rather than on every request."""
    built: dict[str | None, dict[int, Serialiser | None]] = {
        None: {status: _serialiser(schema) for status, schema in entry.get("responses", {}).items()}}
    for value, overrides in (entry.get("variants") or {}).items():
        if "responses" in overrides:
            built[value] = {status: _serialiser(schema) for status, schema in overrides["responses"].items()}
    return built


def _variant() -> str | None:
    """The value of the rule's `any(...)` segment: which variant of the entry answers."""
    converters = request.url_rule._converters  # noqa: SLF001 - werkzeug has no public accessor
    name = next((name for name, converter in converters.items() if isinstance(converter, AnyConverter)), None)
    return (request.view_args or {}).get(name) if name else None


def dump(serialiser: Serialiser, payload: Any) -> dict:
    """What goes on the wire for `payload` (tests/response_conformance.py wraps this)."""
    return serialiser.project(payload)


def respond(payload: Any, status: int | None = None) -> Response:
    """`payload` as JSON, dumped through the schema the answering view declares for
    `status` (default: its only declared status, else 200)."""
    view = current_app.view_functions[request.endpoint]
    serialisers = getattr(view, SERIALISERS_ATTRIBUTE, None)
    if serialisers is None:
        raise TypeError(f"{request.endpoint} declares no responses: give it @documented(responses=...)")
    by_status = serialisers.get(_variant(), serialisers[None]) if len(serialisers) > 1 else serialisers[None]
    if status is None:
        status = next(iter(by_status)) if len(by_status) == 1 else 200
    serialiser = by_status.get(status)
    if serialiser is None:
        raise TypeError(f"{request.endpoint} declares no response schema for {status}")
    response = jsonify(dump(serialiser, payload))
    response.status_code = status
    return response
