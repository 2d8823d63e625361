"""The Conversations and Insights pages of the studio: review each handoff, and see whether
handing off works. Same sign-in, CSRF and look as the Call handoffs page (web/studio.py,
whose blueprint these views join); they only read, except the annotation form.

Everything a caller, an agent or a CRM wrote reaches the page through Jinja's escaping;
charts are static SVG drawn from numbers, with the same numbers in a table beneath.
"""
from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, request, url_for

from handoff.conversations import Conversations
from handoff.destinations import Destinations
from handoff.errors import NotFound, ValidationFailed
from handoff.models import CHANNELS, FINAL_STATES
from handoff.review import Filters, Review, parse_day
from handoff.transfers import number_of

from . import charts
from .context import services
from .studio import bp

STATES = ("requested", "transferring", "connected", "completed", "failed", "pending", "claimed", "abandoned")
PRESET_LABELS = ("Escalated unnecessarily", "Wrong topic", "Resolved by human")
OTHER_LABEL = "Other"
PERIODS = {"today": ("Today", 1), "7d": ("7 days", 7), "30d": ("30 days", 30)}
# Failure results the insights table gives a column each; the rest are summed as "Other".
FAILURE_COLUMNS = (("busy", "Busy"), ("no-answer", "No answer"), ("sip", "SIP error"),
                   ("voicemail", "Voicemail"), ("closed", "Closed"))
RESULT_LABELS = {"busy": "Busy", "no-answer": "No answer", "voicemail": "Voicemail", "closed": "Closed",
                 "timeout": "No outcome (timed out)", "not_accepted": "Not accepted", "connected": "Connected",
                 "in-progress": "Connected", "completed": "Connected", "canceled": "Caller hung up"}
PAGE_SIZE = 25


def review() -> Review:
    return Review(services())


def destination_names() -> dict[str, str]:
    """Every destination a handoff may have gone to: those callers meet (live) as well as
    the draft's, so one deleted or renamed only in the sandbox is still named."""
    destinations = Destinations(services())
    return {**destinations.names("live"), **destinations.names("sandbox")}


def read_filters(args) -> tuple[Filters, dict[str, str]]:
    """The filter form as typed (to show back) and as the listing applies it."""
    typed = {name: (args.get(name) or "").strip()
             for name in ("channel", "state", "reason", "destination", "from", "to", "q")}
    errors, days = {}, {}
    for name in ("from", "to"):
        try:
            day = parse_day(typed[name], name)
        except ValidationFailed:
            errors[name] = "a date, YYYY-MM-DD"
            typed[name], day = "", None
        # The day as the listing compares it (YYYY-MM-DD), however ISO 8601 wrote it.
        days[name] = day.isoformat() if day else None
    filters = Filters(channel=typed["channel"] if typed["channel"] in CHANNELS else None,
                      state=typed["state"] if typed["state"] in STATES else None,
                      reason=typed["reason"] or None, destination=typed["destination"] or None,
                      since=days["from"], until=days["to"], search=typed["q"] or None)
    return filters, {**typed, "errors": errors}


def failure_text(result: str | None) -> str:
    if not result:
        return ""
    if result.startswith("sip_"):
        return f"SIP {result[4:]}"
    return RESULT_LABELS.get(result, result)


@bp.app_template_filter("when")
def when(text: str | None) -> str:
    """2026-11-26T09:40:12.123Z → 2026-11-26 09:40:12 (UTC, as stored)."""
    return str(text or "")[:19].replace("T", " ")


@bp.get("/conversations")
def conversations():
    filters, typed = read_filters(request.args)
    try:
        listing = review().conversations(filters, request.args.get("cursor") or None, PAGE_SIZE)
    except ValidationFailed:  # a cursor this service did not issue: start from the newest
        listing = review().conversations(filters, None, PAGE_SIZE)
    query = {k: v for k, v in typed.items() if v and k != "errors"}
    older = url_for("studio.conversations", **query, cursor=listing.older) if listing.older else None
    return render_template("studio/conversations.html", listing=listing, typed=typed, older=older,
                           newest=url_for("studio.conversations", **query),
                           channels=CHANNELS, states=STATES, names=destination_names(),
                           caller=number_of, first_page=not request.args.get("cursor"))


