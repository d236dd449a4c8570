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
    long = {str(p.relative_to(REPO)): n for p in package_modules() if (n := len(p.read_text().splitlines())) > 350}
    assert not long, f"modules over 350 lines: {long}"


def test_each_stage_is_one_module_named_after_it_declaring_what_it_runs_and_costs() -> None:
    """Adding a stage is a module named after it (its `stage_*` and `estimate_*`) and a line in
    `pipelines.stages.STAGES`; the runner and the plan read only that list."""
    from pipelines.stages import STAGES

    helpers = {"__init__", "context"}
    modules = {p.stem for p in (REPO / "pipelines" / "stages").glob("*.py")} - helpers
    assert modules == {stage.name.replace("-", "_") for stage in STAGES}
    for stage in STAGES:
        module = f"pipelines.stages.{stage.name.replace('-', '_')}"
        assert stage.run.__module__ == module and stage.estimate.__module__ == module, stage.name


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


def test_one_value_per_option_in_the_api_the_commands_and_tandem_run() -> None:
    """The Python API's configs, `tandem run`'s tree (what --print-config prints) and each sub-command's
    resolved options agree on every option they share."""
    from dataclasses import asdict

    from pipelines.cli import build_parser
    from pipelines.commands.dense import retriever_config
    from pipelines.commands.rerank import reranker_config
    from pipelines.defaults import DEFAULTS
    from rerank.train import RerankerConfig
    from retrieval.mining import MiningConfig
    from retrieval.train import RetrieverConfig

    parse = build_parser().parse_args

    def agree(api: dict, run: dict, command: dict) -> None:
        api, run, command = (
            {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()} for d in (api, run, command)
        )
        for key in set(api) & set(run):
            assert api[key] == run[key], f"{key}: the API says {api[key]!r}, tandem run {run[key]!r}"
        for key in set(api) & set(command):
            assert api[key] == command[key], f"{key}: the API says {api[key]!r}, the command {command[key]!r}"

    from core.options import from_section
    from pipelines.stages.retriever import retriever_config as stage_retriever_config

    # the stages build the library's default recipes from tandem run's default tree, exactly
    assert from_section(RerankerConfig, DEFAULTS["reranker"], loss="nll") == RerankerConfig()
    from core.data.groups import Passage, TrainingGroup

    enough_groups = [TrainingGroup("q", "q", [Passage("p")], [Passage("n")])] * 100  # a small set shrinks the batch
    assert stage_retriever_config(DEFAULTS, None, DEFAULTS["retriever"], enough_groups) == RetrieverConfig()
    reranker = asdict(reranker_config(parse(["reranker", "train", "--groups", "g", "--out", "o"])))
    agree(asdict(RerankerConfig()), DEFAULTS["reranker"], reranker)
    assert DEFAULTS["reranker"]["losses"] == [RerankerConfig().loss]
    retriever = asdict(retriever_config(parse(["retriever", "train", "--dataset", "d", "--out", "o"])))
    api = asdict(RetrieverConfig())
    agree({**api, **api["encoder"]}, DEFAULTS["retriever"], {**retriever, **retriever["encoder"]})
    distill = retriever_config(parse(["retriever", "train", "--dataset", "d", "--out", "o", "--loss", "kl"]))
    assert (distill.batch_queries, distill.teacher_temperature, distill.label_weight) == (
        DEFAULTS["distill"]["batch_queries"], DEFAULTS["distill"]["teacher_temperature"],
        DEFAULTS["distill"]["label_weight"])  # fmt: skip
    command = parse(["retriever", "train", "--dataset", "d", "--out", "o"])
    assert (command.num_negatives, command.negatives_depth) == (
        DEFAULTS["retriever"]["num_negatives"], DEFAULTS["retriever"]["negatives_depth"])  # fmt: skip
    mine = vars(parse(["mine", "--dataset", "d", "--out", "o"]))
    agree(asdict(MiningConfig()), DEFAULTS["mining"], mine)
    assert mine["min_relevance"] == DEFAULTS["split"]["min_relevance"]
    rerank = parse(["rerank", "--run", "r", "--dataset", "d", "--model", "m", "--out", "o"])
    assert (rerank.depth, rerank.batch_size) == (DEFAULTS["rerank"]["depth"], DEFAULTS["rerank"]["batch_size"])
    search = parse(["bm25", "search", "--index", "i", "--dataset", "d", "--out", "o"])
    assert (search.k, search.k1, search.b) == (DEFAULTS["bm25"]["k"], DEFAULTS["bm25"]["k1"], DEFAULTS["bm25"]["b"])
    fuse = parse(["fuse", "a", "b", "--out", "o"])
    assert (fuse.rrf_k, fuse.depth) == (DEFAULTS["hybrid"]["rrf_k"], DEFAULTS["hybrid"]["depth"])


def test_a_sub_command_reads_a_config_file_and_set_overrides(tmp_path: Path) -> None:
    from core.errors import TandemError
    from pipelines.cli import build_parser
    from pipelines.commands.rerank import reranker_config

    options = tmp_path / "f.yaml"
    options.write_text("epochs: 3\nlearning_rate: 1.0e-5\nloss: bce\n")
    argv = ["reranker", "train", "--groups", "g", "--out", "o", "--config", str(options)]
    config = reranker_config(build_parser().parse_args([*argv, "--set", "epochs=2", "--lr", "3e-5"]))
    assert (config.epochs, config.learning_rate, config.loss) == (2.0, 3e-5, "bce")  # flags over --set over file
    options.write_text("epochs: 3\nlerning_rate: 1.0e-5\n")
    with pytest.raises(TandemError, match=r"f.yaml: unknown key 'lerning_rate'"):
        reranker_config(build_parser().parse_args(argv))
    options.write_text("loss: foo\n")
    with pytest.raises(TandemError, match=r"f.yaml: loss must be one of nll, bce, not 'foo'"):
        reranker_config(build_parser().parse_args(argv))
    bare = argv[:-2]
    with pytest.raises(TandemError, match=r"--set epochs=-1: epochs must be positive"):
        reranker_config(build_parser().parse_args([*bare, "--set", "epochs=-1"]))
    with pytest.raises(TandemError, match=r"head_learning_rate must be a finite number"):
        reranker_config(build_parser().parse_args([*bare, "--set", "head_learning_rate=nan"]))
    config = reranker_config(build_parser().parse_args([*bare, "--set", "head_learning_rate=null"]))
    assert config.head_learning_rate is None
