"""JSON text from outside the service (API bodies, webhook fields), read strictly.

Python's `json` reads `NaN`, `Infinity` and `1e999` (an infinite float) although JSON has
no such values: stored, they would be served back as text no JSON parser reads (RFC 8259
§6). Deep nesting is refused before anything recurses over it: `json` itself raises
RecursionError, not ValueError, past about a thousand levels, and storing or rendering a
document hundreds of levels deep can do the same later. And JSON may spell a lone UTF-16
surrogate (`"\ud800"`), which is not Unicode: UTF-8 cannot encode it, so Redis (a key
holding the reason, a stored document) and every client after it would fail on it
(RFC 8259 §8.2 leaves what a reader does with one unpredictable).
"""
from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 32  # levels of arrays/objects in one document; free `data` needs far fewer


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range for a JSON number")
    return value


def depth(value: Any) -> int:
    """How many arrays/objects deep a parsed document goes (without recursing)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def _texts(value: Any):
    """Every string of a parsed document, object keys included (without recursing)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            yield from item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def loads(text: str | bytes) -> Any:
    """The document; ValueError (saying why) for anything that is not plain, finite JSON."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from None
    if depth(value) > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    for piece in _texts(value):
        try:
            piece.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text holds a lone surrogate (such as \\ud800), which is not Unicode") from None
    return value
