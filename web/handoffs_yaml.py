"""/v1/destinations/export and /import: PolyAI ADK's config/handoffs.yaml, in and out."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from handoff import adk
from handoff.destinations import Destinations
from schemas.handoffs_yaml import ImportQuery

from .api import query, require_api_key
from .context import services

bp = Blueprint("handoffs_yaml", __name__, url_prefix="/v1")
bp.before_request(require_api_key)

@bp.get("/destinations/export")
def export_destinations():
    return Response(adk.export_yaml(Destinations(services())), mimetype="application/yaml",
                    headers={"Content-Disposition": 'attachment; filename="handoffs.yaml"'})


@bp.post("/destinations/import")
def import_destinations():
    """The YAML body; `?dry_run=true` answers what would change and writes nothing."""
    dry_run = query(ImportQuery())["dry_run"]
    text = request.get_data(as_text=True)
    return jsonify(adk.import_yaml(Destinations(services()), text, dry_run=dry_run))
