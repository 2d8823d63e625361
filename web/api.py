"""The /v1 JSON API: destinations, integration, conversations, handoffs, event feed."""
from __future__ import annotations

import json

from flask import Blueprint, Response, request
from marshmallow import Schema, ValidationError

from handoff import jsontext, polyai
from handoff.calls import Calls
from handoff.conversations import KEEP, Conversations
from handoff.destinations import Destinations
from handoff.errors import Unauthorized, UnsupportedMediaType, ValidationFailed
from handoff.handoffs import HandoffRequest, Handoffs
from handoff.review import Review
from schemas.calls import CallCreate
from schemas.common import ConfirmQuery, patch_schema
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
from schemas.routing import DestinationListQuery, DestinationPage
from schemas.stats import StatsPage, StatsQuery

from . import throttling
from .context import api_actor, given_api_key, matching_key, public_base_url, services
from .long_polls import long_poll_slot
from .openapi import documented
from .responses import respond

bp = Blueprint("api", __name__, url_prefix="/v1")

EVENTS_QUERY = EventsQuery()  # built once: the feed is polled constantly
DESTINATION_PAGE = 100  # destinations per page when a cursor comes without a limit


# -- parsing --------------------------------------------------------------------------
def _fields(error: ValidationError) -> dict:
    messages = error.messages if isinstance(error.messages, dict) else {"body": error.messages}
    return messages


def _load(schema: Schema, data, **kwargs) -> dict:
    try:
        return schema.load(data, **kwargs)
    except ValidationError as exc:
        fields = _fields(exc)
        names = ", ".join(sorted(fields))
        raise ValidationFailed(f"invalid field(s): {names}", fields) from None


def body(schema: Schema, *, optional: bool = False, **kwargs) -> dict:
    """The JSON body, validated. 415 for another content type, 422 for unreadable JSON.
    `optional` (every field has a default): a request with no body at all, whatever its
    content type says, reads as `{}`, as a widget or `curl -X POST` sends it."""
    if optional and not request.get_data(cache=True).strip():
        return _load(schema, {}, **kwargs)
    if not request.is_json:
        raise UnsupportedMediaType("send the body as application/json")
    raw = request.get_data(cache=True)
    try:
        data = jsontext.loads(raw) if raw else None
    except ValueError as exc:  # also NaN/Infinity and deep nesting (handoff/jsontext.py)
        why = "not valid JSON" if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise ValidationFailed(f"the body is not valid JSON: {exc}", {"body": [why]}) from None
    if not isinstance(data, dict):
        raise ValidationFailed("the body must be a JSON object", {"body": ["must be a JSON object"]})
    return _load(schema, data, **kwargs)


def query(schema: Schema) -> dict:
    return _load(schema, request.args.to_dict(flat=True))


@bp.before_request
def require_api_key():
    given = given_api_key()
    if given:
        throttling.refuse_if_throttled()
    if matching_key(given) is None:
        if given:
            throttling.key_failed()
        raise Unauthorized("a valid API key is required (Authorization: Bearer <key> or X-API-Key)")


# -- destinations ---------------------------------------------------------------------
@bp.get("/destinations")
@documented(
    summary="List destinations",
    description="Without `limit` and `cursor`: every destination, `{\"items\"}`. With "
                "either: one page, oldest first, and `next_cursor` (null on the last page).",
    query=DestinationListQuery,
    responses={200: DestinationPage},
)
def list_destinations():
    q = query(DestinationListQuery())
    if "limit" not in q and "cursor" not in q:
        return respond({"items": Destinations(services()).list()})
    items, next_cursor = Destinations(services()).page(q.get("limit", DESTINATION_PAGE), q.get("cursor"))
    return respond({"items": items, "next_cursor": next_cursor})


