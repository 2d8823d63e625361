"""Log lines that say which call, conversation, handoff and request they belong to.

The ids live in context variables: a request (web/observability.py) or a job (handoff/worker.py)
binds what it knows, and code that learns more (a handoff just created) binds that too. A
filter on the handler copies them onto every record, so any logger's lines carry them with
no change at the call site. Each gunicorn thread and each rq job runs in its own context, and
`clear()` starts every request afresh.

`LOG_FORMAT=json` writes one JSON object a line (python-json-logger); the default is text.
"""
from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

IDS = ("request_id", "call_sid", "conversation_id", "handoff_id")
_ids: dict[str, ContextVar[str | None]] = {name: ContextVar(name, default=None) for name in IDS}

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Reserved attribute names python-json-logger renames to these keys.
JSON_RENAMES = {"asctime": "time", "levelname": "level", "name": "logger"}


def bind(**ids: str | None) -> None:
    """Attach ids to every line logged from here on in this request or job (None: leave as is)."""
    for name, value in ids.items():
        if value is not None and name in _ids:
            _ids[name].set(str(value))


def clear() -> None:
    for var in _ids.values():
        var.set(None)


def current() -> dict[str, str]:
    """The ids bound now (only those known)."""
    return {name: value for name, var in _ids.items() if (value := var.get()) is not None}


# A key the app sets in a request's WSGI environ when the request needs no access line
# (handoff/gunicorn_worker.py AccessLogger; web/feed_polls.py sets it).
UNLOGGED_ACCESS = "handoff.unlogged_access"


def bind_handoff(handoff) -> None:
    """A handoff's ids: its own, its conversation's, and its call's (voice)."""
    bind(handoff_id=handoff.id, conversation_id=handoff.conversation_id, call_sid=handoff.call_sid)


class ContextFilter(logging.Filter):
    """Copies the bound ids onto each record: JSON lines get them as keys."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class OneLineFormatter(logging.Formatter):
    """Text lines whose message stays on its line: a CR or LF in a value a request chose (a
    path is logged percent-decoded) is written escaped, so no client can forge a log line
    of its own. A traceback, which the formatter appends after the message, keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = record.message.translate(_LINE_BREAKS)
        return super().formatMessage(record)


# Every character str.splitlines() breaks at, as the escape a reader of the log recognises.
_LINE_BREAKS = {ord(c): c.encode("unicode_escape").decode() for c in
                "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        return JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                             rename_fields=JSON_RENAMES, timestamp=False)
    return OneLineFormatter(TEXT_FORMAT)


def handler(log_format: str, stream=None) -> logging.Handler:
    out = logging.StreamHandler(stream or sys.stderr)
    out.setFormatter(formatter(log_format))
    out.addFilter(ContextFilter())
    return out


def configure(log_format: str, level: int = logging.INFO) -> None:
    """The process's root handler, in the chosen format (replacing any earlier one)."""
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler(log_format))
    root.setLevel(level)


def gunicorn_logconfig(log_format: str) -> dict | None:
    """gunicorn's `logconfig_dict` for JSON lines from its own loggers too (None: its default)."""
    if log_format != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"ids": {"()": ContextFilter}},
        "formatters": {"json": {"()": "pythonjsonlogger.json.JsonFormatter",
                                "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
                                "rename_fields": JSON_RENAMES}},
        "handlers": {
            "error": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["ids"],
                      "stream": "ext://sys.stderr"},
            "access": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["ids"],
                       "stream": "ext://sys.stdout"},
        },
        "root": {"level": "INFO", "handlers": ["error"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
        },
    }
