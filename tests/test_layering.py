"""The README's "Code map" arrows, checked by reading every import (also those inside
functions): web/ → schemas/ → handoff/ → twiml/, never back, and no cycle inside handoff/."""
from __future__ import annotations

import ast
from pathlib import Path

from tests.deployment import ROOT

PACKAGES = ("handoff", "twiml", "schemas", "web")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module of this repository that `path` imports, at any depth of its code."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            found.add(base)
            # `from . import jobs` imports a module; `from .jobs import x` a name of one.
            found |= {f"{base}.{alias.name}" for alias in node.names
                      if (ROOT / Path(*f"{base}.{alias.name}".split("."))).with_suffix(".py").exists()}
    return {name for name in found if name.split(".")[0] in PACKAGES}


def modules(package: str) -> dict[str, set[str]]:
    return {module_name(path): imported_modules(path) for path in sorted((ROOT / package).rglob("*.py"))}


def crossings(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(f"{module} imports {target}" for module, targets in modules(package).items()
                  for target in targets if target.split(".")[0] in forbidden)


def test_the_domain_imports_neither_the_web_nor_its_schemas():
    assert crossings("handoff", ("schemas", "web")) == []


def test_twiml_imports_nothing_of_the_service():
    assert crossings("twiml", ("handoff", "schemas", "web")) == []


def test_schemas_import_nothing_of_the_web():
    assert crossings("schemas", ("web",)) == []


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph`, as the modules along it, or None."""
    state: dict[str, str] = {}
    trail: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        trail.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                return [*trail[trail.index(target):], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        state[module] = "done"
        trail.pop()
        return None

    for module in sorted(graph):
        if module not in state:
            found = visit(module)
            if found:
                return found
    return None


def test_no_module_of_the_domain_imports_itself_back():
    # The package itself is left out: every module imports `handoff/__init__.py` on its way
    # in, and it imports its two public names only when they are first asked for.
    graph = {module: {target for target in targets if target.startswith("handoff.")}
             for module, targets in modules("handoff").items() if module != "handoff"}
    assert cycle(graph) is None, " → ".join(cycle(graph))


def test_a_cycle_or_a_crossing_is_noticed(tmp_path, monkeypatch):
    """The checks above read what they are meant to: relative imports, imports inside
    functions, and cycles through them."""
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    package = tmp_path / "handoff"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "jobs.py").write_text("def f():\n    from .consult import Consults\n    import schemas.calls\n")
    (package / "consult.py").write_text("from . import jobs\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert imported_modules(package / "jobs.py") == {"handoff.consult", "schemas.calls"}
    assert imported_modules(package / "consult.py") == {"handoff", "handoff.jobs"}
    assert crossings("handoff", ("schemas", "web")) == ["handoff.jobs imports schemas.calls"]
    graph = {m: {t for t in ts if t.startswith("handoff.")} for m, ts in modules("handoff").items() if m != "handoff"}
    assert cycle(graph) == ["handoff.consult", "handoff.jobs", "handoff.consult"]
