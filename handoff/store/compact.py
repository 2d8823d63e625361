"""The stored form of a handoff: its JSON without what can be derived, in short field names.

A handoff is kept for the whole retention window, so its bytes are multiplied by every
call of a month: the full document (`Handoff.to_dict()`) spent most of its ~1,100 bytes on
field names and on empty or default values. `pack` drops

- the id (it is in the key) and every field equal to its default (`null`, `{}`, `[]`,
  channel `voice`);
- `call_sid` when it equals `conversation_id` (a voice handoff: the conversation is the call);
- `created_at` / `updated_at` when they equal the first / last history entry's time;
- a history entry's empty `detail`, and its time when it equals the entry before it (a
  time it keeps is in milliseconds since the epoch);
- `attempts` when it names only the handoff's destination; the destination summary and an
  attempt's detail (`{"destination", "attempt"}`) are lists of their values;

and names the fields with one or two letters. `unpack` gives back exactly the document
`pack` was given. Unknown fields pass through unchanged, and a document stored before this
format (long names, every field) reads as it is: `unpack` maps only the short names.
"""
from __future__ import annotations

import base64
import json
import zlib
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from ..models import ConversationRecord

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
FIRST_DESTINATION = 1  # stored `attempts`: only the destination the handoff names
ENTRY_KEYS = frozenset({"state", "at", "detail"})
# Dicts always written with these keys in this order are stored as lists of their values:
# the destination a handoff names (`Destination.summary()`) and a transfer attempt's detail.
SUMMARY = ("id", "name", "method", "route")
ATTEMPT = ("destination", "attempt")


def _as_list(value: Any, keys: tuple[str, ...]) -> Any:
    if type(value) is dict and tuple(value) == keys:
        return [value[key] for key in keys]
    return value


def _as_dict(value: Any, keys: tuple[str, ...]) -> Any:
    if type(value) is list and len(value) == len(keys):
        return dict(zip(keys, value))
    return value


def _pack_history(history: list) -> list:
    out, previous_at = [], None
    for entry in history:
        if (not isinstance(entry, dict) or not set(entry) <= ENTRY_KEYS or "state" not in entry
                or type(entry.get("at")) is not str):
            out.append(entry)  # not one move_to() wrote: kept as it is
            previous_at = entry.get("at") if isinstance(entry, dict) else None
            continue
        short = {"s": entry["state"]}
        if entry["at"] != previous_at:
            at = stored_at(entry["at"])
            short["a"] = int(at) if at.isdigit() else entry["at"]  # milliseconds: ~12 B less, deflated
        if "detail" not in entry:
            short["n"] = 1  # no detail key at all (kept apart from an empty one)
        elif entry["detail"] != {} or type(entry["detail"]) is not dict:
            short["d"] = _as_list(entry["detail"], ATTEMPT)
        previous_at = entry["at"]
        out.append(short)
    return out


def _unpack_history(history: list) -> list:
    out, previous_at = [], None
    for entry in history:
        if isinstance(entry, dict) and "s" in entry and "state" not in entry:
            at = entry.get("a", previous_at)
            full = {"state": entry["s"], "at": shown_at(str(at)) if type(at) is int else at}
            if not entry.get("n"):
                full["detail"] = _as_dict(entry.get("d", {}), ATTEMPT)
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
        elif name == "destination":
            value = _as_list(value, SUMMARY)
        elif (name == "attempts" and type(doc.get("destination")) is dict
              and value == [doc["destination"].get("id")]):
            value = FIRST_DESTINATION
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
    doc["destination"] = _as_dict(doc["destination"], SUMMARY)
    if doc.get("attempts") == FIRST_DESTINATION and type(doc["attempts"]) is int:
        doc["attempts"] = [doc["destination"].get("id")]
    if "created_at" not in doc and history:
        doc["created_at"] = history[0].get("at")
    if "updated_at" not in doc and history:
        doc["updated_at"] = history[-1].get("at")
    return doc


# -- conversations --------------------------------------------------------------------
# The id of a conversation's newest handoff is the first field of its stored JSON: the
# handoff's create script (handoff/store/base.py) writes it there, where it costs ~40 bytes
# instead of a sorted set per conversation (~190). Not part of `ConversationRecord`.
NEWEST_HANDOFF = "_h"
NEWEST_HANDOFF_PREFIX = '{"' + NEWEST_HANDOFF + '":"'
# The fields every conversation is stored with (`ConversationRecord.ALWAYS`), in order, and their empty values.
CONVERSATION_FIELDS = tuple(ConversationRecord.STORED_AS.get(name, name) for name in ConversationRecord.ALWAYS)
# A call's `channel` (voice) is left out too: it took 18 of a call's ~160 stored bytes, enough
# to move the value into a larger allocation. Conversations stored with it read the same.
CONVERSATION_EMPTY: dict[str, Any] = {"shared_id": None, "channel": "voice", "from": None, "to": None,
                                      "ended_at": None, "state": {}, "outcome": None}


