"""Handoff figures kept as counters: what a handoff has contributed, and reading them back.

Every counted fact is derived from the handoff document itself (`handoff_facts`), and the
store writes the difference between the document before and after each change
(`fact_changes`) in the same transaction as the change. A retried callback that changes
nothing adds nothing, and a fact is counted once per handoff however often it is seen.

All of a handoff's facts land in the day it was created (UTC), so a period's figures are
"the handoffs created in it, and what became of them". Each day has one hash per
dimension (`day`, `reason`, `destination`) whose fields are `<group>|<counter>`.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

DIMENSIONS = ("day", "reason", "destination")
FINAL = ("completed", "failed", "abandoned")
# A human is on the line: a call bridged, or a connector claimed a chat.
HUMAN_STATES = ("connected", "claimed")
NO_REASON = ""


def parse_time(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def day_of(handoff: dict) -> str:
    return str(handoff.get("created_at") or "")[:10]


def ttc_bucket(seconds: float) -> int:
    """Seconds to connect, rounded down to a bucket (exact to 10 s, then 5 s, 30 s and
    5 min steps, 1 hour and over in one) so that a day's histogram stays a few dozen fields
    per group; a median read from it is the bucket's lower bound."""
    seconds = max(0, int(seconds))
    for limit, step in ((10, 1), (60, 5), (300, 30), (3600, 300)):
        if seconds < limit:
            return seconds - seconds % step
    return 3600


def failure_label(detail: dict) -> str:
    """busy, no-answer, voicemail, closed, timeout… or `sip_<code>` for a SIP refusal."""
    code = detail.get("sip_code")
    result = str(detail.get("result") or detail.get("reason") or "failed")
    if isinstance(code, int) and code >= 400 and result not in ("busy", "no-answer", "voicemail"):
        return f"sip_{code}"
    return result


def attempts_of(handoff: dict) -> list[dict]:
    """Every attempt, in order: {attempt, destination, started, ended, result, sip_code,
    outcome (connected | failed | abandoned | None while it runs)}."""
    found: dict[tuple, dict] = {}
    order: list[tuple] = []

    def entry_for(destination: Any, attempt: Any) -> dict:
        key = (destination, attempt)
        if key not in found:
            found[key] = {"attempt": attempt, "destination": destination, "started": None, "ended": None,
                          "result": None, "sip_code": None, "outcome": None}
            order.append(key)
        return found[key]

    def failed(detail: dict, at: str | None) -> None:
        if not detail.get("destination"):
            return
        item = entry_for(detail["destination"], detail.get("attempt"))
        if item["outcome"] is None:
            item.update(outcome="failed", result=failure_label(detail), sip_code=detail.get("sip_code"),
                        ended=item["ended"] or at)

    history = handoff.get("history") or []
    for entry in history:
        state, detail, at = entry.get("state"), entry.get("detail") or {}, entry.get("at")
        if state == "transferring":
            if isinstance(detail.get("after"), dict):
                failed(detail["after"], at)
            if detail.get("result"):  # an on_failure step after a failed attempt, not a new one
                failed(detail, at)
            elif detail.get("destination"):
                entry_for(detail["destination"], detail.get("attempt"))["started"] = at
        elif state == "connected" and detail.get("destination"):
            item = entry_for(detail["destination"], detail.get("attempt"))
            item.update(outcome="connected", result=detail.get("result") or "connected",
                        sip_code=detail.get("sip_code"), ended=at)
        elif state == "failed":
            if detail.get("result") or detail.get("reason") == "timeout":
                failed(detail, at)
        elif state == "abandoned" and detail.get("destination"):
            item = entry_for(detail["destination"], detail.get("attempt"))
            if item["outcome"] is None:
                item.update(outcome="abandoned", result=detail.get("result"), ended=at)
    return [found[key] for key in order]


def first_human_at(handoff: dict) -> tuple[str | None, Any]:
    """(when, destination id) a human first took the handoff, or (None, None)."""
    for entry in handoff.get("history") or []:
        if entry.get("state") in HUMAN_STATES:
            destination = (entry.get("detail") or {}).get("destination") or \
                (handoff.get("destination") or {}).get("id")
            return entry.get("at"), destination
    return None, None


