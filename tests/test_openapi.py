"""/v1/openapi.json and /docs as a connector author reads them, and a property-based run of
every /v1 operation in the document: whatever schemathesis sends, no answer is a 5xx, and
every answer is one the document promises (its status, content type and body schema)."""
from __future__ import annotations

import functools
import itertools
import json
import re

import pytest
import responses
import schemathesis
from hypothesis import HealthCheck, settings
from markupsafe import escape
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import create_app
from handoff.config import Config
from tests import response_conformance
from tests.helpers import API_KEY
from web import openapi

AUTH = {"Authorization": f"Bearer {API_KEY}"}
HTTP_METHODS = {"get", "put", "post", "patch", "delete"}
# A long poll answers after `wait` seconds when nothing happens; the feed's waiting is tested
# elsewhere, so fuzzed waits are cut to this to keep the run inside its time budget.
MAX_FUZZED_WAIT = 0.2


def flask_path(rule: str) -> str:
    return re.sub(r"<(?:[^>:]+:)?([^>]+)>", r"{\1}", rule)


def spec_operations(spec: dict) -> set[tuple[str, str]]:
    return {(method, path) for path, item in spec["paths"].items() for method in item
            if method in HTTP_METHODS}


# -- the document ---------------------------------------------------------------------
def test_every_v1_endpoint_is_documented_on_its_view(app):
    missing = openapi.undocumented_endpoints(app)
    assert not missing, (f"/v1 endpoint(s) {sorted(missing)} have no @documented(...) on their "
                         "view: add their summary, body/query schema and responses")


def test_documented_leaves_its_entry_on_the_view_and_refuses_typos():
    def view():
        return ""
    assert openapi.documented(summary="List topics", responses={200: None})(view) is view
    assert getattr(view, openapi.ENTRY_ATTRIBUTE) == {"summary": "List topics", "responses": {200: None}}
    # A decorator stacked on top with functools.wraps (as Flask's own do) keeps the entry.
    wrapped = functools.wraps(view)(lambda: view())
    assert getattr(wrapped, openapi.ENTRY_ATTRIBUTE)["summary"] == "List topics"
    with pytest.raises(TypeError):
        openapi.documented(summary="x", respones={200: None})
    with pytest.raises(ValueError, match="bdy"):
        openapi.documented(summary="x", variants={"log": {"bdy": None}})


def test_a_new_v1_route_is_noticed_even_before_it_is_documented(app, config):
    fresh = create_app(config)
    fresh.add_url_rule("/v1/widgets/<widget_id>", "widgets.get_widget", lambda widget_id: "",
                       methods=["GET"])
    assert openapi.undocumented_endpoints(fresh) - openapi.undocumented_endpoints(app) == \
        {"widgets.get_widget"}
    spec = fresh.test_client().get("/v1/openapi.json").get_json()
    operation = spec["paths"]["/v1/widgets/{widget_id}"]["get"]
    assert operation["summary"] == "(undocumented: widgets.get_widget)"
    assert operation["parameters"][0]["name"] == "widget_id"


def test_every_v1_rule_and_method_is_in_the_document(app):
    spec = app.test_client().get("/v1/openapi.json").get_json()
    documented = spec_operations(spec)
    for rule in openapi.v1_rules(app):
        templated = flask_path(rule.rule)
        pattern = re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(templated)) + "$")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            matches = {path for m, path in documented if m == method.lower() and pattern.match(path)}
            assert matches, f"{method} {rule.rule} ({rule.endpoint}) is missing from /v1/openapi.json"


