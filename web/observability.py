"""What every request gets, whatever its blueprint: a request id (the `X-Request-ID` header,
honoured when the caller sends one), the ids of its call bound for the log lines
(handoff/logs.py), its latency counted (handoff/metrics.py); and `GET /metrics`.
"""
from __future__ import annotations

import re
import time
import uuid

from flask import Blueprint, Flask, Response, g, request

from handoff import logs, metrics
from handoff.config import Config

from .api import require_api_key
from .context import services

bp = Blueprint("observability", __name__)

REQUEST_ID_HEADER = "X-Request-ID"
# An incoming id is kept when it is a plausible id: no spaces or control characters to
# smuggle into log lines, and short.
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
LONG_POLL_ENDPOINTS = ("api.handoff_events",)
FORM = "application/x-www-form-urlencoded"


def init_app(app: Flask, config: Config) -> None:
    metrics.setup(config.metrics_dir)
    app.before_request(start_request)
    app.after_request(finish_request)
    app.teardown_request(end_request)
    app.register_blueprint(bp)


def _route() -> str:
    return request.url_rule.rule if request.url_rule is not None else "unmatched"


def _call_ids() -> dict[str, str | None]:
    """The ids a request names. A voice conversation's id is its call's CallSid; a request
    about the human's leg (whisper, accept, AMD) carries that leg's CallSid and the caller's
    as ParentCallSid. A handoff binds its own ids whenever it changes (handoff/handoffs.py)."""
    view_args = request.view_args or {}
    ref = view_args.get("ref") or ""
    ids = {"handoff_id": view_args.get("handoff_id") or (ref if ref.startswith("HO") else None),
           "conversation_id": view_args.get("conversation_id")}
    if request.mimetype == FORM and request.method == "POST":
        try:
            form = request.form
            call_sid, parent = form.get("CallSid"), form.get("ParentCallSid")
        except Exception:  # an oversized or unreadable body: the view answers for it
            call_sid = parent = None
        if call_sid:
            ids["call_sid"] = call_sid
            ids["conversation_id"] = ids["conversation_id"] or parent or call_sid
    return ids


def request_id_for(incoming: str) -> str:
    """The id a request goes by: the caller's when it is a plausible one, else a new one."""
    return incoming if VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex


def start_request() -> None:
    logs.clear()
    g.request_id = request_id_for(request.headers.get(REQUEST_ID_HEADER, ""))
    g.request_started = time.perf_counter()
    route = _route()
    metrics.current_route.set(route)
    logs.bind(request_id=g.request_id, **_call_ids())
    if request.endpoint in LONG_POLL_ENDPOINTS and request.args.get("wait", "0") not in ("", "0", "0.0"):
        metrics.long_poll_started(route)
        g.long_poll = route


def finish_request(response: Response) -> Response:
    request_id = g.get("request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    started = g.get("request_started")
    if started is not None:
        metrics.request_finished(_route(), request.method, response.status_code, time.perf_counter() - started)
    return response


def end_request(_error=None) -> None:
    route = g.pop("long_poll", None)
    if route is not None:
        metrics.long_poll_ended(route)


@bp.get("/metrics")
def prometheus_metrics():
    """Prometheus text for every process of the deployment; an API key as for /v1."""
    require_api_key()
    body, content_type = metrics.exposition(lambda: services().queue)
    return Response(body, content_type=content_type)
