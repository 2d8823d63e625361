"""web/responses.py: a /v1 view answers through the response schema it declares."""
from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from flask import Blueprint, Flask
from marshmallow import Schema, fields

from schemas.conversations import ConversationSchema
from schemas.handoffs import DestinationRef, HandoffSchema, HistoryEntry
from tests import response_conformance
from web import responses
from web.openapi import documented
from web.responses import Serialiser, respond

STORED = {
    "id": "CA1", "channel": "voice", "shared_id": None, "from": "+14155550100", "to": None,
    "started_at": "2026-01-02T03:04:05.678901+00:00",  # as stored, not as marshmallow would format a datetime
    "ended_at": None, "state": {"customer": {"id": "42", "tags": [None, 1.5]}},
    "transcript": [], "log": [{"level": "info", "message": "hi", "at": "2026-01-02T03:04:05Z",
                               "fields": {"k": "v"}}],
    "metrics": [], "annotations": [], "handoff": None, "outcome": None,
}


def tiny_app(view) -> Flask:
    app = Flask(__name__)
    app.testing = True  # a mistake in a view reaches the test
    bp = Blueprint("tiny", __name__)
    bp.add_url_rule("/v1/tiny", view_func=view, methods=["POST"])
    app.register_blueprint(bp)
    return app


@documented(summary="tiny", responses={201: ConversationSchema})
def answer_a_conversation():
    return respond({**STORED, "_leg": "sip", "secret": "not in the schema"})


def test_only_what_the_schema_names_goes_out_and_values_stay_as_stored(monkeypatch):
    # The suite's check (tests/response_conformance.py) would fail this answer for cutting
    # fields; here cutting them is the point.
    monkeypatch.setattr(responses, "dump", lambda serialiser, payload: serialiser.project(payload))
    answer = tiny_app(answer_a_conversation).test_client().post("/v1/tiny")
    assert answer.status_code == 201  # the only status the view declares
    assert answer.get_json() == STORED


@documented(summary="tiny", responses={201: HandoffSchema})
def answer_an_undeclared_status():
    return respond({"id": "HO1"}, 200)


def test_answering_with_a_status_the_view_does_not_declare_is_a_mistake_not_a_guess():
    client = tiny_app(answer_an_undeclared_status).test_client()
    with pytest.raises(TypeError, match="no response schema for 200"):
        client.post("/v1/tiny")


def test_the_suite_fails_an_answer_its_schema_would_cut_short():
    difference = response_conformance._difference
    assert difference(STORED, dict(STORED)) is None
    assert difference({"id": "x", "new_field": 1}, {"id": "x"}) == "/new_field is not in the schema"
    assert difference({"items": [{"n": 5}]}, {"items": [{"n": 5.0}]}) == "/items/0/n was 5, dumped as 5.0"
    assert difference({"at": "2026-01-02T03:04:05Z"}, {"at": "2026-01-02T03:04:05+00:00"}) is not None


def test_the_compiled_serialiser_dumps_what_marshmallow_would():
    class Sample(Schema):
        when = fields.DateTime()  # a field that formats: marshmallow's own dump is used for it
        name = fields.String(data_key="Name", attribute="n")
        steps = fields.List(fields.Nested(HistoryEntry))
        counts = fields.Dict(keys=fields.String(), values=fields.Integer())

    sample = {"when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "n": "x", "left_out": 1,
              "steps": [{"state": "failed", "at": "2026-01-02T03:04:05Z", "detail": {"sip": 486}, "x": 0}],
              "counts": {"busy": 2}}
    assert Serialiser(Sample()).project(sample) == Sample().dump(sample)
    assert Serialiser(ConversationSchema()).project(STORED) == ConversationSchema().dump(STORED)
    destination = SimpleNamespace(id="billing", name="Billing", method="sip_refer", route=None)
    assert Serialiser(DestinationRef()).project(destination) == DestinationRef().dump(destination)
