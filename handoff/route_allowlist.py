"""ALLOWED_ROUTE_PATTERNS: the only routes a call-time `route` override may dial.

The override is what an LLM-driven agent sends, so it is as trustworthy as the caller who
talked to that agent: a pattern must bound where a call can go. A SIP URI route is matched
part by part against a pattern of the same shape — scheme exactly, user and host as globs
each within its own part, port exactly (or `*`), and only the parameters the pattern names
(each value a glob). A glob over the raw text would let `*` in `sip:*@pbx.example.com` run
across "@" and ";" and accept `sip:+19005551234@evil.example.com;x=@pbx.example.com`.
E.164 numbers and bare extensions are matched whole against number and extension patterns
(`+44*`, `10??`); their characters cannot carry another destination.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from . import sip

# A pattern has the shape of a SIP URI whose parts may hold glob characters.
_SIP_PATTERN = re.compile(
    r"^(?P<scheme>sips?):(?:(?P<user>[^@;:]+)@)?(?P<host>\[[^\]@;]+\]|[^:;@\[\]]+)"
    r"(?::(?P<port>[0-9]{1,5}|\*))?(?P<params>(?:;[^;@]*)*)$", re.IGNORECASE)


@dataclass(frozen=True)
class SipPattern:
    scheme: str
    user: str | None
    host: str
    port: str | None  # digits, "*" (any) or None (no port in the route)
    params: dict[str, str | None]  # name → value glob, or None for a bare flag such as `lr`


def parse_pattern(pattern: str) -> SipPattern | None:
    match = _SIP_PATTERN.match(pattern.strip())
    if not match:
        return None
    params: dict[str, str | None] = {}
    for text in match["params"].split(";")[1:]:
        name, has_value, value = text.partition("=")
        if not name:
            return None
        params[name.lower()] = value if has_value else None
    return SipPattern(match["scheme"].lower(), match["user"], match["host"].lower(),
                      match["port"], params)


def pattern_problem(pattern: str) -> str | None:
    """Why a configured pattern can never match anything, or None."""
    if pattern.lower().startswith(("sip:", "sips:")):
        return None if parse_pattern(pattern) else "not shaped like sip:user@host[:port][;name=value]"
    if re.fullmatch(r"[0-9A-Za-z*#?._+\[\]-]+", pattern):
        return None
    return "neither a SIP URI pattern, an E.164 pattern (+44*) nor an extension pattern (10*)"


def _brackets_literal(host: str) -> str:
    """An IPv6 host pattern's brackets are part of the address, not a glob character class."""
    return "".join({"[": "[[]", "]": "[]]"}.get(c, c) for c in host)


def _sip_matches(uri: sip.SipUri, pattern: SipPattern) -> bool:
    if uri.scheme != pattern.scheme:
        return False
    if (uri.user is None) != (pattern.user is None):
        return False
    if uri.user is not None and not fnmatchcase(uri.user, pattern.user):
        return False
    if not fnmatchcase(uri.host, _brackets_literal(pattern.host)):
        return False
    if pattern.port != "*" and (str(uri.port) if uri.port is not None else None) != pattern.port:
        return False
    for name, value in uri.params:
        if name not in pattern.params:
            return False  # e.g. ;maddr= would send the call to another host
        allowed = pattern.params[name]
        if allowed is None:
            if value is not None:
                return False
        elif value is None or not fnmatchcase(value.lower(), allowed.lower()):
            return False
    return True


def route_allowed(route: str, patterns: tuple[str, ...]) -> bool:
    """Whether a usable route matches one of the patterns (an unusable one never does)."""
    try:
        kind = sip.classify_route(route)
    except sip.RouteError:
        return False
    route = route.strip()
    if kind == "sip":
        uri = sip.parse_sip_uri(route)
        return any(_sip_matches(uri, parsed) for parsed in map(parse_pattern, patterns) if parsed)
    return any(fnmatchcase(route, pattern) for pattern in patterns
               if not pattern.lower().startswith(("sip:", "sips:")))
