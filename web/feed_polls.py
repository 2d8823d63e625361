"""The event feed's long polls, answered before Flask's request handling.

A connector polls `GET /v1/handoffs/events?after=…&wait=…` once per page of events (100
by default): at a busy moment, about as often as voice handoffs arrive. With 50 connectors
and events appended at 2,000 a second, Flask's handling of the request itself (its
contexts, hooks, routing, the query schema) was over a third of a poll's CPU in the web
process: ~850 µs a poll through the view, ~560 µs here (bench/poll_cost.py, docs/bench.md).

So a long poll that is well formed and carries a valid key is answered here, with what
the view in web/api.py answers: the same page from the same feed (handoff/event_feed.py),
the same headers, and the same slot, request id, log ids and metrics. Everything else goes
on to Flask, which answers it as it always has, with its schema and its error shapes: no
key or a wrong one (which the throttle must count), a throttled client, a parameter that
is malformed, repeated or unknown, and no free slot. An error while reading the feed is
answered here, as web/errors.py answers it for the view: by then the poll may have waited.

A poll answered here gets no line in gunicorn's access log (handoff/gunicorn_worker.py
AccessLogger says why); /metrics counts it.
"""
from __future__ import annotations

import json
import re
import time
from http import HTTPStatus
from urllib.parse import parse_qsl

from flask import Flask

from handoff import logs, metrics
from schemas.handoffs import EVENTS_PAGE, EVENTS_PAGE_MAX, EVENTS_WAIT_MAX, is_feed_cursor

from .context import api_key_in, key_among
from .errors import unexpected_error
from .long_polls import process_slots
from .observability import REQUEST_ID_HEADER, request_id_for
from .throttling import blocked_for

PATH = "/v1/handoffs/events"
ROUTE = PATH  # the label the view's requests are counted under (web/observability.py)
# Stricter than the schema on purpose: anything these do not match goes to the view.
_WAIT = re.compile(r"[0-9]{1,2}(\.[0-9]{1,6})?")
_LIMIT = re.compile(r"[0-9]{1,3}")


def long_poll_in(query_string: str) -> tuple[str, int, float] | None:
    """(after, limit, wait) when the query is a long poll the view would accept as it is:
    `after` a feed cursor, `wait` above 0 and at most 30, `limit` 1–500 or absent, and
    nothing else. None for anything else."""
    params = parse_qsl(query_string, keep_blank_values=True)
    given = dict(params)
    if len(given) != len(params) or not given.keys() <= {"after", "wait", "limit"}:
        return None
    after, wait, limit = given.get("after"), given.get("wait"), given.get("limit", str(EVENTS_PAGE))
    if (after is None or wait is None or not is_feed_cursor(after)
            or not _WAIT.fullmatch(wait) or not _LIMIT.fullmatch(limit)):
        return None
    seconds, count = float(wait), int(limit)
    if not (0 < seconds <= EVENTS_WAIT_MAX and 1 <= count <= EVENTS_PAGE_MAX):
        return None
    return after, count, seconds


class FeedPolls:
    """WSGI middleware around Flask's own `wsgi_app` (app.py puts ProxyFix outside it, so
    REMOTE_ADDR here is the client the throttle knows)."""

    def __init__(self, flask_wsgi, app: Flask):
        self.flask_wsgi = flask_wsgi
        self.app = app

    def __call__(self, environ, start_response):
        answer = None
        if environ.get("PATH_INFO") == PATH and environ.get("REQUEST_METHOD") == "GET":
            answer = self._answer(environ)
        if answer is None:
            return self.flask_wsgi(environ, start_response)
        status, headers, body = answer
        if status == 200:
            environ[logs.UNLOGGED_ACCESS] = True  # gunicorn writes no access line for it
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [body]

    def _answer(self, environ) -> tuple[int, list[tuple[str, str]], bytes] | None:
        poll = long_poll_in(environ.get("QUERY_STRING", ""))
        if poll is None:
            return None
        given = api_key_in(environ.get("HTTP_AUTHORIZATION", ""), environ.get("HTTP_X_API_KEY", ""))
        if (key_among(given, self.app.extensions["handoff"].config.api_keys) is None
                or blocked_for(self.app, environ.get("REMOTE_ADDR"))):
            return None
        slots = process_slots(self.app)
        if not slots.acquire(blocking=False):
            return None
        try:
            return self._poll(poll, request_id_for(environ.get("HTTP_X_REQUEST_ID", "")))
        finally:
            slots.release()

    def _poll(self, poll: tuple[str, int, float], request_id: str) -> tuple[int, list[tuple[str, str]], bytes]:
        started = time.perf_counter()
        logs.clear()
        logs.bind(request_id=request_id)
        metrics.current_route.set(ROUTE)
        metrics.long_poll_started(ROUTE)
        try:
            status, body = 200, self.app.extensions["handoff"].event_feed.page(*poll).to_json()
        except Exception as error:  # noqa: BLE001 - answered as web/errors.py answers the view's
            # Not handed on to the view: the poll may have waited already, and would wait again.
            failure, status = unexpected_error(error, PATH)
            body = json.dumps(failure, separators=(",", ":")).encode() + b"\n"
        finally:
            metrics.long_poll_ended(ROUTE)
        metrics.request_finished(ROUTE, "GET", status, time.perf_counter() - started)
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                   (REQUEST_ID_HEADER, request_id)]
        return status, headers, body
