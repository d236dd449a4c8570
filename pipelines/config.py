"""The configuration of `tandem run`: the --quick profile, loading YAML/TOML overrides over the defaults
(`pipelines/defaults.py`), type checks, and the slice of the configuration each stage depends on (which
decides what a re-run skips)."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from core.errors import TandemError
from core.options import BELOW_ONE, POSITIVE, UNIT, Range, at_least, parse_set, read_options_file
from core.precision import INFERENCE_PRECISIONS, PRECISIONS
from core.training.losses import DISTILLATION_LOSSES, LOSSES
from pipelines.defaults import DEFAULTS, MINING_SOURCES, RERANK_FIRST_STAGES

QUICK: dict = {
    "dense": {"batch_size": 64},
    "retriever": {"epochs": 0.25, "min_steps": 0, "passage_max_length": 128},
    "mining": {"num_negatives": 7, "depth": 30, "title_queries_per_query": 0.15, "title_queries": 100},
    "reranker": {"epochs": 0.05, "min_steps": 0, "max_length": 128, "save_every": 5, "eval_depth": 10},
    "distill": {"num_negatives": 3, "group_size": 4, "epochs": 0.25},
    "rerank": {"depth": 10},
}
"""The smoke-test profile: every stage runs, on little compute."""


def merge(base: dict, override: dict, where: str = "config") -> dict:
    """Deep-merge `override` into a copy of `base`; unknown keys are an error (typos must not pass)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if key not in merged:
            raise TandemError(f"{where}: unknown key '{key}' (known: {', '.join(merged)})")
        if isinstance(merged[key], dict):
            if not isinstance(value, dict):
                raise TandemError(f"{where}.{key} must be a table of options")
            merged[key] = merge(merged[key], value, f"{where}.{key}")
        else:
            merged[key] = value
    return merged


OPTIONAL_TYPES: dict[str, tuple[type, ...]] = {
    "run.models_from": (str,),
    "dense.model": (str,),
    "retriever.model": (str,),
    "reranker.model": (str,),
    "mining.rank_range": (list,),
    "mining.margin": (int, float),
}
"""Types of the options whose default is None (unset)."""

NULLABLE = {"split.dev", "reranker.head_learning_rate"}
"""Options with a default that may also be set to null (None): see their docstrings in `pipelines/defaults.py`."""

CHOICES: dict[str, tuple[str, ...]] = {
    "dense.precision": INFERENCE_PRECISIONS,
    "rerank.precision": INFERENCE_PRECISIONS,
    "retriever.precision": PRECISIONS,
    "reranker.precision": PRECISIONS,
    "distill.precision": INFERENCE_PRECISIONS,
    "distill.loss": tuple(DISTILLATION_LOSSES),
}
"""Options that take one of a few values."""

LIST_CHOICES: dict[str, tuple[str, ...]] = {
    "rerank.first_stages": RERANK_FIRST_STAGES,
    "mining.sources": MINING_SOURCES,
    "reranker.losses": tuple(LOSSES),
}
"""List options whose items take one of a few values (at least one item)."""


RANGES: dict[str, Range] = {
    **{
        key: at_least(1)
        for key in (
            "bm25.k",
            "dense.batch_size",
            "dense.k",
            "retriever.batch_queries",
            "retriever.passage_max_length",
            "retriever.query_max_length",
            "reranker.eval_depth",
            "reranker.average_every",
            "reranker.positives",
            "retriever.negatives_depth",
            "retriever.num_negatives",
            "mining.num_negatives",
            "mining.depth",
            "reranker.batch_queries",
            "reranker.max_length",
            "distill.num_negatives",
            "distill.batch_queries",
            "distill.batch_size",
            "rerank.depth",
            "rerank.batch_size",
            "hybrid.rrf_k",
            "hybrid.depth",
        )
    },
    **{key: at_least(2) for key in ("retriever.group_size", "reranker.group_size", "distill.group_size")},
    **{
        key: at_least(0)
        for key in (
            "split.dev_max",
            "split.dev_min",
            "split.min_relevance",
            "retriever.min_steps",
            "retriever.max_steps",
            "mining.title_queries",
            "mining.title_queries_per_query",
            "reranker.min_steps",
            "reranker.max_steps",
            "reranker.save_every",
            "reranker.eval_every",
            "reranker.positive_depth",
            "reranker.negative_depth",
            "reranker.patience",
            "distill.max_steps",
            "distill.label_weight",
            "bm25.k1",
            "fuse.resamples",
        )
    },
    **{
        key: POSITIVE
        for key in (
            "retriever.epochs",
            "retriever.learning_rate",
            "retriever.temperature",
            "reranker.epochs",
            "reranker.learning_rate",
            "reranker.head_learning_rate",
            "distill.epochs",
            "distill.learning_rate",
            "distill.teacher_temperature",
        )
    },
    **{key: UNIT for key in ("bm25.b", "rerank.fuse_weights", "reranker.last_window_share")},
    **{
        key: BELOW_ONE
        for key in (
            "split.dev_fraction",
            "retriever.attention_dropout",
            "reranker.attention_dropout",
            "reranker.average_from",
        )
    },
}
"""The range of each numeric option (a list option: of each of its items), checked when the file is read."""