def handoff_facts(handoff: dict | None) -> Counter:
    """What this handoff, as it is now, contributes: (dimension, group, counter) → count."""
    facts: Counter = Counter()
    if not handoff:
        return facts
    reason = str(handoff.get("reason") or NO_REASON)
    final_destination = (handoff.get("destination") or {}).get("id") or ""
    state = handoff.get("state")
    attempts = attempts_of(handoff)
    human_at, human_destination = first_human_at(handoff)

    per_handoff = ["handoffs"]
    if human_at:
        per_handoff.append("connected")
        created, connected = parse_time(handoff.get("created_at")), parse_time(human_at)
        if created and connected:
            per_handoff.append(f"ttc:{ttc_bucket((connected - created).total_seconds())}")
    if state in FINAL:
        per_handoff.append(state)
    if handoff.get("outcome"):
        per_handoff.append("resolved")
    for name in per_handoff:
        facts["day", "", name] += 1
        facts["reason", reason, name] += 1
    for code in {w.get("code") for w in handoff.get("warnings") or [] if w.get("code")}:
        facts["day", "", f"warning:{code}"] += 1

    # Per destination: every destination tried counts the handoff once; where it connected,
    # and where it ended (its final state and outcome), belong to one destination each.
    tried = {a["destination"] for a in attempts} | ({final_destination} if final_destination else set())
    for destination in tried:
        facts["destination", destination, "handoffs"] += 1
    for attempt in attempts:
        facts["destination", attempt["destination"], "attempts"] += 1
        facts["day", "", "attempts"] += 1
        facts["reason", reason, "attempts"] += 1
        if attempt["outcome"] == "failed":
            for dimension, group in (("destination", attempt["destination"]), ("day", ""), ("reason", reason)):
                facts[dimension, group, f"fail:{attempt['result']}"] += 1
    if human_destination:
        facts["destination", human_destination, "connected"] += 1
        for name in per_handoff:
            if name.startswith("ttc:"):
                facts["destination", human_destination, name] += 1
    if final_destination:
        if state in FINAL:
            facts["destination", final_destination, state] += 1
        if handoff.get("outcome"):
            facts["destination", final_destination, "resolved"] += 1
    return facts


def fact_changes(before: dict | Counter | None, after: dict) -> dict[tuple[str, str], dict[str, int]]:
    """{(day, dimension): {field: increment}} turning `before`'s counts (a handoff document,
    or its facts already taken) into `after`'s."""
    old = before if isinstance(before, Counter) else handoff_facts(before)
    new = handoff_facts(after)
    changes: dict[tuple[str, str], dict[str, int]] = {}
    for key in set(old) | set(new):
        delta = new[key] - old[key]
        if delta:
            dimension, group, counter = key
            changes.setdefault((day_of(after), dimension), {})[f"{group}|{counter}"] = delta
    return changes


# -- reading back ---------------------------------------------------------------------
def merge(hashes: Iterable[dict[str, str]]) -> dict[str, Counter]:
    """Per-day hashes of one dimension → {group: Counter(counter → total)}."""
    groups: dict[str, Counter] = {}
    for fields in hashes:
        for name, value in (fields or {}).items():
            group, _, counter = name.rpartition("|")
            counts = groups.get(group)
            if counts is None:
                counts = groups[group] = Counter()
            counts[counter] += int(value)
    return groups


def median_seconds(counts: Counter) -> float | None:
    histogram = sorted((int(name[4:]), n) for name, n in counts.items() if name.startswith("ttc:") and n > 0)
    total = sum(n for _, n in histogram)
    if not total:
        return None
    wanted = [(total - 1) // 2, total // 2]  # the middle one, or the middle two
    values, seen = [], 0
    for seconds, n in histogram:
        while wanted and wanted[0] < seen + n:
            values.append(seconds)
            wanted.pop(0)
        seen += n
    return sum(values) / len(values)


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def item(key: Any, counts: Counter) -> dict[str, Any]:
    """One row of GET /v1/stats/handoffs."""
    handoffs, connected = counts["handoffs"], counts["connected"]
    return {
        "key": key,
        "handoffs": handoffs,
        "connected": connected,
        "completed": counts["completed"],
        "failed": counts["failed"],
        "abandoned": counts["abandoned"],
        "resolved": counts["resolved"],
        "connected_rate": rate(connected, handoffs),
        "resolution_rate": rate(counts["resolved"], handoffs),
        "median_seconds_to_connect": median_seconds(counts),
        "attempts": counts["attempts"],
        "failures": {name[5:]: n for name, n in sorted(counts.items()) if name.startswith("fail:") and n},
    }


def days_between(first: date, last: date) -> list[str]:
    from datetime import timedelta

    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def daily(day_hashes: list[dict[str, str]]) -> list[Counter]:
    """The `day` dimension's hashes → one Counter per day."""
    return [merge([fields]).get("", Counter()) for fields in day_hashes]


def day_rows(days: list[str], per_day: list[Counter]) -> list[dict[str, Any]]:
    """One item per day of a period (every day, oldest first), from `daily`'s counters."""
    return [item(day, counts) for day, counts in zip(days, per_day)]


def rows(hashes: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The items for a period by reason or destination (most handoffs first)."""
    groups = merge(hashes)
    out = [item(group if group != NO_REASON else None, counts) for group, counts in groups.items()]
    return sorted(out, key=lambda row: (-row["handoffs"], str(row["key"])))


def warnings_seen(totals: Counter) -> list[dict[str, Any]]:
    """Warnings from a period's totals (the `day` dimension summed), most seen first."""
    seen = [{"code": name[8:], "count": n} for name, n in totals.items() if name.startswith("warning:") and n]
    return sorted(seen, key=lambda w: (-w["count"], w["code"]))
