"""`GET /v1/openapi.json` and `GET /docs`: the /v1 API described from its marshmallow schemas.

The document is generated, never written by hand: the paths come from the app's URL map
(every rule under /v1), the bodies, query strings and responses from the schemas that
`OPERATIONS` names for each endpoint. A /v1 endpoint without an entry still appears, marked
undocumented, and `tests/test_openapi.py` fails until it gets one.

Both routes live on their own blueprint so that they need no API key: the api blueprint's
`before_request` only runs for the api blueprint's own endpoints.
"""
from __future__ import annotations

import json
import logging
import re
from collections import Counter
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow import resolver as default_schema_name
from flask import Blueprint, Flask, current_app, jsonify, render_template_string
from markupsafe import Markup, escape
from werkzeug.routing import AnyConverter, FloatConverter, IntegerConverter, PathConverter, Rule, UUIDConverter

from schemas.calls import CallCreate
from schemas.chat import (
    ChatClose,
    ChatClosed,
    ChatCreate,
    ChatCreated,
    ChatRespond,
    ChatResponse,
    TopicInput,
    TopicList,
    TopicSchema,
)
from schemas.common import ConfirmQuery, ErrorSchema
from schemas.conversations import (
    AnnotationEntry,
    ConversationCreate,
    ConversationListQuery,
    ConversationPage,
    ConversationPatch,
    ConversationSchema,
    LogEntry,
    MetricEntry,
    TranscriptEntry,
)
from schemas.destinations import DestinationInput, DestinationSchema, IntegrationSchema
from schemas.handoffs import (
    ClaimSchema,
    EventPage,
    EventsQuery,
    HandoffListQuery,
    HandoffPage,
    HandoffPatchSchema,
    HandoffRequestSchema,
    HandoffSchema,
    HandoffStateQuery,
    HandoffStateSchema,
    OutcomeSchema,
)
from schemas.handoffs_yaml import ImportQuery, ImportResult
from schemas.routing import (
    DestinationListQuery,
    DestinationPage,
    DiffQuery,
    DiffSchema,
    LastTestSchema,
    PreviewInput,
    PreviewSchema,
    RollbackInput,
    TestCallInput,
    VersionItem,
    VersionList,
)
from schemas.stats import StatsPage, StatsQuery

log = logging.getLogger(__name__)

bp = Blueprint("openapi", __name__)

SPEC_PATH = "/v1/openapi.json"
OPENAPI_VERSION = "3.0.3"
HTTP_METHODS = ("get", "put", "post", "patch", "delete")

UNDOCUMENTED = object()

# Not a marshmallow schema: the body of GET /v1/openapi.json is this document itself.
OPENAPI_DOCUMENT = {"type": "object", "description": "an OpenAPI 3 document"}

PATH_PARAMETERS = {
    "destination_id": "the destination's id (the slug made from its name at creation)",
    "conversation_id": "the conversation's id (the CallSid for a voice call)",
    "ref": "a handoff id, or a shared_id (the newest handoff carrying it)",
    "topic_id": "the topic's id (the slug made from its name at creation)",
}

