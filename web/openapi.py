"""`GET /v1/openapi.json` and `GET /docs`: the /v1 API described from its marshmallow schemas.

The document is generated, never written by hand: the paths come from the app's URL map
(every rule under /v1), the bodies, query strings and responses from the schemas that each
view declares with `@documented(...)`, next to its route. A /v1 endpoint without one still
appears, marked undocumented, and `tests/test_openapi.py` fails until it gets one.

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

from schemas.common import ErrorSchema

from .responses import SERIALISERS_ATTRIBUTE, serialisers_for

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

ENTRY_ATTRIBUTE = "openapi_entry"  # where @documented leaves a view's entry


def documented(*, summary: str, description: str | None = None, body: Any = None, query: Any = None,
               responses: dict[int, Any] | None = None, errors: dict[int, str] | None = None,
               public: bool = False, tag: str | None = None,
               variants: dict[str, dict[str, Any]] | None = None, body_optional: bool = False):
    """Declare, on the view itself, what its request and responses are:
      summary, description  text for the document
      body                  marshmallow schema of the JSON body (adds 413, 415, 422)
      query                 marshmallow schema of the query string (adds 422)
      responses             {status: schema, or None for no body}
      errors                {status: description} beyond the ones derived from the above
      public                True: readable without an API key
      tag                   the group it is listed under (default: the path's first segment)
      variants              for a rule with an `any(...)` segment: {value: entry overrides}
      body_optional         True: no body at all reads as `{}` (the view's body(..., optional=True))
    Put it under the route decorator(s): the entry rides on the function Flask registers.
    The view answers with `respond(payload)` (web/responses.py): dumped through the schema
    declared here for its status."""
    given = {"summary": summary, "description": description, "body": body, "query": query,
             "responses": responses, "errors": errors, "public": public, "tag": tag,
             "variants": variants, "body_optional": body_optional}
    entry = {key: value for key, value in given.items() if value is not None and value is not False}
    for overrides in (variants or {}).values():
        unknown = set(overrides) - ENTRY_KEYS
        if unknown:
            raise ValueError(f"unknown key(s) in a variant: {sorted(unknown)}")

    serialisers = serialisers_for(entry)

    def attach(view):
        setattr(view, ENTRY_ATTRIBUTE, entry)
        setattr(view, SERIALISERS_ATTRIBUTE, serialisers)
        return view
    return attach


def entry_of(app: Flask, endpoint: str) -> dict | None:
    """The @documented entry of an endpoint's view, or None."""
    return getattr(app.view_functions.get(endpoint), ENTRY_ATTRIBUTE, None)


ENTRY_KEYS = frozenset({"summary", "description", "body", "query", "responses", "errors",
                        "public", "tag", "variants", "body_optional"})

# Shared error responses (components/responses), by status.
ERROR_RESPONSES = {
    401: ("Unauthorized", "`unauthorized`: no API key, or not a valid one"),
    404: ("NotFound", "`not_found`: nothing with that id"),
    413: ("PayloadTooLarge", "`payload_too_large`: the body is over 1 MiB"),
    415: ("UnsupportedMediaType", "`unsupported_media_type`: send the body as application/json"),
    422: ("ValidationError", "`validation_error`: `fields` names each invalid field"),
    429: ("TooManyRequests", "`too_many_requests`: too many wrong API keys from this client; "
                             "try again after `Retry-After` seconds"),
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
    """/v1 endpoints whose view has no @documented entry yet."""
    return {rule.endpoint for rule in v1_rules(app) if entry_of(app, rule.endpoint) is None}


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
    """The entry's own responses, then the errors its kind of route can answer (key, path ids, query, body)."""
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
        errors |= {401, 429, 503}  # 429: the key check throttles a client guessing keys
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
        raise ValueError(f"{rule.endpoint}: unknown key(s) in its @documented entry: {sorted(unknown)}")
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
        operation["requestBody"] = {"required": not entry.get("body_optional"),
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
        entry = entry_of(app, rule.endpoint)
        if entry is None:
            log.warning("/v1 endpoint %s has no @documented entry on its view", rule.endpoint)
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
@documented(
    summary="This OpenAPI document",
    public=True,
    tag="documentation",
    responses={200: OPENAPI_DOCUMENT},
)
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
