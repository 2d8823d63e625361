"""The stored form of a handoff: its JSON without what can be derived, in short field names.

A handoff is kept for the whole retention window, so its bytes are multiplied by every
call of a month: the full document (`Handoff.to_dict()`) spent most of its ~1,100 bytes on
field names and on empty or default values. `pack` drops

- the id (it is in the key) and every field equal to its default (`null`, `{}`, `[]`,
  channel `voice`);
- `call_sid` when it equals `conversation_id` (a voice handoff: the conversation is the call);
- `created_at` / `updated_at` when they equal the first / last history entry's time;
- a history entry's empty `detail`, and its time when it equals the entry before it;

and names the fields with one or two letters. `unpack` gives back exactly the document
`pack` was given. Unknown fields pass through unchanged, and a document stored before this
format (long names, every field) reads as it is: `unpack` maps only the short names.
"""
from __future__ import annotations

from typing import Any

SHORT = {
    "conversation_id": "c", "channel": "ch", "shared_id": "sh", "destination": "d", "reason": "r",
    "utterance": "u", "data": "da", "sip_headers": "h", "state": "s", "history": "hi", "warnings": "w",
    "outcome": "o", "created_at": "ca", "updated_at": "ua", "attempts": "at", "header_overrides": "ho",
    "call_sid": "cs", "claimed_by": "cb", "callback_base": "b", "leg": "l", "route_override": "ro",
    "attempt_marks": "am",
}
LONG = {short: name for name, short in SHORT.items()}
# Values a field takes when it is absent from the stored form (the model's defaults).
DEFAULTS: dict[str, Any] = {
    "channel": "voice", "shared_id": None, "destination": None, "reason": None, "utterance": None,
    "data": {}, "sip_headers": {}, "warnings": [], "outcome": None, "attempts": [], "header_overrides": {},
    "call_sid": None, "claimed_by": None, "callback_base": None, "leg": None, "route_override": None,
    "attempt_marks": {},
}
SAME_AS_CONVERSATION = 1  # stored `call_sid`: the same as `conversation_id`
ENTRY_KEYS = frozenset({"state", "at", "detail"})


def _pack_history(history: list) -> list:
    out, previous_at = [], None
    for entry in history:
        if not isinstance(entry, dict) or not set(entry) <= ENTRY_KEYS or "state" not in entry or "at" not in entry:
            out.append(entry)  # not one move_to() wrote: kept as it is
            previous_at = entry.get("at") if isinstance(entry, dict) else None
            continue
        short = {"s": entry["state"]}
        if entry["at"] != previous_at:
            short["a"] = entry["at"]
        if "detail" not in entry:
            short["n"] = 1  # no detail key at all (kept apart from an empty one)
        elif entry["detail"] != {} or type(entry["detail"]) is not dict:
            short["d"] = entry["detail"]
        previous_at = entry["at"]
        out.append(short)
    return out


def _unpack_history(history: list) -> list:
    out, previous_at = [], None
    for entry in history:
        if isinstance(entry, dict) and "s" in entry and "state" not in entry:
            full = {"state": entry["s"], "at": entry.get("a", previous_at)}
            if not entry.get("n"):
                full["detail"] = entry.get("d", {})
            entry = full
        previous_at = entry.get("at") if isinstance(entry, dict) else None
        out.append(entry)
    return out


def pack(doc: dict[str, Any]) -> dict[str, Any]:
    """The stored form of a full handoff document (`Handoff.to_dict()`)."""
    history = doc.get("history") or []
    out: dict[str, Any] = {}
    for name, value in doc.items():
        if name == "id":
            continue
        if name in DEFAULTS and value == DEFAULTS[name] and type(value) is type(DEFAULTS[name]):
            continue
        if name == "call_sid" and value == doc.get("conversation_id"):
            value = SAME_AS_CONVERSATION
        elif name == "created_at" and history and isinstance(history[0], dict) and history[0].get("at") == value:
            continue
        elif name == "updated_at" and history and isinstance(history[-1], dict) and history[-1].get("at") == value:
            continue
        elif name == "history":
            value = _pack_history(value)
        out[SHORT.get(name, name)] = value
    return out


def unpack(stored: dict[str, Any], handoff_id: str) -> dict[str, Any]:
    """The full document back from its stored form (or from a document stored in full)."""
    doc: dict[str, Any] = {"id": handoff_id}
    for name, value in stored.items():
        doc[LONG.get(name, name)] = value
    if "history" in doc and isinstance(doc["history"], list):
        doc["history"] = _unpack_history(doc["history"])
    history = doc.get("history") or []
    for name, default in DEFAULTS.items():
        if name not in doc:
            doc[name] = default.copy() if isinstance(default, (dict, list)) else default
    if doc.get("call_sid") == SAME_AS_CONVERSATION and type(doc["call_sid"]) is int:
        doc["call_sid"] = doc.get("conversation_id")
    if "created_at" not in doc and history:
        doc["created_at"] = history[0].get("at")
    if "updated_at" not in doc and history:
        doc["updated_at"] = history[-1].get("at")
    return doc
