"""Every URL this service gives Twilio to call back on, built in one place.

The routes themselves are web/'s (web/voice.py, web/consult.py, web/routing.py, web/sms.py);
the URLs are built here because the domain and the worker build them too, without a
request: a job moving a call or calling a human reads the base stored on the handoff
(`Handoff.callback_base`). tests/test_callback_urls.py checks that every URL built here
reaches a route of the app, so a moved route cannot leave a stale URL behind.

`base` is the public base URL (PUBLIC_BASE_URL, or what the request said); "" gives a
relative URL.
"""
from __future__ import annotations

from urllib.parse import quote, urlencode

# The paths a person pastes into Twilio's console (handoff/launch.py prints them).
INCOMING_CALL = "/voice/call"
FALLBACK = "/voice/fallback"
CALL_STATUS = "/voice/status"
INCOMING_SMS = "/sms/incoming"
AGENT_HANDOFF = "/voice/handoff"
# The paths only this service hands out.
OUTBOUND_ANSWERED = "/voice/outbound"
OUTBOUND_AMD = "/voice/amd"
AGENT_ENDED = "/voice/agent/ended"
ROUTER = "/voice/router"


def is_relay_agent(agent_url: str) -> bool:
    """Whether AGENT_URL is a ConversationRelay WebSocket (ws:// or wss://), which a caller
    reaches through <Connect>, not a TwiML URL that a <Redirect> can fetch."""
    return agent_url.startswith(("wss:", "ws:"))


def handoff_step(base: str, handoff_id: str, step: str, attempt: int, tried: list[str] | None = None) -> str:
    """A callback URL for one attempt of a handoff (`status`, `whisper`, `accept`, …).
    `tried` carries the chain so that a handoff started while Redis was down (never
    stored) can still be continued."""
    query = {"attempt": attempt}
    if tried:
        query["tried"] = ",".join(tried)
    return f"{base}{AGENT_HANDOFF}/{handoff_id}/{step}?{urlencode(query, safe=',')}"


def consult_step(base: str, handoff_id: str, step: str, attempt: int) -> str:
    """A callback URL of a consult transfer's attempt (web/consult.py)."""
    return handoff_step(base, handoff_id, f"consult/{step}", attempt)


def outbound_answered(base: str) -> str:
    """Where an outbound call placed through the API asks for its TwiML."""
    return f"{base}{OUTBOUND_ANSWERED}"


def call_status(base: str) -> str:
    return f"{base}{CALL_STATUS}"


def outbound_amd(base: str) -> str:
    """Where the answering-machine result of an outbound call is posted."""
    return f"{base}{OUTBOUND_AMD}"


def agent_ended(base: str) -> str:
    """The <Connect> action: the AI agent's session ended (with or without a handoff)."""
    return f"{base}{AGENT_ENDED}"


def router_turn(base: str, turn: int | str) -> str:
    """The built-in router's next turn of speech or keys."""
    return f"{base}{ROUTER}?turn={turn}"


def destination_test_status(base: str, destination_id: str, test_id: str) -> str:
    """The status callback of a destination's test call."""
    return f"{base}/voice/test_call/{quote(destination_id, safe='')}/{test_id}/status"
