"""`docs/api.md`: the /v1 API reference as Markdown, written from the OpenAPI document.

The repository's readable reference is generated, like `/docs`, from the same document
(`web/openapi.py`), so it says what the code does. Regenerate it after changing a route or
a schema with `./scripts/api_docs`; `tests/test_api_reference.py` fails while it is stale.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from .openapi import docs_view

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "api.md"

HEADER = """\
<!-- Generated from the OpenAPI document by ./scripts/api_docs (web/api_reference.py).
     Do not edit by hand: tests/test_api_reference.py fails when this file is stale. -->
"""


def _cell(text: str) -> str:
    """Text that stays inside one Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _typed(row: dict) -> str:
    text = _cell(row["type"])
    return f"[{text}](#schema-{row['link'].lower()})" if row.get("link") else text


def _anchor(op: dict) -> str:
    return f"{op['method']} {op['path']}"


def _fields(lines: list[str], fields: list[dict]) -> None:
    if not fields:
        lines += ["(no fields)", ""]
        return
    lines += ["| field | type | required | notes |", "|---|---|---|---|"]
    lines += [f"| `{f['name']}` | {_typed(f)} | {'yes' if f['required'] else 'no'} | {_cell('; '.join(f['notes']))} |"
              for f in fields]
    lines.append("")


def render(spec: dict) -> str:
    """The whole reference for one OpenAPI document."""
    view = docs_view(spec)
    lines = [HEADER, f"# {view['title']} API reference (v{view['version']})", "", view["description"], "",
             f"The same content, machine-readable, is served at `GET {view['spec_path']}` (OpenAPI 3) "
             "and as a page at `GET /docs`.", "", "## Operations", ""]
    for tag, ops in view["groups"].items():
        lines += [f"### {tag}", ""]
        lines += [f"- [`{_anchor(op)}`](#{op['id'].lower()}) — {_cell(op['summary'])}" for op in ops]
        lines.append("")
    for tag, ops in view["groups"].items():
        lines += [f"## {tag}", ""]
        for op in ops:
            # An explicit anchor: headings made of a method and a path slug unpredictably.
            lines += [f'<a id="{op["id"].lower()}"></a>', f"### `{_anchor(op)}`", "",
                      f"**{op['summary']}**" + (" (no API key needed)" if op["public"] else ""), ""]
            if op["description"]:
                lines += [op["description"], ""]
            if op["parameters"]:
                lines += ["Parameters:", "", "| name | in | type | required | notes |", "|---|---|---|---|---|"]
                lines += [f"| `{p['name']}` | {p['in']} | {_typed(p)} | {'yes' if p['required'] else 'no'} "
                          f"| {_cell('; '.join(p['notes']))} |" for p in op["parameters"]]
                lines.append("")
            if op["body"]:
                lines += [f"Body (`application/json`, {_typed(op['body'])}):", ""]
                _fields(lines, op["body"]["fields"])
            lines += ["Responses:", "", "| status | body | meaning |", "|---|---|---|"]
            lines += [f"| {r['status']} | {_typed(r) if r['type'] else ''} | {_cell(r['description'])} |"
                      for r in op["responses"]]
            lines.append("")
    lines += ["## Schemas", ""]
    for schema in view["schemas"]:
        lines += [f'<a id="schema-{schema["name"].lower()}"></a>', f"### {schema['name']}", ""]
        _fields(lines, schema["fields"])
    return "\n".join(lines).rstrip() + "\n"


def current_document() -> str:
    """The reference for the app as the code defines it now (no Redis needed)."""
    from app import create_app
    from handoff.config import Config

    from .openapi import build_spec

    with tempfile.TemporaryDirectory() as data_dir:
        return render(build_spec(create_app(Config(data_dir=data_dir))))


def main() -> int:
    DOC_PATH.write_text(current_document())
    print(f"wrote {DOC_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
