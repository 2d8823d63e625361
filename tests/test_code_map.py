"""The README's "Code map" names only files that exist, and every module of the service
(those of its subpackages, such as handoff/store/, too)."""
from __future__ import annotations

import re

from tests.deployment import ROOT


def code_map() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("## Code map", 1)[1].split("\n## ", 1)[0]


def named_paths() -> set[str]:
    table = [line for line in code_map().splitlines() if line.startswith("| `")]
    return {name for line in table for name in re.findall(r"`([\w./*-]+/?)`", line.split(" | ")[0])}


def test_every_name_in_the_code_map_exists():
    for name in named_paths():
        assert list(ROOT.glob(name.rstrip("/"))), name


def test_every_module_of_the_service_is_in_the_code_map():
    named = {path for name in named_paths() for path in ROOT.glob(name)}
    named |= {path / "__init__.py" for path in named if path.is_dir()}  # a subpackage, by its folder
    for package in ("handoff", "web"):
        for module in sorted((ROOT / package).rglob("*.py")):
            if module.name != "__init__.py" or module.parent != ROOT / package:
                assert module in named, module.relative_to(ROOT)
    twiml_row = next(line for line in code_map().splitlines() if line.startswith("| `twiml/`"))
    for module in sorted((ROOT / "twiml").glob("*.py")):
        if module.name != "__init__.py":
            assert f"`{module.name}`" in twiml_row, module.relative_to(ROOT)
