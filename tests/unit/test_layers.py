"""Dependencies point inward: the browser view and the command line share a presentation layer below both, never each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Each package, and the packages it must never import. `cli/web.py` starts the app: the one edge allowed from cli to web.
FORBIDDEN = {
    "domain": {"service_layer", "adapters", "projections", "consumers", "presentation", "cli", "web", "transparency", "bootstrap"},
    "presentation": {"cli", "web", "adapters", "consumers", "bootstrap"},
    "projections": {"cli", "web"},
    "transparency": {"cli", "web"},
    "web": {"cli"},
    "cli": {"web"},
}
ALLOWED = {("cli/web.py", "web")}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_no_outer_layer(package: str) -> None:
    wrong = []
    for path in sorted((ROOT / package).rglob("*.py")):
        name = str(path.relative_to(ROOT))
        for target in _imports(path) & FORBIDDEN[package]:
            if (name, target) not in ALLOWED:
                wrong.append(f"{name} imports {target}")
    assert wrong == []