@bp.post("/destinations")
@documented(
    summary="Create a destination",
    description="The id is a slug made from the name. The first destination created "
                "becomes the default.",
    body=DestinationInput,
    responses={201: DestinationSchema},
    errors={409: "`conflict`: a destination with that name (case-insensitive) exists"},
)
def create_destination():
    return respond(Destinations(services(), api_actor()).create(body(DestinationInput())), 201)


@bp.get("/destinations/<destination_id>")
@documented(
    summary="Get a destination",
    responses={200: DestinationSchema},
)
def get_destination(destination_id):
    return respond(Destinations(services()).get(destination_id))


@bp.patch("/destinations/<destination_id>")
@documented(
    summary="Update a destination",
    description="A partial update: only the fields sent change. The id never changes.",
    body=DestinationInput(partial=True),
    responses={200: DestinationSchema},
    errors={409: "`conflict`: another destination has that name"},
)
def update_destination(destination_id):
    # Only what was sent: a partial load leaves out absent fields, defaults included.
    fields = body(patch_schema(DestinationInput))
    return respond(Destinations(services(), api_actor()).update(destination_id, fields))


@bp.post("/destinations/<destination_id>/duplicate")
@documented(
    summary="Duplicate a destination",
    description='The copy is named "<name> (copy)" (then " (copy 2)", ...) and is never '
                "the default.",
    responses={201: DestinationSchema},
    errors={409: "`conflict`: the copy's id was taken at the same moment; retry"},
)
def duplicate_destination(destination_id):
    return respond(Destinations(services(), api_actor()).duplicate(destination_id), 201)


@bp.post("/destinations/<destination_id>/default")
@documented(
    summary="Make a destination the default",
    description="Exactly one destination is the default at any time.",
    responses={200: DestinationSchema},
)
def make_default(destination_id):
    return respond(Destinations(services(), api_actor()).set_default(destination_id))


@bp.delete("/destinations/<destination_id>")
@documented(
    summary="Delete a destination",
    description="Deleting the default leaves none: every destination then carries the "
                "warning `no_default` until one is set.",
    query=ConfirmQuery,
    responses={204: None},
    errors={409: "`confirmation_required`: `confirm` is missing or not the exact name"},
)
def delete_destination(destination_id):
    Destinations(services(), api_actor()).delete(destination_id, request.args.get("confirm"))
    return Response(status=204)


@bp.get("/integration")
@documented(
    summary="Get the integration constraints",
    responses={200: IntegrationSchema},
)
def get_integration():
    return respond(Destinations(services()).get_integration())


@bp.put("/integration")
@documented(
    summary="Set the integration constraints",
    description="Existing destinations that no longer fit carry a warning "
                "(`method_mismatch`, `route_not_editable`, `sip_headers_unsupported`).",
    body=IntegrationSchema,
    responses={200: IntegrationSchema},
)
def put_integration():
    return respond(Destinations(services(), api_actor()).put_integration(body(IntegrationSchema())))


# -- conversations --------------------------------------------------------------------
@bp.post("/conversations")
@documented(
    summary="Start a conversation",
    body=ConversationCreate, body_optional=True,
    responses={201: ConversationSchema},
)
def create_conversation():
    fields = body(ConversationCreate(), optional=True)
    conversations = Conversations(services())
    doc, _ = conversations.create(channel=fields["channel"], shared_id=fields["shared_id"],
                                  state=fields["state"], from_=fields["from_"], to=fields["to"])
    return respond(conversations.present(doc), 201)


@bp.get("/conversations")
@documented(
    summary="List conversations",
    description="Oldest first; pass `next_cursor` back as `cursor` for the next page.",
    query=ConversationListQuery,
    responses={200: ConversationPage},
)
def list_conversations():
    q = query(ConversationListQuery())
    items, next_cursor, has_more = Conversations(services()).list(
        shared_id=q.get("shared_id"), channel=q.get("channel"), has_handoff=q.get("has_handoff"),
        limit=q["limit"], cursor=q.get("cursor"))
    return respond({"items": items, "next_cursor": next_cursor, "has_more": has_more})


