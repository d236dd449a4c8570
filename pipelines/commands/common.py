"""Arguments and helpers several sub-commands share."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

from core.atomic import atomic_file
from core.data.beir import BeirDataset
from core.data.sources import open_dataset
from core.options import add_options, fields_of
from core.outputs import (
    check_file_output,
    check_folder_output,
    looks_like_jsonl,
    looks_like_trec_run,
    looks_like_tsv_header,
)
from core.parts import torchrun_world
from core.precision import INFERENCE_PRECISIONS, PRECISIONS
from core.training.output import prepare_output_dir


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (a bad value is a one-line usage error, not a traceback)."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def non_negative_int(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text, float)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def weight(text: str) -> float:
    """argparse type: a weight in [0, 1] (NaN, negatives and values above 1 are usage errors)."""
    value = _number(text, float)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], not {text}")
    return value


def fraction(text: str) -> float:
    value = _number(text, float)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), not {text}")
    return value


def _number(text: str, kind: type):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a {'whole ' if kind is int else ''}number, not '{text}'") from None


def add_dataset_args(parser: argparse.ArgumentParser, split: str | None = "test", required: bool = True) -> None:
    parser.add_argument(
        "--dataset",
        required=required,
        help="a BEIR folder (corpus.jsonl, queries.jsonl, qrels/), or a BEIR name such as 'scifact': looked up "
        "under $TANDEM_DATA_DIR, then the cache, then downloaded",
    )
    if split is not None:
        parser.add_argument("--split", default=split, help=f"qrels split to use (default: {split})")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="make qrels rows with unknown query/corpus ids an error instead of a warning",
    )


def dataset_from(args: argparse.Namespace) -> BeirDataset:
    return open_dataset(args.dataset, strict=args.strict)


def command_options(args: argparse.Namespace) -> dict:
    """The options a command was given (paths as strings, the handler left out): what it records beside
    its output, and what torchrun parts are checked against before one is reused."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "handler"}


def write_config(path: str | Path, args: argparse.Namespace, **extra: object) -> None:
    """Save the exact configuration a command ran with, beside its output."""
    config = command_options(args)
    config["argv"] = sys.argv
    config.update(extra)
    with atomic_file(path) as out:
        json.dump(config, out, indent=2, default=str)
        out.write("\n")


def add_precision_arg(parser: argparse.ArgumentParser, inference: bool = False) -> None:
    """`--precision`, the same for training, encoding and reranking; `inference` adds int8 (OpenVINO)."""
    int8 = (
        "; int8 = OpenVINO int8, quantised on a sample of this job's inputs (the fastest on a CPU; optional "
        "extra `int8`), which auto picks for reranking 2,000 pairs or more on a CPU with the extra; "
        "bf16-compiled = bf16 through torch.compile on a CPU (faster than bf16 once compiled; needs a "
        "C++ compiler), which auto picks for other jobs of 20,000 passages or pairs on CPUs with fast bf16"
        if inference
        else ""
    )
    parser.add_argument(
        "--precision",
        choices=INFERENCE_PRECISIONS if inference else PRECISIONS,
        default="auto",
        help="auto = bf16 autocast on CUDA and on CPUs with AMX or AVX512-BF16 (faster there), fp32 on "
        f"other CPUs{int8} (default: auto)",
    )


TRAINING_FLAG_ALIASES = {"learning_rate": ["--lr"], "head_learning_rate": ["--head-lr"], "warmup_ratio": ["--warmup"]}
"""Shorter flags kept beside the ones named after the keys."""


def add_trainer_options(
    parser: argparse.ArgumentParser, cls: type, exclude: tuple[str, ...] = (), defaults: dict | None = None
) -> None:
    """A flag per field of a trainer's config class (`RerankerConfig`, `RetrieverConfig`: the defaults and
    help are the class's), `--config FILE`, `--set KEY=VALUE`, and `--resume` / `--overwrite`."""
    names = [name for name, (annotation, _) in fields_of(cls).items() if name not in exclude]
    add_options(parser, cls, names, TRAINING_FLAG_ALIASES, defaults)
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    resume.add_argument(
        "--overwrite",
        action="store_true",
        help="delete what an earlier training left in --out and start again (a non-empty --out is refused "
        "without --resume or --overwrite)",
    )


def prepare_training_output(args: argparse.Namespace, dataset: BeirDataset | None = None) -> bool:
    """Check (and with --overwrite clear) a training command's --out; returns whether this process is
    the one that writes files (rank 0 under torchrun, which alone checks the folder)."""
    if torchrun_world()[0] != 0:
        return False
    protected = dataset.protected if dataset is not None else []
    prepare_output_dir(args.out, resume=args.resume, overwrite=args.overwrite, protected=protected)
    return True


def check_output_folder(args: argparse.Namespace, kind: str, dataset: BeirDataset | None) -> dict | None:
    """Refuse `--out` before any work unless it is new, empty or tandem's output of `kind`, and never
    in or around the dataset folder (see core/outputs.py); returns the folder's marker, if any."""
    return check_folder_output(args.out, kind, dataset.protected if dataset is not None else [])


def check_output_file(
    path: Path, what: str, dataset: BeirDataset | None, inputs: Iterable[Path | None] = (), flag: str = "--out"
) -> None:
    """Refuse an output file before any work when it would replace a dataset file, one of the command's
    inputs, a folder, or a file that is not a `what` ('TREC run', 'groups file', 'per-query table')."""
    check_file_output(
        path,
        what,
        OUTPUT_FILE_CHECKS[what],
        dataset.protected if dataset is not None else [],
        [source for source in inputs if source is not None],
        flag,
    )


OUTPUT_FILE_CHECKS = {
    "TREC run": looks_like_trec_run,
    "groups file": looks_like_jsonl("query_id", "positives"),
    "per-query table": looks_like_tsv_header("query-id\tmeasure\tvalue"),
}
"""How an existing output file shows it is an earlier output of the same kind (and may be replaced)."""


def without_negatives_note(summary: dict) -> str:
    dropped = summary.get("groups_without_negatives", 0)
    return f" ({dropped} groups without a negative left out)" if dropped else ""