def pack_conversation(doc: dict[str, Any]) -> dict[str, Any]:
    """A conversation without its id (in the key) and its empty fields. A document without
    every field `Conversations.create` writes is stored as it is (and read back so)."""
    if not all(name in doc for name in CONVERSATION_FIELDS):
        return doc
    return {name: value for name, value in doc.items()
            if name != "id" and not (name in CONVERSATION_EMPTY and value == CONVERSATION_EMPTY[name]
                                     and type(value) is type(CONVERSATION_EMPTY[name]))}


def unpack_conversation(stored: dict[str, Any], conversation_id: str) -> dict[str, Any]:
    """The document `pack_conversation` was given, its fields in the same order."""
    if "id" in stored:
        return stored
    doc: dict[str, Any] = {}
    for name in CONVERSATION_FIELDS:
        if name == "id":
            doc["id"] = conversation_id
        elif name in stored:
            doc[name] = stored[name]
        else:
            empty = CONVERSATION_EMPTY[name]
            doc[name] = empty.copy() if isinstance(empty, dict) else empty
    for name, value in stored.items():
        if name not in doc:
            doc[name] = value
    return doc


# -- the stored text of a handoff ---------------------------------------------------------
# The packed JSON is deflated with a preset dictionary of what every handoff spells (field
# names, states, methods, the shapes of a history entry) and kept as base64 text after a
# format digit: ~300 characters for the ~490 of a typical voice handoff's JSON, which moves
# its Redis value from a 512-byte allocation to a 320-byte one. Text, not bytes: the
# service's Redis client decodes every reply as UTF-8 (handoff/redis_server.py) and the
# create script hands back what it finds. Deflate's 4 KiB window (wbits 12) and memLevel 4
# compress a handoff as well as the defaults do, in 8 µs instead of 57 µs (bench/memory.py).
#
# NEVER CHANGE A DICTIONARY: stored handoffs need it to be read for the whole retention
# window. A better one gets the next format digit, and `handoff_from_text` keeps reading both.
_DICTIONARY_1 = (
    b'"ho":{"ro":"am":{"w":[{"code":"o":"cb":"claimed","ua":"ca":"sh":"ch":"webchat","sms",'
    b'"twilio_flex","sip_bye","sip_invite","sip_refer","sip:","tel:+1","pending","abandoned",'
    b'"failed","completed","connected",{"s":"consulting"'
    # An agent's typical last words before a handoff, for the words utterances share.
    b' I will transfer you to an agent who can help with that, please hold.'
    b'"da":{"intent":"customer_id":"X-Handoff-Reason":"h":{"r":"u":"'
    b'","l":"pstn"}","b":"https://"at":1,"cs":1,"hi":[{"s":"requested","a":1'
    b'},{"s":"transferring","d":["'
    b'","s":"transferring","{"c":"CA'
)
_FORMAT_1 = "1"
_WBITS, _MEM_LEVEL = -12, 4  # raw deflate (no header or checksum), 4 KiB window


def handoff_text(stored: dict[str, Any]) -> str:
    """What Redis keeps for a packed handoff (`pack`)."""
    # surrogatepass: a handoff stored before outside JSON with a lone surrogate was refused
    # (handoff/jsontext.py) may hold one, which strict UTF-8 refuses when it is written again;
    # json.loads reads such bytes back (it decodes with surrogatepass too).
    raw = json.dumps(stored, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")
    deflate = zlib.compressobj(6, zlib.DEFLATED, _WBITS, _MEM_LEVEL, zlib.Z_DEFAULT_STRATEGY, _DICTIONARY_1)
    return _FORMAT_1 + base64.b64encode(deflate.compress(raw) + deflate.flush()).decode("ascii")


def handoff_from_text(text: str) -> dict[str, Any]:
    """The packed handoff back from what Redis keeps; plain JSON (written before this
    format) reads as it is."""
    if text[:1] == _FORMAT_1:
        inflate = zlib.decompressobj(_WBITS, zdict=_DICTIONARY_1)
        return json.loads(inflate.decompress(base64.b64decode(text[1:])) + inflate.flush())
    return json.loads(text)


# -- the time of an event in the stream ---------------------------------------------------
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_AS_WRITTEN = "="  # in front of an `at` of digits that is not a stored time


def stored_at(at: str) -> str:
    """An event's time as the stream keeps it: milliseconds since the epoch for the
    service's own timestamps (`2026-11-26T14:09:02.012Z`), which the stream packs as an
    integer (~16 bytes less per event than the text); anything else as it was written."""
    return _stored_text_at(at) if isinstance(at, str) else at


@lru_cache(maxsize=256)  # a handoff's entries and their events share a few times
def _stored_text_at(at: str) -> str:
    if at.startswith(_AS_WRITTEN):
        return _AS_WRITTEN + at
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        moment = None
    millis = (moment - _EPOCH) // timedelta(milliseconds=1) if moment is not None and moment.tzinfo else None
    if millis is not None and shown_at(str(millis)) == at:
        return str(millis)
    # All digits and not ours (`20261126` is an ISO date too): marked, or it would read as milliseconds.
    return _AS_WRITTEN + at if at.isdigit() else at


@lru_cache(maxsize=1024)  # the feed reader shows the same times to every poll
def shown_at(value: str) -> str:
    """An event's time as `stored_at` was given it."""
    if value.isdigit():
        moment = _EPOCH + timedelta(milliseconds=int(value))
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value[1:] if value.startswith(_AS_WRITTEN) else value