# Endpoint name -> what its request and responses are. Keys of an entry:
#   summary, description  text for the document
#   body                  marshmallow schema of the JSON body (adds 413, 415, 422)
#   query                 marshmallow schema of the query string (adds 422)
#   responses             {status: schema, or None for no body}
#   errors                {status: description} beyond the ones derived from the above
#   public                True: readable without an API key
#   tag                   the group it is listed under (default: the path's first segment)
#   variants              for a rule with an `any(...)` segment: {value: entry overrides}
OPERATIONS: dict[str, dict[str, Any]] = {
    # destinations
    "api.list_destinations": {
        "summary": "List destinations",
        "description": "Without `limit` and `cursor`: every destination, `{\"items\"}`. With "
                       "either: one page, oldest first, and `next_cursor` (null on the last page).",
        "query": DestinationListQuery,
        "responses": {200: DestinationPage},
    },
    "api.create_destination": {
        "summary": "Create a destination",
        "description": "The id is a slug made from the name. The first destination created "
                       "becomes the default.",
        "body": DestinationInput,
        "responses": {201: DestinationSchema},
        "errors": {409: "`conflict`: a destination with that name (case-insensitive) exists"},
    },
    "api.get_destination": {
        "summary": "Get a destination",
        "responses": {200: DestinationSchema},
    },
    "api.update_destination": {
        "summary": "Update a destination",
        "description": "A partial update: only the fields sent change. The id never changes.",
        "body": DestinationInput(partial=True),
        "responses": {200: DestinationSchema},
        "errors": {409: "`conflict`: another destination has that name"},
    },
    "api.duplicate_destination": {
        "summary": "Duplicate a destination",
        "description": 'The copy is named "<name> (copy)" (then " (copy 2)", ...) and is never '
                       "the default.",
        "responses": {201: DestinationSchema},
        "errors": {409: "`conflict`: the copy's id was taken at the same moment; retry"},
    },
    "api.make_default": {
        "summary": "Make a destination the default",
        "description": "Exactly one destination is the default at any time.",
        "responses": {200: DestinationSchema},
    },
    "api.delete_destination": {
        "summary": "Delete a destination",
        "description": "Deleting the default leaves none: every destination then carries the "
                       "warning `no_default` until one is set.",
        "query": ConfirmQuery,
        "responses": {204: None},
        "errors": {409: "`confirmation_required`: `confirm` is missing or not the exact name"},
    },
    "routing.preview": {
        "summary": "Preview a handoff to a destination",
        "description": "Exactly what a handoff to this destination (in the sandbox draft) would "
                       "answer on a call from the given caller leg, with sample state: the same "
                       "code path as a real handoff. Nothing is created.",
        "body": PreviewInput,
        "responses": {200: PreviewSchema},
    },
    "routing.test_call": {
        "summary": "Place a test call to a destination",
        "description": "The worker calls the destination's first route through Twilio with a short "
                       "spoken message; the result (answered, busy, no-answer, failed + SIP code) "
                       "shows on the destination as `last_test`.",
        "body": TestCallInput,
        "responses": {202: LastTestSchema},
        "errors": {409: "`conflict`: Twilio credentials are not configured"},
    },
    "routing.list_versions": {
        "summary": "List versions of the routing configuration",
        "description": "Every change to destinations, topics or the integration, newest first; "
                       "`live` marks the version callers meet.",
        "responses": {200: VersionList},
    },
    "routing.config_diff": {
        "summary": "Compare two versions",
        "description": "Default: live → sandbox (what promoting would change).",
        "query": DiffQuery,
        "responses": {200: DiffSchema},
    },
    "routing.promote": {
        "summary": "Promote the sandbox draft to live",
        "responses": {200: VersionItem},
        "errors": {409: "`conflict`: nothing to promote"},
    },
    "routing.rollback": {
        "summary": "Roll back to a version",
        "description": "That version's content becomes live and the draft, recorded as a new version.",
        "body": RollbackInput,
        "responses": {200: VersionItem},
        "errors": {409: "`conflict`: that content is already live"},
    },
    "api.get_integration": {
        "summary": "Get the integration constraints",
        "responses": {200: IntegrationSchema},
    },
    "api.put_integration": {
        "summary": "Set the integration constraints",
        "description": "Existing destinations that no longer fit carry a warning "
                       "(`method_mismatch`, `route_not_editable`, `sip_headers_unsupported`).",
        "body": IntegrationSchema,
        "responses": {200: IntegrationSchema},
    },
    # conversations
    "api.create_conversation": {
        "summary": "Start a conversation",
        "body": ConversationCreate,
        "responses": {201: ConversationSchema},
    },
    "api.list_conversations": {
        "summary": "List conversations",
        "description": "Oldest first; pass `next_cursor` back as `cursor` for the next page.",
        "query": ConversationListQuery,
        "responses": {200: ConversationPage},
    },
    "api.get_conversation": {
        "summary": "Get a conversation",
        "responses": {200: ConversationSchema},
    },
    "api.update_conversation": {
        "summary": "Update a conversation",
        "description": "`state` is merged into the conversation's state.",
        "body": ConversationPatch,
        "responses": {200: ConversationSchema},
    },
    "api.append_entry": {
        "summary": "Append one entry to a conversation",
        "variants": {
            "transcript": {"summary": "Append a transcript turn",
                           "body": TranscriptEntry, "responses": {201: TranscriptEntry}},
            "log": {"summary": "Append a log line",
                    "body": LogEntry, "responses": {201: LogEntry}},
            "metrics": {"summary": "Record a metric",
                        "body": MetricEntry, "responses": {201: MetricEntry}},
            "annotations": {"summary": "Annotate a conversation",
                            "body": AnnotationEntry, "responses": {201: AnnotationEntry}},
        },
    },
    "api.create_handoff": {
        "summary": "Hand a conversation off to a human",
        "description": "For a live voice call the call is redirected into the handoff through "
                       "Twilio's REST API; chat and SMS handoffs wait `pending` for a connector "
                       "to claim them.",
        "body": HandoffRequestSchema,
        "responses": {201: HandoffSchema},
    },
    "api.place_call": {
        "summary": "Place an outbound call",
        "description": "Twilio places the call with answering-machine detection; the "
                       "conversation's `classification` says what answered once it is known. "
                       "A number Twilio refuses is a 422; Twilio unreachable is a 503.",
        "body": CallCreate,
        "responses": {201: ConversationSchema},
    },
    # handoffs
    "api.list_handoffs": {
        "summary": "List handoffs",
        "description": "Oldest first, stable across polls; pass `next_cursor` back as `cursor`.",
        "query": HandoffListQuery,
        "responses": {200: HandoffPage},
    },
    "api.handoff_events": {
        "summary": "Poll the handoff event feed",
        "description": "Every state change exactly once, in order. `wait` holds the request "
                       "open until something happens; pass `next_cursor` back as `after`.",
        "query": EventsQuery,
        "responses": {200: EventPage},
        "errors": {429: "`too_many_requests`: this web process already holds its limit of waiting "
                        "polls (HANDOFF_MAX_LONG_POLLS); poll again after `Retry-After` seconds"},
    },
    "api.get_handoff": {
        "summary": "Get a handoff",
        "responses": {200: HandoffSchema},
    },
    "api.patch_handoff": {
        "summary": "Merge data into a handoff, or mark it abandoned",
        "description": "`{\"state\": \"abandoned\"}`: the user left before a human answered.",
        "body": HandoffPatchSchema,
        "responses": {200: HandoffSchema},
    },
    "api.claim_handoff": {
        "summary": "Claim a handoff for an agent",
        "body": ClaimSchema,
        "responses": {200: HandoffSchema},
        "errors": {409: "`conflict`: already claimed"},
    },
    "api.handoff_outcome": {
        "summary": "Record a handoff's outcome",
        "description": "The outcome is also visible on the conversation.",
        "body": OutcomeSchema,
        "responses": {200: HandoffSchema},
    },
    "handoffs_yaml.export_destinations": {
        "summary": "Export destinations as PolyAI ADK's handoffs.yaml",
        "description": "The body is YAML (`application/yaml`): `handoffs: [{name, description, "
                       "is_default, sip_config: {method, phone_number, outbound_endpoint, "
                       "outbound_encryption}, sip_headers: [{key, value}]}]`. SIP REFER, INVITE "
                       "and BYE destinations only (ADK has no Flex).",
        "responses": {200: None},
        "tag": "destinations",
    },
    "handoffs_yaml.import_destinations": {
        "summary": "Import PolyAI ADK's handoffs.yaml",
        "description": "Send the file as the body (YAML). Destinations are matched by name: "
                       "created or updated, never deleted. Every entry is checked first; one "
                       "invalid entry → 422 naming it (`handoffs[2] (name)`) and nothing is written.",
        "query": ImportQuery,
        "responses": {200: ImportResult},
        "errors": {413: "`payload_too_large`: the body is over 1 MiB"},
        "tag": "destinations",
    },
    "api.handoff_state": {
        "summary": "Read a handoff as PolyAI's Handoff API does",
        "description": "`shared_id` wins when both are given; give at least one.",
        "query": HandoffStateQuery,
        "responses": {200: HandoffStateSchema},
        "errors": {404: "`not_found`: no handoff for that conversation or shared_id"},
        "tag": "handoffs",
    },
    # figures
    "api.handoff_stats": {
        "summary": "Handoff figures for a period",
        "description": "Counts kept as handoffs change state (never a scan of conversations), "
                       "by the day each handoff was created (UTC): one item per day, reason or "
                       "destination. `connected` counts handoffs that reached a human at any "
                       "attempt, `resolved` those with a pushed outcome. A period is at most "
                       "366 days.",
        "query": StatsQuery,
        "responses": {200: StatsPage},
        "tag": "stats",
    },
    # chat (PolyAI's chat API names) and the built-in router's topics
    "chat.chat_create": {
        "summary": "Start a chat conversation",
        "description": "Answers with the agent's greeting.",
        "body": ChatCreate,
        "responses": {201: ChatCreated},
    },
    "chat.chat_respond": {
        "summary": "Send the user's message, get the agent's response",
        "description": "A handoff sets `end_conversation` and leaves a `webchat` handoff `pending` "
                       "until a connector claims it.",
        "body": ChatRespond,
        "responses": {200: ChatResponse},
        "errors": {404: "`not_found`: no conversation with that id",
                   409: "`conflict`: the conversation has ended"},
    },
    "chat.chat_close": {
        "summary": "End a chat conversation",
        "description": "`PUT /v1/chat/close` and `POST /v1/chat/end` are the same route. It ends "
                       "the bot session only: a pending handoff waits for a connector, and is "
                       "abandoned after HANDOFF_PENDING_TIMEOUT if nobody claims it.",
        "body": ChatClose,
        "responses": {200: ChatClosed},
        "errors": {404: "`not_found`: no conversation with that id"},
    },
    "chat.list_topics": {
        "summary": "List topics",
        "responses": {200: TopicList},
    },
    "chat.create_topic": {
        "summary": "Create a topic",
        "description": "Speech, DTMF and chat text that match one of its phrases run its action.",
        "body": TopicInput,
        "responses": {201: TopicSchema},
        "errors": {409: "`conflict`: a topic with that name exists"},
    },
    "chat.get_topic": {
        "summary": "Get a topic",
        "responses": {200: TopicSchema},
    },
    "chat.update_topic": {
        "summary": "Update a topic",
        "description": "A partial update: only the fields sent change.",
        "body": TopicInput(partial=True),
        "responses": {200: TopicSchema},
        "errors": {409: "`conflict`: another topic has that name"},
    },
    "chat.delete_topic": {
        "summary": "Delete a topic",
        "query": ConfirmQuery,
        "responses": {204: None},
        "errors": {409: "`confirmation_required`: `confirm` is missing or not the exact name"},
    },
    # this document
    "openapi.openapi_document": {
        "summary": "This OpenAPI document",
        "public": True,
        "tag": "documentation",
        "responses": {200: OPENAPI_DOCUMENT},
    },
}

