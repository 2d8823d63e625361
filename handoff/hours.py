"""Opening hours of a destination (pure): is it open at a given instant?

`{"timezone": "Europe/London", "weekly": {"mon": [["09:00", "17:30"]], ...},
"closed_dates": ["2026-12-25"]}` — windows are local wall-clock times in the destination's
time zone (zoneinfo, so daylight saving is handled by the tz database); a day that is not
listed is closed; "24:00" ends a window at midnight."""
from __future__ import annotations

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def problems(hours: dict) -> list[str]:
    """What is wrong with an `hours` object (empty when it is valid)."""
    found = []
    if not isinstance(hours, dict):
        return ["hours must be an object"]
    unknown = set(hours) - {"timezone", "weekly", "closed_dates"}
    if unknown:
        found.append(f"unknown keys: {', '.join(sorted(unknown))}")
    try:
        ZoneInfo(str(hours.get("timezone")))
    # OSError: a folder of the tz database ("America") or a name too long to be a file name
    except (ZoneInfoNotFoundError, ValueError, OSError):
        found.append(f"timezone {hours.get('timezone')!r} is not an IANA time zone (e.g. Europe/London)")
    weekly = hours.get("weekly") or {}
    if not isinstance(weekly, dict):
        return found + ["weekly must map mon..sun to lists of [start, end]"]
    for day, windows in weekly.items():
        if day not in DAYS:
            found.append(f"weekly: {day!r} is not one of {', '.join(DAYS)}")
            continue
        for window in windows if isinstance(windows, list) else [None]:
            if (not isinstance(window, list) or len(window) != 2
                    or not all(isinstance(t, str) and _TIME.match(t) for t in window)):
                found.append(f"weekly.{day}: each window is [\"HH:MM\", \"HH:MM\"]")
            elif _minutes(window[0]) >= _minutes(window[1]):
                found.append(f"weekly.{day}: {window[0]}–{window[1]} ends before it starts")
    for text in hours.get("closed_dates") or []:
        try:
            date.fromisoformat(text)
        except (TypeError, ValueError):
            found.append(f"closed_dates: {text!r} is not a date (YYYY-MM-DD)")
    return found


def is_open(hours: dict | None, at: datetime) -> bool:
    """True when there are no hours, or `at` falls in one of today's windows."""
    if not hours:
        return True
    local = at.astimezone(ZoneInfo(hours["timezone"]))
    if local.date().isoformat() in set(hours.get("closed_dates") or []):
        return False
    now = local.hour * 60 + local.minute
    for start, end in (hours.get("weekly") or {}).get(DAYS[local.weekday()], []):
        if _minutes(start) <= now < _minutes(end):
            return True
    return False


def utc_now() -> datetime:
    return datetime.now(UTC)