def test_the_document_is_readable_without_an_api_key(app):
    response = app.test_client().get("/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    spec = response.get_json()
    assert spec["openapi"].startswith("3.") and spec["info"]["title"] == "handoff"
    assert spec["paths"]["/v1/openapi.json"]["get"]["security"] == []
    # ...while the API itself still is not.
    assert app.test_client().get("/v1/destinations").status_code == 401


def test_the_document_is_valid_openapi_3(app):
    schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", app)
    schema.validate()  # the OpenAPI 3.0 meta-schema; raises on the first violation
    spec = schema.raw_schema
    refs = set(re.findall(r'"\$ref": "#/components/(\w+)/(\w+)"', json.dumps(spec)))
    assert refs
    for kind, name in refs:
        assert name in spec["components"][kind], f"dangling $ref #/components/{kind}/{name}"
    operation_ids = [op["operationId"] for path, item in spec["paths"].items()
                     for method, op in item.items() if method in HTTP_METHODS]
    assert len(operation_ids) == len(set(operation_ids)), "operationIds must be unique"


def test_security_schemes_and_error_responses(app):
    spec = app.test_client().get("/v1/openapi.json").get_json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer",
                                     "description": "Authorization: Bearer <key>"}
    assert schemes["apiKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert spec["security"] == [{"bearerAuth": []}, {"apiKeyHeader": []}]
    error = spec["components"]["schemas"]["Error"]
    assert error["properties"]["error"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert set(spec["components"]["schemas"]["ErrorBody"]["properties"]) == {"code", "message", "fields"}

    create = spec["paths"]["/v1/destinations"]["post"]
    assert set(create["responses"]) == {"201", "401", "409", "413", "415", "422", "429", "503"}
    assert create["responses"]["401"] == {"$ref": "#/components/responses/Unauthorized"}
    assert create["responses"]["409"]["content"]["application/json"]["schema"] == \
        {"$ref": "#/components/schemas/Error"}
    assert create["requestBody"]["content"]["application/json"]["schema"] == \
        {"$ref": "#/components/schemas/DestinationInput"}
    delete = spec["paths"]["/v1/destinations/{destination_id}"]["delete"]
    assert set(delete["responses"]) == {"204", "401", "404", "409", "422", "429", "503"}
    assert "confirmation_required" in delete["responses"]["409"]["description"]
    listing = spec["paths"]["/v1/destinations"]["get"]
    assert set(listing["responses"]) == {"200", "401", "422", "429", "503"}  # a bad cursor or limit


def test_bodies_parameters_and_queries_come_from_the_schemas(app):
    spec = app.test_client().get("/v1/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    destination_input = schemas["DestinationInput"]
    assert destination_input["required"] == ["name"]
    assert destination_input["properties"]["ring_timeout"] == {
        "type": "integer", "default": 30, "minimum": 5, "maximum": 120}
    assert destination_input["properties"]["method"]["enum"] == [
        "sip_refer", "sip_invite", "sip_bye", "twilio_flex"]
    # A PATCH body is the same fields, none required, no defaults filled in.
    patch = spec["paths"]["/v1/destinations/{destination_id}"]["patch"]
    assert patch["requestBody"]["content"]["application/json"]["schema"] == \
        {"$ref": "#/components/schemas/DestinationInputPatch"}
    assert "required" not in schemas["DestinationInputPatch"]
    assert all("default" not in p for p in schemas["DestinationInputPatch"]["properties"].values())
    assert schemas["Conversation"]["properties"]["from"] == {"type": "string", "nullable": True}

    get_one = spec["paths"]["/v1/handoffs/{ref}"]["get"]
    assert get_one["parameters"][0]["in"] == "path" and get_one["parameters"][0]["name"] == "ref"
    assert get_one["parameters"][0]["required"] is True

    events = {p["name"]: p for p in spec["paths"]["/v1/handoffs/events"]["get"]["parameters"]}
    assert set(events) == {"after", "wait", "limit"}
    assert events["wait"]["schema"] == {"type": "number", "default": 0.0,
                                        "minimum": 0.0, "maximum": 30.0}
    listing = {p["name"] for p in spec["paths"]["/v1/handoffs"]["get"]["parameters"]}
    assert listing == {"state", "channel", "destination", "shared_id", "limit", "cursor"}

    # The any(...) segment becomes one path per entry kind, each with its own body.
    for part, schema in (("transcript", "TranscriptEntry"), ("log", "LogEntry"),
                         ("metrics", "MetricEntry"), ("annotations", "AnnotationEntry")):
        op = spec["paths"][f"/v1/conversations/{{conversation_id}}/{part}"]["post"]
        assert op["requestBody"]["content"]["application/json"]["schema"] == \
            {"$ref": f"#/components/schemas/{schema}"}
        assert op["operationId"] == f"append_entry_{part}"


def test_docs_page_lists_every_operation(app):
    response = app.test_client().get("/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    spec = app.test_client().get("/v1/openapi.json").get_json()
    for method, path in spec_operations(spec):
        op = spec["paths"][path][method]
        assert f'id="op-{op["operationId"]}"' in page
        assert escape(op["summary"]) in page
        assert escape(path) in page
    for name in spec["components"]["schemas"]:
        assert f'id="schema-{name}"' in page
    # parameters and body fields are listed, with their constraints
    assert "<code>confirm</code>" in page and "<code>ring_timeout</code>" in page
    assert "length ≤ 100" in page and "≥ 5; ≤ 120" in page
    # Nothing is fetched from elsewhere: the machines it runs on may have no internet.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script" not in page


def test_docs_page_escapes_what_it_shows(app, monkeypatch):
    hostile = '<script>alert("x")</script> & "quoted" `<img src=x onerror=alert(1)>`'
    view = app.view_functions["api.list_destinations"]
    monkeypatch.setattr(view, openapi.ENTRY_ATTRIBUTE,
                        {**openapi.entry_of(app, "api.list_destinations"), "summary": hostile,
                         "description": hostile})
    page = app.test_client().get("/docs").get_data(as_text=True)
    assert "<script>" not in page and "<img" not in page
    assert ("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#34;quoted&#34; "
            "<code>&lt;img src=x onerror=alert(1)&gt;</code>") in page


def test_an_answer_off_the_document_is_named():
    """tests/response_conformance.py, which checks every /v1 answer of the suite."""
    topic = {"id": "refunds", "name": "Refunds", "phrases": ["refund"], "created_at": "2026-01-01T00:00:00Z",
             "updated_at": "2026-01-01T00:00:00Z", "warnings": [],
             "action": {"type": "handoff", "destination": "support", "reason": None, "utterance": None}}
    assert response_conformance.mismatch("GET", "/v1/topics", 200, "application/json", {"items": [topic]}) is None
    assert "'bogus' was unexpected" in response_conformance.mismatch(
        "GET", "/v1/topics", 200, "application/json", {"items": [topic], "bogus": 1})
    assert "at items/0/phrases" in response_conformance.mismatch(
        "GET", "/v1/topics", 200, "application/json", {"items": [{**topic, "phrases": "refund"}]})
    assert "418, which the document does not list" in response_conformance.mismatch(
        "GET", "/v1/topics/refunds", 418, "application/json", {})
    assert "text/html" in response_conformance.mismatch("POST", "/v1/topics", 201, "text/html", None)
    assert response_conformance.mismatch("GET", "/v1/widgets", 404, "text/html", None) is None


# -- property-based: every answer as documented, none a 5xx -------------------------
# Stand-ins a fuzzed id (path parameter or top-level body field) takes half the time;
# `known_ids` swaps them for ids that exist, so requests get past the 404 into the handlers.
# (URL-safe: schemathesis quotes path parameters.)
KNOWN = {"destination_id": ("known-destination", "known-fallback-destination"),
         "conversation_id": ("known-voice-conversation", "known-chat-conversation"),
         "ref": ("known-handoff", "known-shared-id"),
         "topic_id": ("known-topic",)}

BODY_IDS = {"conversation_id": "conversation_id", "destination": "destination_id",
            "fallback": "destination_id"}

FUZZ_CONFIG = schemathesis.Config.from_dict({
    "headers": AUTH,
    "generation": {"mode": "all"},  # valid and invalid input alike
    "dictionaries": {name: {"values": list(tokens)} for name, tokens in KNOWN.items()},
    "parameters": {
        **{f"path.{name}": {"dictionary": name, "probability": 0.5} for name in KNOWN},
        **{f"body.{field}": {"dictionary": name, "probability": 0.5}
           for field, name in BODY_IDS.items()},
    },
})

# schemathesis makes one test per operation, so it needs the document at collection time,
# before any fixture exists. The document is the URL map's, the same for every app: this one
# is never connected to anything. (`schemathesis.pytest.from_fixture` would defer this, but
# it reads `Node._nodeid`, which pytest 9.2 no longer has.)
schema = schemathesis.openapi.from_wsgi(
    "/v1/openapi.json", create_app(Config(redis_url="redis://127.0.0.1:1/0")), config=FUZZ_CONFIG)


@pytest.fixture
def twilio_rest():
    """Twilio's REST API as it answers a call being placed (POST /v1/calls goes through it);
    any other outbound HTTP fails loudly."""
    sids = (f"CA{n:032x}" for n in itertools.count(1))
    calls = re.compile(r"https://api\.twilio\.com/2010-04-01/Accounts/\w+/Calls\.json")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, calls, callback=lambda _request: (
            201, {}, json.dumps({"sid": next(sids), "status": "queued"})))
        yield mock


@pytest.fixture
def known_ids(api):
    # Not "Billing": the document's example destination should be creatable.
    destination = api.post("/v1/destinations", json={"name": "Support", "route": "1001"}).get_json()
    fallback = api.post("/v1/destinations", json={"name": "Sales", "route": "sip:sales@pbx.example.com",
                                                  "fallback": destination["id"]}).get_json()
    voice = api.post("/v1/conversations", json={"channel": "voice", "shared_id": "s-voice"}).get_json()
    chat = api.post("/v1/conversations", json={"channel": "webchat", "shared_id": "s-chat",
                                               "state": {"customer": {"id": "c1"}}}).get_json()
    handoff = api.post(f"/v1/conversations/{chat['id']}/handoff", json={"reason": "billing"}).get_json()
    topic = api.post("/v1/topics", json={"name": "Refunds", "phrases": ["refund"],
                                         "action": {"destination": destination["id"]}}).get_json()
    ids = {"known-destination": destination["id"], "known-fallback-destination": fallback["id"],
           "known-voice-conversation": voice["id"], "known-chat-conversation": chat["id"],
           "known-handoff": handoff["id"], "known-shared-id": handoff["shared_id"],
           "known-topic": topic["id"]}
    assert all(ids.values()), ids
    return ids


# 150 examples per operation (10× the first version of this run): ~60 s of CPU on 2 cores
# for the ~35 operations, two thirds of it generating cases.
@schema.parametrize()
@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_answer_is_documented_and_none_is_a_server_error(case, app, known_ids, twilio_rest):
    for values in (case.path_parameters, case.body):
        if isinstance(values, dict):
            for name, value in values.items():
                if isinstance(value, str) and value in known_ids:
                    values[name] = known_ids[value]
    query = case.query if isinstance(case.query, dict) else {}
    try:
        if float(query.get("wait")) > MAX_FUZZED_WAIT:
            query["wait"] = MAX_FUZZED_WAIT
    except (TypeError, ValueError):
        pass  # absent or not a number (the API answers 422 at once)
    response = case.call(app=app, headers=AUTH)
    assert response.status_code != 401, "the API key did not reach the app: this run tests nothing"
    case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                            content_type_conformance, response_schema_conformance])