ENTRY_KEYS = frozenset({"summary", "description", "body", "query", "responses", "errors",
                        "public", "tag", "variants"})

# Shared error responses (components/responses), by status.
ERROR_RESPONSES = {
    401: ("Unauthorized", "`unauthorized`: no API key, or not a valid one"),
    404: ("NotFound", "`not_found`: nothing with that id"),
    413: ("PayloadTooLarge", "`payload_too_large`: the body is over 1 MiB"),
    415: ("UnsupportedMediaType", "`unsupported_media_type`: send the body as application/json"),
    422: ("ValidationError", "`validation_error`: `fields` names each invalid field"),
    503: ("Unavailable", "`unavailable`: the store is unreachable; try again shortly"),
}

INFO_DESCRIPTION = (
    "Hands callers and chat users over from an AI agent to a human.\n\n"
    "Every /v1 call needs an API key, as `Authorization: Bearer <key>` or `X-API-Key: <key>`. "
    "Every error is JSON: `{\"error\": {\"code\", \"message\", \"fields\"}}` (`fields` only "
    "for validation errors, keyed by field name)."
)


# -- the document ---------------------------------------------------------------------
def schema_name(schema) -> str:
    """Component name for a schema; a `partial=True` instance (a PATCH body) gets its own."""
    name = default_schema_name(schema)
    if getattr(schema, "partial", False) is True:
        name += "Patch"
    return name


