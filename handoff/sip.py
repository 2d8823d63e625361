"""SIP routes and headers as Twilio accepts them (pure functions, no I/O).

Limits come from Twilio's <Sip> noun page (https://www.twilio.com/docs/voice/twiml/sip): the
SIP URI must be under 255 characters and its headers part under 1024 (warning 21227); custom header names must
start with `X-` (not `X-Twilio`, warning 32113) or be one of four standard headers
(error 13252).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

# How header values are encoded into a URI lives with the TwiML that writes them; the
# limits below are measured with the same encoding.
from twiml.sip_uri import HVALUE_SAFE, encode_headers

URI_LIMIT = 254  # "under 255 characters"
HEADERS_LIMIT = 1023  # "must be under 1024 characters" (21227)
HEADER_NAME_LIMIT = 64
HEADER_VALUE_LIMIT = 512  # one value, before encoding; the total is what Twilio caps

STANDARD_HEADERS = ("User-to-User", "Remote-Party-ID", "P-Preferred-Identity", "P-Called-Party-ID")
_X_HEADER = re.compile(r"^[Xx]-[A-Za-z0-9-]+$")
_FORBIDDEN = re.compile(r"[\r\n\x00]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
EXTENSION = re.compile(r"^[0-9A-Za-z*#._-]{1,64}$")
SIP_URI = re.compile(r"^sips?:[^\s?<>\"&]+$", re.IGNORECASE)

# sip:user@host:port;param=value, taken apart so an allowlist can judge each part: a glob over
# the raw text would let `*` run across "@" and ";" into another host (RFC 3261 §19.1.1).
# One "@" at most; users, hosts, ports and parameters only in their own characters.
_SIP_PARTS = re.compile(
    r"^(?P<scheme>sips?):(?:(?P<user>[^@;:?&<>\"\s/]+)@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9._-]*)"
    r"(?::(?P<port>[0-9]{1,5}))?(?P<params>(?:;[^;@]*)*)$", re.IGNORECASE)
_PARAM = re.compile(r"^(?P<name>[A-Za-z0-9._~!*'%-]+)(?:=(?P<value>[A-Za-z0-9._~!*'%+:\[\]/$-]+))?$")


class RouteError(ValueError):
    """A route that cannot be turned into a dialable target."""


@dataclass(frozen=True)
class SipUri:
    """A SIP URI route, parsed: what an allowlist pattern is matched against."""

    scheme: str  # "sip" or "sips", lower case
    user: str | None
    host: str  # lower case
    port: int | None
    params: tuple[tuple[str, str | None], ...]  # names lower case, in order


def parse_sip_uri(route: str) -> SipUri:
    """The parts of a SIP URI route; RouteError when it is not one Twilio could dial safely."""
    route = route.strip()
    if route.count("@") > 1:
        raise RouteError("a SIP URI has at most one '@' (sip:user@host)")
    match = _SIP_PARTS.match(route)
    if not match:
        raise RouteError("not a SIP URI of the form sip:user@host[:port][;name=value]")
    port = int(match["port"]) if match["port"] else None
    if port is not None and not 0 < port < 65536:
        raise RouteError("a SIP URI port is between 1 and 65535")
    params = []
    for text in match["params"].split(";")[1:]:
        param = _PARAM.match(text)
        if not param:
            raise RouteError(f"SIP URI parameter {text!r} is not name or name=value")
        params.append((param["name"].lower(), param["value"]))
    return SipUri(match["scheme"].lower(), match["user"], match["host"].lower(), port, tuple(params))


def header_name_problem(name: str) -> str | None:
    """Why Twilio would refuse this header name, or None if it is acceptable."""
    if not isinstance(name, str) or not name:
        return "a header name is required"
    if _FORBIDDEN.search(name):
        return "header names may not contain CR, LF or NUL"
    if len(name) > HEADER_NAME_LIMIT:
        return f"header names are at most {HEADER_NAME_LIMIT} characters"
    if name.lower().startswith("x-twilio"):
        return "header names may not start with X-Twilio (Twilio reserves them)"
    standard = {h.lower() for h in STANDARD_HEADERS}
    if name.lower() in standard or _X_HEADER.match(name):
        return None
    return (
        "header names must look like X-Name (letters, digits, hyphens) or be one of "
        + ", ".join(STANDARD_HEADERS)
    )


def header_value_problem(value: str) -> str | None:
    if not isinstance(value, str):
        return "header values must be text"
    if _FORBIDDEN.search(value):
        return "header values may not contain CR, LF or NUL"
    if len(value) > HEADER_VALUE_LIMIT:
        return f"header values are at most {HEADER_VALUE_LIMIT} characters"
    return None


def clean_value(value: str) -> str:
    """A rendered value made safe: control characters (CR/LF/NUL included) become spaces."""
    return _CONTROL.sub(" ", value)


def headers_length(headers: dict[str, str]) -> int:
    return len(encode_headers(headers))


def fit_headers(headers: dict[str, str], limit: int = HEADERS_LIMIT) -> tuple[dict[str, str], bool]:
    """Trim the longest values until the encoded headers fit Twilio's limit.

    Returns the headers and whether anything was trimmed. A header whose value is trimmed
    to nothing is dropped rather than sent empty."""
    fitted = dict(headers)
    trimmed = False
    while fitted and headers_length(fitted) > limit:
        trimmed = True
        excess = headers_length(fitted) - limit
        name = max(fitted, key=lambda key: len(quote(fitted[key], safe=HVALUE_SAFE)))
        value = fitted[name]
        # A character encodes to at most 12 characters (4 UTF-8 bytes as %XX), so cutting
        # excess/12 characters never overshoots by more than needed; at least one goes.
        cut = max(1, excess // 12)
        if len(value) <= cut:
            del fitted[name]
        else:
            fitted[name] = value[: len(value) - cut]
    return fitted, trimmed


def classify_route(route: str) -> str:
    """'sip', 'number' or 'extension'; RouteError when it is none of them."""
    if not isinstance(route, str) or not route.strip():
        raise RouteError("a route is required")
    if _FORBIDDEN.search(route):
        raise RouteError("routes may not contain CR, LF or NUL")
    route = route.strip()
    if route.lower().startswith(("sip:", "sips:")):
        if not SIP_URI.match(route):
            raise RouteError(
                "a SIP URI route may not contain spaces, '?', '&', quotes or angle brackets "
                "(put headers in sip_headers)"
            )
        if len(route) > URI_LIMIT - len(";transport=tls;secure=true"):
            raise RouteError(f"SIP URIs must be under {URI_LIMIT + 1} characters (Twilio's limit)")
        parse_sip_uri(route)
        return "sip"
    if E164.match(route):
        return "number"
    if EXTENSION.match(route):
        return "extension"
    raise RouteError("a route is a sip:/sips: URI, a bare extension, or an E.164 number (+15551234567)")


def uri_param(route: str, name: str) -> str | None:
    """The value of a `;name=` URI parameter of a SIP route (None if absent or not a URI)."""
    if not route.lower().startswith(("sip:", "sips:")):
        return None
    for param in route.split("?", 1)[0].split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == name:
            return value.strip()
    return None


def _with_params(uri: str, params: dict[str, str]) -> str:
    present = {p.split("=", 1)[0].lower() for p in uri.split(";")[1:]}
    extra = "".join(f";{k}={v}" for k, v in params.items() if k.lower() not in present)
    return uri + extra


def dial_target(
    route: str, *, method: str, sip_domain: str | None, encryption: str = "tls_srtp"
) -> tuple[str, str]:
    """(`sip` | `number`, target) for a route under a method.

    E.164 numbers are dialled as <Number> by `sip_invite`; a REFER always needs a URI, so
    `sip_refer` sends numbers to the SIP domain (or as a tel: URI when none is set)."""
    kind = classify_route(route)
    route = route.strip()
    if kind == "number" and method == "sip_invite":
        return "number", route
    if kind == "number":
        uri = f"sip:{route}@{sip_domain}" if sip_domain else f"tel:{route}"
    elif kind == "extension":
        if not sip_domain:
            raise RouteError(f"extension {route!r} needs SIP_DOMAIN to be set")
        uri = f"sip:{route}@{sip_domain}"
    else:
        uri = route
    transport = uri_param(uri, "transport")
    if (method == "sip_invite" and encryption == "tls_srtp" and not uri.startswith("tel:")
            and transport in (None, "tls")):
        # Twilio: ;transport=tls for signalling, ;secure=true for SRTP media (Twilio's Sip page,
        # https://www.twilio.com/docs/voice/twiml/sip, Transport).
        # A route that names another transport (a REFER destination's, bridged for a phone
        # caller) is dialled as it says: SRTP keys over UDP signalling would travel in clear
        # text, and Twilio's Secure Media page pairs secure=true with transport=tls.
        uri = _with_params(uri, {"transport": "tls", "secure": "true"})
    return "sip", uri
