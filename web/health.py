from __future__ import annotations

from flask import Blueprint, jsonify

from handoff.services import REDIS_ERRORS

from .context import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    try:
        services().store.ping()
    except REDIS_ERRORS:
        return jsonify(status="unavailable", redis="unreachable"), 503
    return jsonify(status="ok", redis="ok")
