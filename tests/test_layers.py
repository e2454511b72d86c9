"""The package's layering (docs: architecture): the application layer (``gradflow.cli``) imports the library,
never the reverse; no domain imports another except through the core (``potentials``, ``train`` and the
private top-level modules); ``gradflow.testing`` imports no domain but the core."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gradflow

ROOT = Path(gradflow.__file__).parent
DOMAINS = ("dynamics", "transport", "inverse", "vision")
CORE = ("potentials", "train")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of the gradflow modules that ``path`` imports (top level or inside functions)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {t for t in found if t == "gradflow" or t.startswith("gradflow.")}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


LIBRARY_FILES = sorted(p for p in ROOT.rglob("*.py") if _layer(_module_name(p)) not in ("cli", "report", "demo"))


def test_the_walk_resolves_relative_imports():
    assert "gradflow.potentials" in _imports(ROOT / "transport" / "_potential.py")  # from ..potentials import
    assert "gradflow.transport" in _imports(ROOT / "cli" / "demo" / "transport.py")  # from ...transport import


@pytest.mark.parametrize("path", LIBRARY_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_library_never_imports_the_application_layer(path):
    assert not {m for m in _imports(path) if _layer(m) in ("cli", "report", "demo")}


@pytest.mark.parametrize("domain", DOMAINS)
def test_a_domain_imports_no_other_domain(domain):
    offending = {}
    for path in (ROOT / domain).rglob("*.py"):
        others = {m for m in _imports(path) if _layer(m) in DOMAINS and _layer(m) != domain}
        if others:
            offending[str(path.relative_to(ROOT))] = sorted(others)
    assert offending == {}


def test_testing_imports_only_the_core():
    layers = {_layer(m) for m in _imports(ROOT / "testing.py")}
    assert layers <= set(CORE) | {"_numerics", "_validation", ""}
