"""Flask's JSON provider, reading request bodies with `handoff.jsontext` (no NaN, no
Infinity, bounded nesting), so no view can be handed a document it cannot store or serve."""
from __future__ import annotations

from typing import Any

from flask.json.provider import DefaultJSONProvider

from handoff import jsontext


class StrictJSONProvider(DefaultJSONProvider):
    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return jsontext.loads(s)
