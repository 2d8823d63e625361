"""/v1/destinations/export and /import: PolyAI ADK's config/handoffs.yaml, in and out."""
from __future__ import annotations

from flask import Blueprint, Response, request

from handoff import adk
from handoff.destinations import Destinations
from schemas.destinations import load_destination
from schemas.handoffs_yaml import ImportQuery, ImportResult

from .api import query, require_api_key
from .context import services
from .openapi import documented
from .responses import respond

bp = Blueprint("handoffs_yaml", __name__, url_prefix="/v1")
bp.before_request(require_api_key)

@bp.get("/destinations/export")
@documented(
    summary="Export destinations as PolyAI ADK's handoffs.yaml",
    description="The body is YAML (`application/yaml`): `handoffs: [{name, description, "
                "is_default, sip_config: {method, phone_number, outbound_endpoint, "
                "outbound_encryption}, sip_headers: [{key, value}]}]`. SIP REFER, INVITE "
                "and BYE destinations only (ADK has no Flex).",
    responses={200: None},
    tag="destinations",
)
def export_destinations():
    return Response(adk.export_yaml(Destinations(services())), mimetype="application/yaml",
                    headers={"Content-Disposition": 'attachment; filename="handoffs.yaml"'})


@bp.post("/destinations/import")
@documented(
    summary="Import PolyAI ADK's handoffs.yaml",
    description="Send the file as the body (YAML). Destinations are matched by name: "
                "created or updated, never deleted. Every entry is checked first; one "
                "invalid entry → 422 naming it (`handoffs[2] (name)`) and nothing is written.",
    query=ImportQuery,
    responses={200: ImportResult},
    errors={413: "`payload_too_large`: the body is over 1 MiB"},
    tag="destinations",
)
def import_destinations():
    """The YAML body; `?dry_run=true` answers what would change and writes nothing."""
    dry_run = query(ImportQuery())["dry_run"]
    text = request.get_data(as_text=True)
    return respond(adk.import_yaml(Destinations(services()), text, load_destination, dry_run=dry_run))