@bp.get("/conversations/<conversation_id>")
@documented(
    summary="Get a conversation",
    responses={200: ConversationSchema},
)
def get_conversation(conversation_id):
    return respond(Conversations(services()).get(conversation_id))


@bp.patch("/conversations/<conversation_id>")
@documented(
    summary="Update a conversation",
    description="`state` is merged into the conversation's state.",
    body=ConversationPatch,
    responses={200: ConversationSchema},
)
def update_conversation(conversation_id):
    fields = body(ConversationPatch())
    return respond(Conversations(services()).update(
        conversation_id, shared_id=fields.get("shared_id", KEEP), state=fields.get("state")))


ENTRY_SCHEMAS = {"transcript": TranscriptEntry, "log": LogEntry, "metrics": MetricEntry,
                 "annotations": AnnotationEntry}


@bp.post("/conversations/<conversation_id>/<any(transcript, log, metrics, annotations):part>")
@documented(
    summary="Append one entry to a conversation",
    variants={
        "transcript": {"summary": "Append a transcript turn",
                       "body": TranscriptEntry, "responses": {201: TranscriptEntry}},
        "log": {"summary": "Append a log line",
                "body": LogEntry, "responses": {201: LogEntry}},
        "metrics": {"summary": "Record a metric",
                    "body": MetricEntry, "responses": {201: MetricEntry}},
        "annotations": {"summary": "Annotate a conversation",
                        "body": AnnotationEntry, "responses": {201: AnnotationEntry}},
    },
)
def append_entry(conversation_id, part):
    entry = body(ENTRY_SCHEMAS[part]())
    return respond(Conversations(services()).append(conversation_id, part, entry), 201)


@bp.post("/conversations/<conversation_id>/handoff")
@documented(
    summary="Hand a conversation off to a human",
    description="For a live voice call the call is redirected into the handoff through "
                "Twilio's REST API; chat and SMS handoffs wait `pending` for a connector "
                "to claim them.",
    body=HandoffRequestSchema, body_optional=True,
    responses={201: HandoffSchema},
)
def create_handoff(conversation_id):
    fields = body(HandoffRequestSchema(), optional=True)
    handoff = Handoffs(services()).start(conversation_id, HandoffRequest(**fields),
                                         base_url=public_base_url())
    return respond(handoff.public(), 201)


@bp.post("/calls")
@documented(
    summary="Place an outbound call",
    description="Twilio places the call with answering-machine detection; the "
                "conversation's `classification` says what answered once it is known. "
                "A number Twilio refuses is a 422; Twilio unreachable is a 503.",
    body=CallCreate,
    responses={201: ConversationSchema},
    errors={409: "`conflict`: Twilio credentials are not configured"},
)
def place_call():
    """An outbound call with answering-machine detection; 201 with its conversation."""
    return respond(Calls(services()).place(body(CallCreate()), public_base_url()), 201)


# -- handoffs -------------------------------------------------------------------------
@bp.get("/handoffs")
@documented(
    summary="List handoffs",
    description="Oldest first, stable across polls; pass `next_cursor` back as `cursor`.",
    query=HandoffListQuery,
    responses={200: HandoffPage},
)
def list_handoffs():
    q = query(HandoffListQuery())
    items, next_cursor, has_more = Handoffs(services()).list(
        state=q.get("state"), channel=q.get("channel"), destination=q.get("destination"),
        shared_id=q.get("shared_id"), limit=q["limit"], cursor=q.get("cursor"))
    return respond({"items": [h.public() for h in items], "next_cursor": next_cursor, "has_more": has_more})


