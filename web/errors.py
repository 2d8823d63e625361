"""One handler renders every /v1 error in one shape (docs/api.md: `{"error": {"code", "message", "fields"?}}`)."""
from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from handoff.errors import NotFound, PayloadTooLarge, ServiceError, Unavailable, ValidationFailed
from handoff.services import REDIS_ERRORS

log = logging.getLogger(__name__)


def _json(error: ServiceError):
    retry_after = getattr(error, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    return jsonify(error.to_dict()), error.status, headers


def register(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def service_error(error: ServiceError):
        return _json(error)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_error):
        if request.path.startswith(("/voice", "/sms")):
            return Response(status=413)
        return _json(PayloadTooLarge("the body is over 1 MiB"))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if not request.path.startswith("/v1"):
            return error
        if error.code == 404:
            return _json(NotFound(f"no route {request.path}"))
        if error.code == 405:
            return jsonify({"error": {"code": "method_not_allowed",
                                      "message": f"{request.method} is not allowed on {request.path}"}}), 405
        return jsonify({"error": {"code": "bad_request", "message": error.description}}), error.code

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        body, status = unexpected_error(error, request.path)
        return jsonify(body), status


def unexpected_error(error: Exception, path: str) -> tuple[dict, int]:
    """The body and status of an error no view expected, logged once here (also for the
    polls web/feed_polls.py answers outside Flask)."""
    if isinstance(error, REDIS_ERRORS):
        log.error("Redis unreachable on %s: %s", path, error)
        return Unavailable("the store is unreachable; try again shortly").to_dict(), Unavailable.status
    log.exception("unexpected error on %s", path)
    return {"error": {"code": "internal", "message": "unexpected error; it was logged"}}, 500


__all__ = ["register", "ValidationFailed"]
