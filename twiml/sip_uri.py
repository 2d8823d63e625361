"""SIP URIs carrying headers, as the <Sip> noun takes them (https://www.twilio.com/docs/voice/twiml/sip):
the headers ride in the URI's query part. Pure string functions, so twiml/ needs nothing of
the domain; `handoff.sip` measures and trims headers with the same encoding."""
from __future__ import annotations

from urllib.parse import quote

# Characters RFC 3261 allows unescaped in a header value of a SIP URI (unreserved + a few
# hnv-unreserved, but not "+", which some SBCs read as a space); everything else is percent-encoded so no value can end the URI,
# start another header, or smuggle a CR/LF.
HVALUE_SAFE = "-_.!~*'()[]/:$"


def encode_headers(headers: dict[str, str]) -> str:
    """The `?`-less query part of a SIP URI carrying these headers, in order."""
    return "&".join(f"{name}={quote(value, safe=HVALUE_SAFE)}" for name, value in headers.items())


def sip_uri_with_headers(uri: str, headers: dict[str, str]) -> str:
    """The URI with headers as its query: the standard SIP way Twilio documents."""
    if not headers:
        return uri
    return f"{uri}?{encode_headers(headers)}"
