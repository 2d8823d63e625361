"""Validate our PolyAI-shaped answers against PolyAI's own OpenAPI documents.

The documents are PolyAI's, copied unchanged into tests/data/polyai/ (see its README).
They are OpenAPI 3.0: `nullable: true` is read as "or null", and `$ref`s resolve within
each document."""
from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

from jsonschema import Draft202012Validator

DATA = Path(__file__).parent / "data" / "polyai"
DOCUMENTS = {
    "chat": "chat.openapi.json",
    "handoff": "handoff.openapi.json",
    "conversations": "conversations-v3.openapi.json",
}
# Which document and path template describe one of our PolyAI-shaped routes.
OPERATIONS = {
    "chat/create": ("chat", "/{version}/{account_id}/{project_id}/chat/create", "post"),
    "chat/respond": ("chat", "/{version}/{account_id}/{project_id}/chat/respond", "post"),
    "chat/close": ("chat", "/{version}/{account_id}/{project_id}/chat/close", "put"),
    "handoff_state": ("handoff", "/v1/{account_id}/{project_id}/handoff_state", "get"),
    "conversations": ("conversations", "/v3/{account_id}/{project_id}/conversations", "get"),
}


def _openapi30_to_json_schema(node):
    if isinstance(node, dict):
        node = {key: _openapi30_to_json_schema(value) for key, value in node.items()}
        if node.pop("nullable", False) and "type" in node:
            node["type"] = [node["type"], "null"]
        return node
    if isinstance(node, list):
        return [_openapi30_to_json_schema(item) for item in node]
    return node


@cache
def document(name: str) -> dict:
    return _openapi30_to_json_schema(json.loads((DATA / DOCUMENTS[name]).read_text()))


def _resolve(doc: dict, node: dict) -> dict:
    while "$ref" in node and "content" not in node:
        target = doc
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def response_schema(operation: str, status: int) -> dict:
    name, path, method = OPERATIONS[operation]
    doc = document(name)
    responses = doc["paths"][path][method]["responses"]
    assert str(status) in responses, f"PolyAI documents no {status} for {operation}"
    described = _resolve(doc, responses[str(status)])
    schema = described["content"]["application/json"]["schema"]
    # The whole document travels with the schema so its `$ref`s resolve within it.
    root = copy.copy(doc)
    root.update(schema)
    return root


def check(operation: str, response) -> dict:
    """Assert the response is what PolyAI's document says for its status; return its JSON."""
    body = response.get_json()
    errors = sorted(Draft202012Validator(response_schema(operation, response.status_code)).iter_errors(body),
                    key=lambda e: list(e.path))
    assert not errors, f"{operation} {response.status_code}: " + "; ".join(
        f"{list(e.path)}: {e.message}" for e in errors) + f"\n{body}"
    return body


def check_error_envelope(response) -> dict:
    """For a status PolyAI documents nowhere (413): still PolyAI's Error envelope."""
    doc = document("chat")
    root = copy.copy(doc)
    root.update({"$ref": "#/components/schemas/Error"})
    body = response.get_json()
    errors = list(Draft202012Validator(root).iter_errors(body))
    assert not errors, "; ".join(e.message for e in errors)
    return body