@bp.get("/handoffs/events")
@documented(
    summary="Poll the handoff event feed",
    description="Every state change exactly once, in order. `wait` holds the request "
                "open until something happens; pass `next_cursor` back as `after`.",
    query=EventsQuery,
    responses={200: EventPage},
    errors={429: "`too_many_requests`: this web process already holds its limit of waiting "
                 "polls (HANDOFF_MAX_LONG_POLLS), or this client sent too many wrong API keys; "
                 "poll again after `Retry-After` seconds"},
)
def handoff_events():
    q = query(EVENTS_QUERY)
    after = q.get("after")  # checked by EventsQuery: a cursor this feed issued
    if not q["wait"]:
        return _event_page(after, q)
    with long_poll_slot():
        return _event_page(after, q)


def _event_page(after: str | None, q: dict) -> Response:
    page = services().event_feed.page(after, q["limit"], q["wait"])
    return Response(page.to_json(), mimetype="application/json")


@bp.get("/handoffs/<ref>")
@documented(
    summary="Get a handoff",
    responses={200: HandoffSchema},
)
def get_handoff(ref):
    return respond(Handoffs(services()).get(ref).public())


@bp.patch("/handoffs/<ref>")
@documented(
    summary="Merge data into a handoff, or mark it abandoned",
    description="`{\"state\": \"abandoned\"}`: the user left before a human answered.",
    body=HandoffPatchSchema,
    responses={200: HandoffSchema},
    errors={409: "`conflict`: `abandoned` for a handoff already completed or failed"},
)
def patch_handoff(ref):
    fields = body(HandoffPatchSchema())
    if "data" not in fields and "state" not in fields:
        raise ValidationFailed("give data or state", {"data": ["data or state is required"]})
    handoffs = Handoffs(services())
    handoff = handoffs.merge_data(ref, fields["data"]) if "data" in fields else None
    if "state" in fields:
        handoff = handoffs.abandon(ref, {"reason": "connector"})
    return respond(handoff.public())


@bp.post("/handoffs/<ref>/claim")
@documented(
    summary="Claim a handoff for an agent",
    body=ClaimSchema,
    responses={200: HandoffSchema},
    errors={409: "`conflict`: already claimed"},
)
def claim_handoff(ref):
    fields = body(ClaimSchema())
    return respond(Handoffs(services()).claim(ref, fields["agent"]).public())


@bp.post("/handoffs/<ref>/outcome")
@documented(
    summary="Record a handoff's outcome",
    description="The outcome is also visible on the conversation.",
    body=OutcomeSchema,
    responses={200: HandoffSchema},
)
def handoff_outcome(ref):
    fields = body(OutcomeSchema())
    return respond(Handoffs(services()).record_outcome(ref, fields).public())


@bp.get("/handoff_state")
@documented(
    summary="Read a handoff as PolyAI's Handoff API does",
    description="`shared_id` wins when both are given; give at least one.",
    query=HandoffStateQuery,
    responses={200: HandoffStateSchema},
    errors={404: "`not_found`: no handoff for that conversation or shared_id"},
    tag="handoffs",
)
def handoff_state():
    """The read PolyAI's Handoff API offers, for connectors written against it."""
    q = query(HandoffStateQuery())
    if not q.get("id") and not q.get("shared_id"):
        raise ValidationFailed("give id or shared_id", {"id": ["id or shared_id is required"]})
    return respond(polyai.handoff_state(services(), q.get("id"), q.get("shared_id")))


# -- figures --------------------------------------------------------------------------
@bp.get("/stats/handoffs")
@documented(
    summary="Handoff figures for a period",
    description="Counts kept as handoffs change state (never a scan of conversations), "
                "by the day each handoff was created (UTC): one item per day, reason or "
                "destination. `connected` counts handoffs that reached a human at any "
                "attempt, `resolved` those with a pushed outcome. A period is at most "
                "366 days.",
    query=StatsQuery,
    responses={200: StatsPage},
    tag="stats",
)
def handoff_stats():
    q = query(StatsQuery())
    return respond(Review(services()).stats(q.get("from_"), q.get("to"), q["group_by"]))