def conversation_or_404(conversation_id: str):
    try:
        return review().conversation(conversation_id)
    except NotFound:
        return None


def is_live(view: dict) -> bool:
    """Still changing: the call or chat goes on, or its handoff has not ended."""
    handoff = view.get("handoff")
    return not view.get("ended_at") or bool(handoff and handoff["state"] not in FINAL_STATES)


@bp.get("/conversations/<conversation_id>")
def conversation(conversation_id):
    view = conversation_or_404(conversation_id)
    if view is None:
        return render_template("studio/message.html", title="Not found",
                               message="That conversation does not exist (any more)."), 404
    return render_template("studio/conversation.html", c=view, names=destination_names(),
                           labels=PRESET_LABELS, other_label=OTHER_LABEL, live=is_live(view),
                           failure_text=failure_text, caller=number_of)


@bp.get("/conversations/<conversation_id>/version")
def conversation_version(conversation_id):
    """What the open page polls: a fingerprint that changes whenever the page would."""
    view = conversation_or_404(conversation_id)
    if view is None:
        return jsonify(error="not found"), 404
    handoff = view.get("handoff") or {}
    version = "|".join(str(part) for part in (
        len(view["transcript"]), len(view["annotations"]), view.get("ended_at"),
        handoff.get("updated_at"), len(handoff.get("history") or [])))
    return jsonify(version=version, live=is_live(view))


@bp.post("/conversations/<conversation_id>/annotations")
def annotate(conversation_id):
    label = request.form.get("label", "").strip()
    note = request.form.get("note", "").strip()[:5000] or None
    page = url_for("studio.conversation", conversation_id=conversation_id)
    if label not in PRESET_LABELS and label != OTHER_LABEL:
        flash("Choose a label.")
        return redirect(page + "#annotate", 303)
    if label == OTHER_LABEL and not note:
        flash("Write a note to go with “Other”.")
        return redirect(page + "#annotate", 303)
    try:
        Conversations(services()).append(conversation_id, "annotations",
                                         {"label": label, "note": note, "author": "studio"})
    except NotFound:
        return render_template("studio/message.html", title="Not found",
                               message="That conversation does not exist (any more)."), 404
    flash(f"Annotated “{label}”.")
    return redirect(page + "#annotations", 303)


@bp.get("/insights")
def insights():
    period = request.args.get("period") if request.args.get("period") in PERIODS else "7d"
    figures = review().insights(PERIODS[period][1])
    names = destination_names()
    for row in figures["destinations"]:
        row["name"] = names.get(row["key"], row["key"])
        row["failure_columns"] = failure_columns(row["failures"])
    for row in figures["days"]:
        row["open"] = max(0, row["handoffs"] - row["completed"] - row["failed"] - row["abandoned"])
    series = ("completed", "failed", "abandoned", "open")
    return render_template(
        "studio/insights.html", period=period, periods=PERIODS, f=figures, series=series,
        columns=charts.stacked_columns(figures["days"], series), colours=charts.STATE_COLOURS,
        failure_headings=[heading for _, heading in FAILURE_COLUMNS],
        destination_bars=charts.meters([(r["name"], r["connected_rate"] or 0, percent(r["connected_rate"]))
                                        for r in figures["destinations"]], full=1),
        reason_bars=charts.meters([(r["key"] or "(no reason)", r["handoffs"], str(r["handoffs"]))
                                   for r in figures["reasons"]]),
        warning_bars=charts.meters([(w["code"], w["count"], str(w["count"])) for w in figures["warnings"]]),
        percent=percent, seconds=seconds)


def failure_columns(failures: dict[str, int]) -> list[int]:
    """Counts under Busy, No answer, SIP error, Voicemail, Closed, then Other."""
    counts = {key: 0 for key, _ in FAILURE_COLUMNS}
    other = 0
    for result, n in failures.items():
        key = "sip" if result.startswith("sip_") else result
        if key in counts:
            counts[key] += n
        else:
            other += n
    return [*counts.values(), other]


def percent(share: float | None) -> str:
    return "–" if share is None else f"{round(share * 100)}%"


def seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:g} s"
