"""The house rules: dependencies point one way (core <- retrieval <- rerank <- pipelines), inference never
imports the training loop, modules stay small, and each package says what it holds."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LAYERS = ["core", "retrieval", "rerank", "pipelines"]
"""Lowest first: a package may import only from itself and the packages before it."""


def package_modules() -> list[Path]:
    return sorted(p for layer in LAYERS for p in (REPO / layer).rglob("*.py"))


def imported_packages(path: Path) -> set[str]:
    """Top-level names of every absolute import in a module, including imports inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def layer_violations(path: Path) -> list[str]:
    layer = path.relative_to(REPO).parts[0]
    allowed = set(LAYERS[: LAYERS.index(layer) + 1])
    return sorted((imported_packages(path) & set(LAYERS)) - allowed)


def test_no_lower_layer_imports_a_higher_one() -> None:
    problems = {str(p.relative_to(REPO)): v for p in package_modules() if (v := layer_violations(p))}
    assert not problems, f"imports against the layer order {LAYERS}: {problems}"


def test_the_layer_check_catches_a_violation(tmp_path: Path) -> None:
    bad = REPO / "core" / "_layer_probe_tmp.py"
    bad.write_text("def f():\n    from rerank.model import CrossEncoder\n    return CrossEncoder\n")
    try:
        assert layer_violations(bad) == ["rerank"]
    finally:
        bad.unlink()


@pytest.mark.parametrize("module", ["rerank.model", "rerank.rerank", "rerank.reranker", "retrieval.encoder",
                                    "retrieval.index", "retrieval.dense", "retrieval.retrievers"])  # fmt: skip
def test_inference_never_imports_the_training_loop(module: str) -> None:
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.startswith('core.training')))"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]", f"{module} pulls in {loaded.stdout.strip()}"


def test_modules_stay_small() -> None:
    long = {str(p.relative_to(REPO)): n for p in package_modules() if (n := len(p.read_text().splitlines())) > 300}
    assert not long, f"modules over 300 lines: {long}"


def test_every_package_says_what_it_holds_and_may_import() -> None:
    for init in sorted(p for layer in LAYERS for p in (REPO / layer).rglob("__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert doc, f"{init.relative_to(REPO)} has no docstring"
        assert "import" in doc.lower(), f"{init.relative_to(REPO)}: say what the package may import"


def test_every_package_is_installed() -> None:
    """The `tandem` command runs from the installed packages: each layer must be in pyproject's list."""
    import tomllib

    include = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {f"{layer}*" for layer in LAYERS} <= set(include)