def _no_default_when_partial(self, field, ret, **_) -> dict:
    """apispec attribute function: a partial load (a PATCH body) fills in no defaults, so its
    document must not promise any."""
    if getattr(field.parent, "partial", False) is True:
        ret.pop("default", None)
    return {}


def v1_rules(app: Flask) -> list[Rule]:
    """Every rule under /v1, in the order the views were declared."""
    return [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/v1/")]


def undocumented_endpoints(app: Flask) -> set[str]:
    """/v1 endpoints that OPERATIONS does not describe yet."""
    return {rule.endpoint for rule in v1_rules(app)} - set(OPERATIONS)


def _converters(rule: Rule) -> dict:
    # werkzeug keeps the converter of each variable here; there is no public accessor.
    return rule._converters  # noqa: SLF001


def _parameter_schema(converter) -> dict:
    if isinstance(converter, IntegerConverter):
        return {"type": "integer"}
    if isinstance(converter, FloatConverter):
        return {"type": "number"}
    if isinstance(converter, UUIDConverter):
        return {"type": "string", "format": "uuid"}
    if isinstance(converter, PathConverter):
        return {"type": "string", "minLength": 1}
    return {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}


_VARIABLE = re.compile(r"<(?:[^>:]+:)?([^>]+)>")


def _variants(rule: Rule, entry: dict) -> list[tuple[str | None, str, dict]]:
    """(variant, OpenAPI path, entry) for each concrete path of a rule: an `any(...)` segment
    becomes one path per value, so each can say what its body is."""
    converters = _converters(rule)
    choices = [name for name in rule.arguments if isinstance(converters[name], AnyConverter)]
    if len(choices) > 1:
        raise ValueError(f"{rule.rule}: only one any(...) segment per rule is supported")
    templated = _VARIABLE.sub(lambda m: "{" + m.group(1) + "}", rule.rule)
    if not choices:
        return [(None, templated, entry)]
    name = choices[0]
    overrides = entry.get("variants", {})
    values = [v for v in overrides if v in converters[name].items]
    values += sorted(converters[name].items - set(values))
    return [(value, templated.replace("{" + name + "}", value),
             {**{k: v for k, v in entry.items() if k != "variants"}, **overrides.get(value, {})})
            for value in values]


SUCCESS = {200: "OK", 201: "created", 204: "no content"}


def _path_names(rule: Rule) -> list[str]:
    converters = _converters(rule)
    return [name for name in _VARIABLE.findall(rule.rule)
            if not isinstance(converters[name], AnyConverter)]


def _parameters(rule: Rule, entry: dict) -> list[dict]:
    converters = _converters(rule)
    parameters = [{"in": "path", "name": name, "required": True,
                   "schema": _parameter_schema(converters[name]),
                   **({"description": PATH_PARAMETERS[name]} if name in PATH_PARAMETERS else {})}
                  for name in _path_names(rule)]
    if entry.get("query") is not None:
        # MarshmallowPlugin expands this into one query parameter per schema field.
        parameters.append({"in": "query", "schema": entry["query"]})
    return parameters


def _responses(rule: Rule, entry: dict) -> dict:
    """The entry's own responses, then every error the contract says applies to it."""
    responses: dict[int, Any] = {}
    for status, schema in entry.get("responses", {200: UNDOCUMENTED}).items():
        description = SUCCESS.get(status, "success")
        if schema is UNDOCUMENTED:
            responses[status] = {"description": "undocumented"}
        elif schema is None:
            responses[status] = {"description": description}
        else:
            responses[status] = {"description": description,
                                 "content": {"application/json": {"schema": schema}}}
    errors: set[int] = set()
    if not entry.get("public"):
        errors |= {401, 503}
    if _path_names(rule):
        errors.add(404)
    if entry.get("query") is not None:
        errors.add(422)
    if entry.get("body") is not None:
        errors |= {413, 415, 422}
    for status in errors:
        responses[status] = ERROR_RESPONSES[status][0]  # a components/responses name
    for status, description in entry.get("errors", {}).items():
        responses[status] = {"description": description,
                             "content": {"application/json": {"schema": ErrorSchema}}}
    return dict(sorted(responses.items()))


def _operation(rule: Rule, entry: dict, operation_id: str) -> dict:
    unknown = set(entry) - ENTRY_KEYS
    if unknown:
        raise ValueError(f"{rule.endpoint}: unknown key(s) in its OPERATIONS entry: {sorted(unknown)}")
    segments = rule.rule.split("/")
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": entry.get("summary") or f"(undocumented: {rule.endpoint})",
        "tags": [entry.get("tag") or (segments[2] if len(segments) > 2 else "v1")],
        "parameters": _parameters(rule, entry),
        "responses": _responses(rule, entry),
    }
    if entry.get("description"):
        operation["description"] = entry["description"]
    if entry.get("body") is not None:
        operation["requestBody"] = {"required": True,
                                    "content": {"application/json": {"schema": entry["body"]}}}
    if entry.get("public"):
        operation["security"] = []
    return operation


