"""PolyAI's function return values that end the agent's part of a conversation (PolyAI's
"Return values" page): `{"handoff": {"type"?, "reason", "refer" | "invite" | "bye": {...}}}`
and `{"hangup": true}`. An agent function moves over unchanged:

    result = transfer_call(conv)           # returns PolyAI's dict
    handoff.from_polyai_return(conv, result)
"""
from __future__ import annotations

from typing import Any

from . import sip
from .errors import ValidationFailed

# Which of our methods a PolyAI SIP method is.
METHODS = {"refer": "sip_refer", "invite": "sip_invite", "bye": "sip_bye"}


def _route(details: dict) -> str | None:
    """Where the returned SIP method sends the call. PolyAI's "Custom SIP" page: a REFER's
    `refer_to` is the target (its `phone_number` is then the number PolyAI used), and a
    `phone_number` may already be a SIP URI, which an `outbound_endpoint` cannot extend."""
    number, endpoint = details.get("refer_to") or details.get("phone_number"), details.get("outbound_endpoint")
    if not number:
        return None
    number = str(number).strip()
    if endpoint and not number.lower().startswith(("sip:", "sips:")):
        return f"sip:{number}@{endpoint}"
    return number


def _same_target(route: str, destination, sip_domain: str | None) -> bool:
    """Whether `route` dials what the destination's own route dials: then it is no override
    (PolyAI's return values repeat the configured destination's number)."""
    if destination is None or not isinstance(destination.route, str):
        return False
    try:
        return sip.dial_target(route, method=destination.method, sip_domain=sip_domain,
                               encryption=destination.encryption) == sip.dial_target(
            destination.route, method=destination.method, sip_domain=sip_domain,
            encryption=destination.encryption)
    except sip.RouteError:
        return False


def _destination_for(conv, handoff: dict, sip_method: str | None) -> str | None:
    """`type` names the destination (PolyAI's handoff name); without it, the first
    destination using the returned SIP method, else the default."""
    if handoff.get("type"):
        return str(handoff["type"])
    if sip_method is None:
        return None
    for destination in conv.configuration.destinations:  # a test number's call: the draft
        if destination.method == METHODS[sip_method]:
            return destination.id
    return None


def from_polyai_return(conv, value: Any) -> dict | None:
    """Act on a PolyAI function's return value: start the handoff it asks for (returned as
    GET /v1/handoffs/<id> shows it), or hang up. Anything else (a string, `content`,
    `utterance` alone) is the agent's business: None, nothing done."""
    if not isinstance(value, dict):
        return None
    if value.get("hangup") is True and "handoff" not in value:
        conv.hangup(utterance=value.get("utterance"))  # said first (PolyAI: utterance + hangup)
        return None
    handoff = value.get("handoff")
    if not isinstance(handoff, dict):
        return None
    sip_method = next((m for m in METHODS if m in handoff), None)
    details = (handoff.get(sip_method) or {}) if sip_method else {}
    if not isinstance(details, dict):
        raise ValidationFailed.field(f"handoff.{sip_method}", "must be an object")
    data = {}
    if details.get("outbound_caller_id"):
        data["outbound_caller_id"] = str(details["outbound_caller_id"])
    destination = _destination_for(conv, handoff, sip_method)
    route = None if sip_method == "bye" else _route(details)
    if route:
        if _same_target(route, conv.destination(destination), conv.services.config.sip_domain):
            route = None
    return conv.call_handoff(
        destination=destination,
        reason=handoff.get("reason"),
        utterance=value.get("utterance"),
        sip_headers=details.get("sip_headers") or None,
        data=data or None,
        route=route,
    )
