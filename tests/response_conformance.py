"""Every /v1 answer any test receives (through Flask's test client, or over loopback HTTP
with tests/conftest.py's HttpClient) is one /v1/openapi.json promises: a documented status, and a JSON body that fits that status's schema.

The schemathesis run in tests/test_openapi.py checks this for fuzzed requests; this checks
it for the far richer states the rest of the suite builds (claimed handoffs, outcomes,
voice legs, PolyAI-started chats…). A mismatch fails the test that received the answer.

Views answer through their declared schema (web/responses.py), which drops what it does
not name; while checking, a dump that would drop or change anything the view returned
fails too, so a field added to the domain but not to its schema is caught here instead
of silently missing from the wire."""
from __future__ import annotations

import contextlib
import re
from functools import cache
from urllib.parse import urlsplit

from flask import json as flask_json
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from werkzeug.test import TestResponse

from tests.polyai_schemas import _openapi30_to_json_schema
from web import responses


@cache
def _document() -> tuple[dict, list[tuple[re.Pattern, str]]]:
    """The document as JSON Schema, and each path's pattern, literal paths before templated
    ones (`/v1/handoffs/events` is not `/v1/handoffs/{ref}`)."""
    from app import create_app
    from handoff.config import Config
    from web.openapi import build_spec

    # Never connected to anything: the document is the URL map's, the same for every app.
    spec = _openapi30_to_json_schema(build_spec(create_app(Config(redis_url="redis://127.0.0.1:1/0"))))
    paths = sorted(spec["paths"], key=lambda path: (path.count("{"), path))
    patterns = [(re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$"), path)
                for path in paths]
    return spec, patterns


def mismatch(method: str, path: str, status: int, mimetype: str, body) -> str | None:
    """Why this answer is not one the document promises, or None."""
    spec, patterns = _document()
    template = next((template for pattern, template in patterns if pattern.match(path)), None)
    operation = spec["paths"].get(template, {}).get(method.lower()) if template else None
    if operation is None:
        return None  # not a documented operation (a 404 or 405 from the URL map)
    response = operation["responses"].get(str(status))
    if response is None:
        return f"{method} {template} answered {status}, which the document does not list"
    if "$ref" in response:
        response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    media = response.get("content", {}).get("application/json")
    if media is None:
        return None
    if mimetype != "application/json":
        return f"{method} {template} {status} answered {mimetype}, not application/json"
    validator = Draft202012Validator({**media["schema"], "components": spec["components"]})
    error = next(iter(validator.iter_errors(body)), None)
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "the body"
        return f"{method} {template} {status}: at {where}: {error.message}"
    return None


def check(method: str, url: str, response) -> None:
    """Fail the running test if this answer (Flask's, or tests/conftest.py's HttpResponse)
    is off the document."""
    path = urlsplit(url).path
    if path.startswith("/v1/"):
        body = response.get_json(silent=True) if isinstance(response, TestResponse) else _json_or_none(response)
        problem = mismatch(method, path, response.status_code, response.mimetype, body)
        assert problem is None, f"answer off /v1/openapi.json: {problem}"


def _json_or_none(response):
    try:
        return response.get_json()
    except ValueError:
        return None


def _difference(returned, dumped, where: str = "") -> str | None:
    """Where `dumped` differs from `returned` (both as JSON text reads them), or None."""
    if isinstance(returned, dict) and isinstance(dumped, dict):
        for key in sorted(set(returned) | set(dumped)):
            if key not in dumped:
                return f"{where}/{key} is not in the schema"
            if key not in returned:
                return f"{where}/{key} was added by the schema"
            problem = _difference(returned[key], dumped[key], f"{where}/{key}")
            if problem:
                return problem
        return None
    if isinstance(returned, list) and isinstance(dumped, list) and len(returned) == len(dumped):
        for index, (a, b) in enumerate(zip(returned, dumped)):
            problem = _difference(a, b, f"{where}/{index}")
            if problem:
                return problem
        return None
    if flask_json.dumps(returned) != flask_json.dumps(dumped):
        return f"{where or 'the body'} was {flask_json.dumps(returned)}, dumped as {flask_json.dumps(dumped)}"
    return None


def _lossless(dump):
    def checked_dump(serialiser, payload):
        dumped = dump(serialiser, payload)
        name = type(serialiser.schema).__name__
        returned = flask_json.loads(flask_json.dumps(payload))
        problem = _difference(returned, flask_json.loads(flask_json.dumps(dumped)))
        assert problem is None, f"{name} changes the answer: {problem}"
        # The compiled serialiser is marshmallow's dump without its cost: the same fields,
        # names and nesting (numbers compare as numbers: marshmallow would make a Float's 5 5.0).
        assert flask_json.loads(flask_json.dumps(serialiser.schema.dump(payload))) == returned, \
            f"{name}: marshmallow would dump this answer differently"
        return dumped
    return checked_dump


@contextlib.contextmanager
def checking():
    """While open, Flask's test client fails the test on an answer off the document, and
    a view's answer fails when its schema would drop or change part of it."""
    original = FlaskClient.open
    original_dump = responses.dump

    def open_and_check(self, *args, **kwargs):
        response = original(self, *args, **kwargs)
        if args and isinstance(args[0], str):  # not a redirect's follow-up request
            check(kwargs.get("method", "GET"), args[0], response)
        return response

    FlaskClient.open = open_and_check
    responses.dump = _lossless(original_dump)
    try:
        yield
    finally:
        FlaskClient.open = original
        responses.dump = original_dump
