"""/v1 routes of versioned routing configuration: versions, diff, promote, rollback, and
a destination's preview and test call; plus the test call's Twilio status callback."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, request
from twilio.twiml.voice_response import VoiceResponse

from handoff import callback_urls
from handoff.handoffs import HandoffRequest, Handoffs
from handoff.services import REDIS_ERRORS
from handoff.test_calls import TestCalls
from handoff.versions import Versions
from schemas.routing import (
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

from .api import body, query, require_api_key
from .context import api_actor, public_base_url, services
from .openapi import documented
from .responses import respond
from .twilio_auth import twilio_signed

log = logging.getLogger(__name__)
bp = Blueprint("routing", __name__, url_prefix="/v1")
bp.before_request(require_api_key)
voice_bp = Blueprint("routing_voice", __name__, url_prefix="/voice")


def test_status_url(destination_id: str, test_id: str) -> str:
    """Where Twilio reports the end of a destination's test call."""
    return callback_urls.destination_test_status(public_base_url(), destination_id, test_id)


@bp.get("/config/versions")
@documented(
    summary="List versions of the routing configuration",
    description="Every change to destinations, topics or the integration, newest first; "
                "`live` marks the version callers meet.",
    responses={200: VersionList},
)
def list_versions():
    return respond({"items": Versions(services()).list()})


@bp.get("/config/diff")
@documented(
    summary="Compare two versions",
    description="Default: live → sandbox (what promoting would change).",
    query=DiffQuery,
    responses={200: DiffSchema},
    errors={404: "`not_found`: no version with that number"},
)
def config_diff():
    q = query(DiffQuery())
    return respond({"changes": Versions(services()).diff(q.get("from_"), q.get("to"))})


@bp.post("/config/promote")
@documented(
    summary="Promote the sandbox draft to live",
    responses={200: VersionItem},
    errors={409: "`conflict`: nothing to promote"},
)
def promote():
    return respond(Versions(services(), api_actor()).promote())


@bp.post("/config/rollback")
@documented(
    summary="Roll back to a version",
    description="That version's content becomes live and the draft, recorded as a new version.",
    body=RollbackInput,
    responses={200: VersionItem},
    errors={404: "`not_found`: no version with that number",
            409: "`conflict`: that content is already live"},
)
def rollback():
    fields = body(RollbackInput())
    return respond(Versions(services(), api_actor()).rollback(fields["version"]))


@bp.post("/destinations/<destination_id>/preview")
@documented(
    summary="Preview a handoff to a destination",
    description="Exactly what a handoff to this destination (in the sandbox draft) would "
                "answer on a call from the given caller leg, with sample state: the same "
                "code path as a real handoff. Nothing is created.",
    body=PreviewInput,
    responses={200: PreviewSchema},
)
def preview(destination_id):
    fields = body(PreviewInput())
    handoff, twiml = Handoffs(services()).preview(
        destination_id, fields["leg"],
        HandoffRequest(reason=fields["reason"], utterance=fields["utterance"], sip_headers=fields["sip_headers"]),
        state=fields["state"], caller=fields["from_"], called=fields["to"], base_url=public_base_url())
    return respond({"twiml": str(twiml), "sip_headers": handoff.sip_headers, "warnings": handoff.warnings})


@bp.post("/destinations/<destination_id>/test_call")
@documented(
    summary="Place a test call to a destination",
    description="The worker calls the destination's first route through Twilio with a short "
                "spoken message; the result (answered, busy, no-answer, failed + SIP code) "
                "shows on the destination as `last_test`.",
    body=TestCallInput, body_optional=True,
    responses={202: LastTestSchema},
    errors={409: "`conflict`: Twilio credentials are not configured"},
)
def test_call(destination_id):
    fields = body(TestCallInput(), optional=True)
    test = TestCalls(services()).request(destination_id, fields["message"], fields["from_"],
                                         lambda test_id: test_status_url(destination_id, test_id))
    return respond(test, 202)


@voice_bp.route("/test_call/<destination_id>/<test_id>/status", methods=["POST"])
@twilio_signed
def test_call_status(destination_id, test_id):
    """Twilio's status callback of a test call: its result becomes `last_test`."""
    try:
        TestCalls(services()).finished(destination_id, test_id, request.form.to_dict(flat=True))
    except REDIS_ERRORS:
        log.error("Redis unreachable: result of test call %s not recorded", test_id)
    return Response(str(VoiceResponse()), status=200, mimetype="text/xml")