def _operation_id(rule: Rule, variant: str | None, method: str, path: str, shared: bool) -> str:
    """The view's name (plus the any(...) value); a view served on several rules or methods
    is named by method and path too, since operationIds are unique."""
    name = rule.endpoint.rsplit(".", 1)[-1] + (f"_{variant}" if variant else "")
    if shared:
        name += "_" + method + "_" + re.sub(r"[^A-Za-z0-9]+", "_", path.removeprefix("/v1/")).strip("_")
    return name


def build_spec(app: Flask) -> dict:
    """The OpenAPI document of every /v1 route of `app`."""
    marshmallow_plugin = MarshmallowPlugin(schema_name_resolver=schema_name)
    spec = APISpec(title="handoff", version="1", openapi_version=OPENAPI_VERSION,
                   plugins=[marshmallow_plugin],
                   info={"description": INFO_DESCRIPTION},
                   security=[{"bearerAuth": []}, {"apiKeyHeader": []}])
    marshmallow_plugin.converter.add_attribute_function(_no_default_when_partial)
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer",
                                                   "description": "Authorization: Bearer <key>"})
    spec.components.security_scheme("apiKeyHeader", {"type": "apiKey", "in": "header",
                                                     "name": "X-API-Key"})
    spec.components.schema("Error", schema=ErrorSchema)
    for name, description in ERROR_RESPONSES.values():
        spec.components.response(name, {"description": description,
                                        "content": {"application/json": {"schema": ErrorSchema}}})

    paths: dict[str, dict[str, dict]] = {}
    rules = v1_rules(app)
    served = Counter(rule.endpoint for rule in rules for method in HTTP_METHODS
                     if method.upper() in (rule.methods or ()))
    for rule in rules:
        entry = OPERATIONS.get(rule.endpoint)
        if entry is None:
            log.warning("/v1 endpoint %s has no OPERATIONS entry in web/openapi.py", rule.endpoint)
            entry = {}
        for variant, path, variant_entry in _variants(rule, entry):
            for method in HTTP_METHODS:
                if method.upper() in (rule.methods or ()):
                    operation_id = _operation_id(rule, variant, method, path, served[rule.endpoint] > 1)
                    paths.setdefault(path, {})[method] = _operation(rule, variant_entry, operation_id)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def current_spec() -> dict:
    """The document for the running app, built once (the URL map does not change)."""
    cached = current_app.extensions.get("openapi")
    if cached is None:
        cached = current_app.extensions["openapi"] = build_spec(current_app)
    return cached


