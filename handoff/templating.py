"""Header templates: `$name` in a header value is filled from the conversation (pure)."""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from . import sip
from .models import warning

# `$name`, `$customer.id`, `${name}`; `$$` is a literal dollar. A trailing dot ends the
# variable ("Call $caller_id." renders the number followed by a full stop).
VARIABLE = re.compile(r"\$(?:\$|\{([A-Za-z_][\w]*(?:\.\w+)*)\}|([A-Za-z_]\w*(?:\.\w+)*))")

_MISSING = object()


def lookup(variables: Mapping[str, Any], state: Mapping[str, Any], name: str) -> Any:
    """A built-in first, then a (dotted) path into the conversation state."""
    if name in variables and variables[name] not in (None, ""):
        return variables[name]
    node: Any = state
    for part in name.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        # isdecimal, not isdigit: "²" is a digit that int() refuses (the names allow \w).
        elif isinstance(node, list) and part.isdecimal() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return _MISSING if node is None else node


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def render_value(template: str, variables: Mapping[str, Any], state: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """(rendered text, missing variable names); text is None when any variable is missing."""
    missing: list[str] = []

    def substitute(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name is None:
            return "$"
        value = lookup(variables, state, name)
        if value is _MISSING:
            missing.append(name)
            return ""
        return _as_text(value)

    text = VARIABLE.sub(substitute, template)
    return (None if missing else sip.clean_value(text)), missing


def merge_headers(
    destination_headers: Iterable[Mapping[str, str]], overrides: Mapping[str, str] | None
) -> dict[str, str]:
    """Call-time headers over the destination's; names compare case-insensitively, as SIP does."""
    merged: dict[str, str] = {}
    canonical: dict[str, str] = {}
    for name, value in [(h["name"], h["value"]) for h in destination_headers] + list((overrides or {}).items()):
        key = name.lower()
        if key in canonical:
            merged.pop(canonical[key])
        canonical[key] = name
        merged[name] = value
    return merged


def render_headers(
    templates: Mapping[str, str],
    variables: Mapping[str, Any],
    state: Mapping[str, Any],
    limit: int = sip.HEADERS_LIMIT,
) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Rendered headers ready for a SIP URI, and the handoff warnings rendering produced."""
    rendered: dict[str, str] = {}
    warnings: list[dict[str, str]] = []
    for name, template in templates.items():
        text, missing = render_value(template, variables, state)
        if text is None:
            warnings.append(warning(
                "missing_variable",
                f"header {name} left out: no value for " + ", ".join(f"${m}" for m in missing),
            ))
            continue
        rendered[name] = text
    fitted, trimmed = sip.fit_headers(rendered, limit)
    if trimmed:
        warnings.append(warning(
            "headers_truncated",
            f"header values trimmed to fit Twilio's {limit + 1}-character limit on SIP URI headers",
        ))
    return fitted, warnings