def check_range(name: str, dotted: str, value: object) -> None:
    """Refuse a number outside its option's range (NaN included), naming the file and key."""
    if dotted not in RANGES or value is None:
        return
    accepts, wanted = RANGES[dotted]
    for item in value if isinstance(value, list) else [value]:
        if not isinstance(item, (int, float)) or isinstance(item, bool) or not accepts(item):
            raise TandemError(f"{name} must be {wanted}, not {item!r}")


def check_types(config: dict, defaults: dict = DEFAULTS, where: str = "config", section: str = "") -> None:
    """Every option must have its default's type (an int where a float is expected is fine), and a value
    from CHOICES where it has some, so a typo such as `epochs: "one"` stops the run before its first
    stage, not after five. `where` names the file (its own dots are not option names)."""
    for key, default in defaults.items():
        dotted = f"{section}.{key}" if section else key
        value, name = config[key], f"{where}.{dotted}"
        if isinstance(default, dict):
            check_types(value, default, where, dotted)
            continue
        expected = OPTIONAL_TYPES.get(dotted) if default is None else (type(default),)
        if value is None and (default is None or dotted in NULLABLE):
            continue
        if expected == (float,):
            expected = (int, float)
        if expected and (not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected)):
            names = " or ".join(t.__name__ for t in expected)
            raise TandemError(f"{name} must be {names}, not {value!r}")
        check_range(name, dotted, value)
        if dotted in LIST_CHOICES and (not value or any(item not in LIST_CHOICES[dotted] for item in value)):
            raise TandemError(f"{name} must list some of {', '.join(LIST_CHOICES[dotted])}, not {value!r}")
        if dotted in CHOICES and value not in CHOICES[dotted]:
            raise TandemError(f"{name} must be one of {', '.join(CHOICES[dotted])}, not {value!r}")
        if dotted == "fuse.grid_step" and not (0 < value <= 1 and abs(1 / value - round(1 / value)) < 1e-6):
            raise TandemError(f"{name} must split 1 into equal steps (0.1, 0.05, 0.25, ...), not {value!r}")


def load_config(path: Path | None, quick: bool, sets: list[str] = ()) -> dict:
    """The defaults (with the --quick profile), then the file's options, then each `--set section.key=value`;
    every option is checked (`check_types`) before any stage."""
    config = merge(DEFAULTS, QUICK) if quick else copy.deepcopy(DEFAULTS)
    overrides = [(f"--set {item}", section_override(item)) for item in sets]
    for where, override in overrides:
        config = merge(config, override, where)
    if path is None:
        check_types(config, where="--set")
        return config
    config = merge(config, read_options_file(path, entries="sections"), str(path))
    for where, override in overrides:  # over the file
        config = merge(config, override, where)
    check_types(config, where=str(path))
    return config


def section_override(item: str) -> dict:
    """`--set section.key=value` as the configuration it lays over: {section: {key: value}}."""
    key, value = parse_set(item)
    section, dot, option = key.partition(".")
    if not dot:
        raise TandemError(f"--set {item}: name the option with its section, e.g. reranker.epochs=2")
    return {section: {option: value}}


def stage_config(config: dict, stage: str, mode: str = "train") -> dict:
    """The slice of the configuration a stage depends on (its declared sections, `pipelines.stages`)."""
    from pipelines.stages import BY_NAME

    declared = BY_NAME[stage]
    sections = list(config) if declared.sections is None else list(declared.sections)
    if mode == "self-supervised":
        sections += declared.self_supervised_sections
    return {name: config[name] for name in sections}


def print_config(config: dict) -> str:
    return yaml.safe_dump(config, sort_keys=False)