@bp.get(SPEC_PATH)
def openapi_document():
    return jsonify(current_spec())


# -- the human-readable page ----------------------------------------------------------
def _deref(spec: dict, node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        _, _, kind, name = node["$ref"].split("/", 3)
        node = spec["components"][kind][name]
    return node


def _type_of(schema: dict) -> tuple[str, str | None]:
    """How a schema reads in a table, and the component it links to (if any)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return name, name
    alternatives = schema.get("oneOf") or schema.get("anyOf")
    if alternatives and "type" not in schema:
        typed = [_type_of(alternative) for alternative in alternatives]
        return " or ".join(text for text, _ in typed), next((link for _, link in typed if link), None)
    kind = schema.get("type")
    if kind == "array":
        inner, link = _type_of(schema.get("items", {}))
        return f"array of {inner}", link
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        inner, link = _type_of(schema["additionalProperties"])
        return f"object of {inner}", link
    if isinstance(kind, list):
        return " or ".join(kind), None
    text = kind or "any JSON"
    if schema.get("format"):
        text += f" ({schema['format']})"
    return text, None


def _notes(schema: dict) -> list[str]:
    notes = []
    if schema.get("description"):
        notes.append(schema["description"])
    if "enum" in schema:
        notes.append("one of: " + ", ".join(json.dumps(v) for v in schema["enum"]))
    bounds = [("minLength", "length ≥ {}"), ("maxLength", "length ≤ {}"),
              ("minItems", "items ≥ {}"), ("maxItems", "items ≤ {}"),
              ("minimum", "≥ {}"), ("maximum", "≤ {}"), ("pattern", "matches {}")]
    notes += [text.format(schema[key]) for key, text in bounds if key in schema]
    if "default" in schema:
        notes.append(f"default: {json.dumps(schema['default'])}")
    if schema.get("nullable"):
        notes.append("may be null")
    if "example" in schema:
        notes.append(f"example: {json.dumps(schema['example'])}")
    return notes


def _field_rows(spec: dict, schema: dict) -> list[dict]:
    schema = _deref(spec, schema)
    required = set(schema.get("required", ()))
    rows = []
    for name, prop in schema.get("properties", {}).items():
        type_text, link = _type_of(prop)
        rows.append({"name": name, "type": type_text, "link": link, "required": name in required,
                     "notes": _notes(prop)})
    return rows


def _body_of(spec: dict, holder: dict) -> dict | None:
    content = _deref(spec, holder).get("content", {})
    media = content.get("application/json")
    return media.get("schema") if media else None


def docs_view(spec: dict) -> dict:
    """The page's content, as plain data for the template."""
    groups: dict[str, list[dict]] = {}
    for path, item in spec.get("paths", {}).items():
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue
            parameters = []
            for param in op.get("parameters", []):
                param = _deref(spec, param)
                type_text, link = _type_of(param.get("schema", {}))
                notes = ([param["description"]] if param.get("description") else []) + \
                    _notes({k: v for k, v in param.get("schema", {}).items() if k != "description"})
                parameters.append({"name": param["name"], "in": param["in"], "type": type_text,
                                   "link": link, "required": bool(param.get("required")),
                                   "notes": notes})
            body = None
            if "requestBody" in op:
                schema = _body_of(spec, op["requestBody"])
                if schema is not None:
                    type_text, link = _type_of(schema)
                    body = {"type": type_text, "link": link, "fields": _field_rows(spec, schema)}
            responses = []
            for status, response in op.get("responses", {}).items():
                schema = _body_of(spec, response)
                type_text, link = _type_of(schema) if schema is not None else ("", None)
                responses.append({"status": status, "type": type_text, "link": link,
                                  "description": _deref(spec, response).get("description", "")})
            groups.setdefault((op.get("tags") or ["other"])[0], []).append({
                "id": op.get("operationId", f"{method}-{path}"), "method": method.upper(),
                "path": path, "summary": op.get("summary", ""), "description": op.get("description", ""),
                "public": op.get("security") == [], "parameters": parameters, "body": body,
                "responses": responses,
            })
    schemas = [{"name": name, "fields": _field_rows(spec, schema)}
               for name, schema in spec.get("components", {}).get("schemas", {}).items()]
    info = spec.get("info", {})
    return {"title": info.get("title", "API"), "version": info.get("version", ""),
            "description": info.get("description", ""), "groups": groups, "schemas": schemas,
            "spec_path": SPEC_PATH}


def inline_code(text: str) -> Markup:
    """Escaped text, with the descriptions' `backticked` words shown as code."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


DOCS_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ view.title }} API</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 62rem;
       padding: 1rem 1.5rem; color: #1d1d1f; }
code, .path { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
section.op { border-top: 1px solid #ddd; padding-top: .6rem; margin-top: 1.4rem; }
.method { display: inline-block; min-width: 4.2rem; font-weight: 700;
          font-family: ui-monospace, monospace; }
.public { font-size: .8rem; background: #e6f4ea; border-radius: 3px; padding: 0 .35rem; }
table { border-collapse: collapse; width: 100%; margin: .3rem 0 .8rem; }
th, td { text-align: left; vertical-align: top; border-bottom: 1px solid #eee; padding: .25rem .5rem; }
th { font-weight: 600; background: #fafafa; }
.desc { white-space: pre-line; }
</style>
</head>
<body>
{% macro typed(row) -%}
  {% if row.link %}<a href="#schema-{{ row.link }}">{{ row.type }}</a>{% else %}{{ row.type }}{% endif %}
{%- endmacro %}
{% macro field_table(fields) %}
<table><tr><th>field</th><th>type</th><th>required</th><th>notes</th></tr>
{% for f in fields %}
<tr><td><code>{{ f.name }}</code></td><td>{{ typed(f) }}</td>
    <td>{{ "yes" if f.required else "no" }}</td><td>{{ code(f.notes | join("; ")) }}</td></tr>
{% endfor %}
</table>
{% endmacro %}
<h1>{{ view.title }} API <small>v{{ view.version }}</small></h1>
<p class="desc">{{ code(view.description) }}</p>
<p>Machine-readable: <a href="{{ view.spec_path }}"><code>{{ view.spec_path }}</code></a> (OpenAPI 3).</p>

<nav><h2>Operations</h2>
{% for tag, ops in view.groups.items() %}
<h3>{{ tag }}</h3>
<ul>
{% for op in ops %}
  <li><span class="method">{{ op.method }}</span>
      <a href="#op-{{ op.id }}" class="path">{{ op.path }}</a> — {{ code(op.summary) }}</li>
{% endfor %}
</ul>
{% endfor %}
</nav>

{% for tag, ops in view.groups.items() %}
<h2>{{ tag }}</h2>
{% for op in ops %}
<section class="op" id="op-{{ op.id }}">
<h3><span class="method">{{ op.method }}</span> <span class="path">{{ op.path }}</span>
  {% if op.public %}<span class="public">no API key</span>{% endif %}</h3>
<p><strong>{{ code(op.summary) }}</strong></p>
{% if op.description %}<p class="desc">{{ code(op.description) }}</p>{% endif %}
{% if op.parameters %}
<h4>Parameters</h4>
<table><tr><th>name</th><th>in</th><th>type</th><th>required</th><th>notes</th></tr>
{% for p in op.parameters %}
<tr><td><code>{{ p.name }}</code></td><td>{{ p.in }}</td><td>{{ typed(p) }}</td>
    <td>{{ "yes" if p.required else "no" }}</td><td>{{ code(p.notes | join("; ")) }}</td></tr>
{% endfor %}
</table>
{% endif %}
{% if op.body %}
<h4>Body <small>(application/json, {{ typed(op.body) }})</small></h4>
{{ field_table(op.body.fields) }}
{% endif %}
<h4>Responses</h4>
<table><tr><th>status</th><th>body</th><th>meaning</th></tr>
{% for r in op.responses %}
<tr><td>{{ r.status }}</td><td>{{ typed(r) }}</td><td>{{ code(r.description) }}</td></tr>
{% endfor %}
</table>
</section>
{% endfor %}
{% endfor %}

<h2>Schemas</h2>
{% for s in view.schemas %}
<section class="op" id="schema-{{ s.name }}">
<h3>{{ s.name }}</h3>
{{ field_table(s.fields) }}
</section>
{% endfor %}
</body>
</html>
"""


@bp.get("/docs")
def docs():
    # Templates rendered from a string are autoescaped by Flask: every value is text, and
    # `code` escapes before it marks up.
    return render_template_string(DOCS_TEMPLATE, view=docs_view(current_spec()), code=inline_code)
