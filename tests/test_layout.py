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


def test_commands_and_tandem_run_share_one_source_of_defaults() -> None:
    from pipelines.cli import build_parser
    from pipelines.commands.dense import batch_queries
    from pipelines.defaults import DEFAULTS

    parse = build_parser().parse_args
    retriever = parse(["retriever", "train", "--dataset", "d", "--out", "o"])
    options = DEFAULTS["retriever"]
    assert (retriever.epochs, retriever.min_steps, retriever.lr, retriever.group_size, batch_queries(retriever)) == (
        options["epochs"], options["min_steps"], options["learning_rate"], options["group_size"],
        options["batch_queries"])  # fmt: skip
    distill = parse(["retriever", "train", "--dataset", "d", "--out", "o", "--loss", "kl"])
    assert (batch_queries(distill), distill.teacher_temperature, distill.label_weight) == (
        DEFAULTS["distill"]["batch_queries"], DEFAULTS["distill"]["teacher_temperature"],
        DEFAULTS["distill"]["label_weight"])  # fmt: skip
    assert (retriever.attention_dropout, retriever.num_negatives, retriever.bm25_depth) == (
        options["attention_dropout"], options["num_negatives"], options["negatives_depth"])  # fmt: skip
    reranker = parse(["reranker", "train", "--groups", "g", "--out", "o"])
    options = DEFAULTS["reranker"]
    assert (reranker.epochs, reranker.min_steps, reranker.lr, reranker.group_size, reranker.batch_queries,
            reranker.max_length, reranker.attention_dropout) == (
        options["epochs"], options["min_steps"], options["learning_rate"], options["group_size"],
        options["batch_queries"], options["max_length"], options["attention_dropout"])  # fmt: skip
    mine = parse(["mine", "--dataset", "d", "--out", "o"])
    assert (mine.num_negatives, mine.depth, mine.seed, mine.min_relevance) == (
        DEFAULTS["mining"]["num_negatives"], DEFAULTS["mining"]["depth"], DEFAULTS["mining"]["seed"],
        DEFAULTS["split"]["min_relevance"])  # fmt: skip
    rerank = parse(["rerank", "--run", "r", "--dataset", "d", "--model", "m", "--out", "o"])
    assert (rerank.depth, rerank.batch_size) == (DEFAULTS["rerank"]["depth"], DEFAULTS["rerank"]["batch_size"])
    search = parse(["bm25", "search", "--index", "i", "--dataset", "d", "--out", "o"])
    assert (search.k, search.k1, search.b) == (DEFAULTS["bm25"]["k"], DEFAULTS["bm25"]["k1"], DEFAULTS["bm25"]["b"])
    fuse = parse(["fuse", "a", "b", "--out", "o"])
    assert (fuse.rrf_k, fuse.depth) == (DEFAULTS["hybrid"]["rrf_k"], DEFAULTS["hybrid"]["depth"])
