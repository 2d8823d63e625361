"""The advanced destination settings on the Call handoffs page: how each choice is named,
how the weekly opening-hours editor maps to a destination's `hours`, and the one-line
summaries the cards show.

Pure functions over plain values: the form (web/studio.py) and the templates call them;
the rules themselves stay in handoff/destinations.py and handoff/hours.py.
"""
from __future__ import annotations

import re
import zoneinfo
from functools import lru_cache
from typing import Any

from werkzeug.datastructures import MultiDict

from handoff.hours import DAYS

# value: (name, one-line explanation). The name is also the card's summary line.
TRANSFER_MODES = {
    "blind": ("Blind", "hand the call over with your SIP headers"),
    "blind_with_summary_header": ("Blind with summary header",
                                  "also send X-Transfer-Summary: the reason and the last turns"),
    "warm_message": ("Warm transfer with message", "the person hears a whisper first (SIP INVITE only)"),
    "warm_accept": ("Warm transfer with accept", "a whisper, then press 1 to accept (SIP INVITE only)"),
    "consult": ("Consult", "the caller holds while the person is called, briefed and accepts"),
}
ON_FAILURE = {
    "next": ("Next in the chain", "the fallback, then the default"),
    "return_to_agent": ("Back to the agent", "the AI agent picks the caller up again"),
    "voicemail": ("Voicemail", "the caller leaves a message"),
    "hangup": ("Hang up", "an apology, then the call ends"),
}
INTROS = {
    "private": ("Private", "only the person hears the reason"),
    "public": ("Public", "the reason is announced to both as the person joins"),
}
DAY_NAMES = dict(zip(DAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")))
DAY_SHORT = dict(zip(DAYS, ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")))
DEFAULT_TIMEZONE = "UTC"
# Advanced fields and their values when unset: any other value opens the form's
# "Advanced" section by itself.
ADVANCED_DEFAULTS = {"transfer_mode": "blind", "detect_voicemail": "", "on_failure": "next",
                     "caller_id": "", "extension": "", "hold_audio_url": "", "intro": "private",
                     "hours": "always"}
ADVANCED_ERROR_KEYS = (set(ADVANCED_DEFAULTS) | {"timezone", "closed_dates"}
                       | {f"hours_{day}" for day in DAYS})
# handoff/hours.py names the part of `hours` each problem is about ("weekly.mon: …",
# "closed_dates: …", "timezone …"); the form shows it beside that part.
_HOURS_PART = re.compile(r"^(?:weekly\.(?P<day>[a-z]{3})|(?P<dates>closed_dates)): (?P<message>.*)$", re.S)


@lru_cache(maxsize=1)
def time_zones() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """IANA zones grouped by region (the part before the first "/"), for <optgroup>s."""
    names = sorted(z for z in zoneinfo.available_timezones()
                   if z not in ("Factory", "localtime", "posixrules") and not z.startswith(("posix/", "right/")))
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(name.split("/", 1)[0] if "/" in name else "Other", []).append(name)
    return tuple((region, tuple(zones)) for region, zones in groups.items())


def zone_known(name: str) -> bool:
    return any(name in zones for _, zones in time_zones())


# -- the weekly editor ---------------------------------------------------------------
def read_hours(form: MultiDict) -> tuple[dict[str, str], dict[str, list[list[str]]]]:
    """The opening-hours part of a posted form, as typed: the text fields, and each
    day's [opens, closes] ranges (a range left blank on both sides is not a range)."""
    values = {"hours": "set" if form.get("hours") == "set" else "always",
              "timezone": form.get("timezone", DEFAULT_TIMEZONE).strip(),
              "closed_dates": form.get("closed_dates", "").strip()}
    windows = {}
    for day in DAYS:
        pairs = zip(form.getlist(f"hours_{day}_open"), form.getlist(f"hours_{day}_close"))
        windows[day] = [[o.strip(), c.strip()] for o, c in pairs if o.strip() or c.strip()]
    return values, windows


def hours_value(values: dict[str, str], windows: dict[str, list[list[str]]]) -> dict[str, Any] | None:
    """The `hours` object the form describes; None when the destination is always open."""
    if values["hours"] != "set":
        return None
    return {"timezone": values["timezone"],
            "weekly": {day: ranges for day, ranges in windows.items() if ranges},
            "closed_dates": [d for d in re.split(r"[\s,;]+", values["closed_dates"]) if d]}


def hours_fields(hours: dict[str, Any] | None) -> tuple[dict[str, str], dict[str, list[list[str]]]]:
    """A stored `hours` object as the editor shows it."""
    if not hours:
        return {"hours": "always", "timezone": DEFAULT_TIMEZONE, "closed_dates": ""}, {day: [] for day in DAYS}
    weekly = hours.get("weekly") or {}
    return ({"hours": "set", "timezone": str(hours.get("timezone") or DEFAULT_TIMEZONE),
             "closed_dates": ", ".join(hours.get("closed_dates") or [])},
            {day: [list(w) for w in weekly.get(day, [])] for day in DAYS})


def hours_errors(messages: list[str]) -> dict[str, list[str]]:
    """The service's `hours` problems keyed by the form field they are about."""
    found: dict[str, list[str]] = {}
    for message in messages:
        part = _HOURS_PART.match(message)
        if part and part["day"] in DAYS:
            key, text = f"hours_{part['day']}", part["message"]
        elif part and part["dates"]:
            key, text = "closed_dates", part["message"]
        elif message.startswith("timezone "):
            key, text = "timezone", message
        else:
            key, text = "hours", message
        found.setdefault(key, []).append(text)
    return found


# -- card summaries ------------------------------------------------------------------
def _ranges(windows: list) -> str:
    return ", ".join(f"{start}–{end}" for start, end in windows)


def hours_summary(hours: dict[str, Any], closed_now: bool) -> str:
    """"Open Mon–Fri 09:00–17:30 Europe/London, closed now": consecutive days with the
    same ranges are joined."""
    weekly = hours.get("weekly") or {}
    runs: list[tuple[list[str], str]] = []  # (days, ranges text) of consecutive equal days
    for day in DAYS:
        text = _ranges(weekly.get(day) or [])
        if text and runs and runs[-1][1] == text and DAYS.index(runs[-1][0][-1]) == DAYS.index(day) - 1:
            runs[-1][0].append(day)
        elif text:
            runs.append(([day], text))
    parts = [(f"{DAY_SHORT[days[0]]}–{DAY_SHORT[days[-1]]}" if len(days) > 1 else DAY_SHORT[days[0]]) + " " + text
             for days, text in runs]
    opening = "Open " + "; ".join(parts) if parts else "Closed every day"
    return f"{opening} {hours.get('timezone')}, {'closed' if closed_now else 'open'} now"


def settings_lines(destination: dict[str, Any]) -> list[str]:
    """One line per advanced setting that differs from its default."""
    lines = []
    mode = destination.get("transfer_mode") or "blind"
    if mode == "consult":
        intro = INTROS.get(destination.get("intro") or "private", ("Private",))[0].lower()
        lines.append(f"Consult transfer, {intro} intro")
        if destination.get("hold_audio_url"):
            lines.append(f"Hold audio {destination['hold_audio_url']}")
    elif mode != "blind":
        lines.append(TRANSFER_MODES.get(mode, (mode,))[0])
    if destination.get("detect_voicemail"):
        lines.append("Detects voicemail")
    if destination.get("caller_id"):
        lines.append(f"Caller ID {destination['caller_id']}")
    if destination.get("extension"):
        lines.append(f"Dials extension {destination['extension']}")
    on_failure = destination.get("on_failure") or "next"
    if on_failure != "next":
        lines.append(f"On failure: {ON_FAILURE.get(on_failure, (on_failure,))[0].lower()}")
    hours = destination.get("hours")
    if hours:
        closed_now = any(w.get("code") == "closed" for w in destination.get("warnings") or [])
        lines.append(hours_summary(hours, closed_now))
        if hours.get("closed_dates"):
            lines.append("Closed on " + ", ".join(hours["closed_dates"]))
    return lines
