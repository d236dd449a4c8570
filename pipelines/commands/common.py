"""Arguments and helpers several sub-commands share."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.atomic import atomic_file
from core.data.beir import BeirDataset
from core.data.sources import open_dataset
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


def add_dataset_args(parser: argparse.ArgumentParser, split: str | None = "test") -> None:
    parser.add_argument(
        "--dataset", required=True,
        help="a BEIR folder (corpus.jsonl, queries.jsonl, qrels/), or a BEIR name such as 'scifact': looked up "
        "under $TANDEM_DATA_DIR, then the cache, then downloaded",
    )  # fmt: skip
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
        "; int8 = OpenVINO int8, quantised on a sample of this job's inputs (about 2x bf16 on a CPU; optional "
        "extra `int8`), which auto picks for reranking 2,000 pairs or more on a CPU with the extra; "
        "bf16-compiled = bf16 through torch.compile on a CPU (1.1-1.3x bf16 after ~25 s of compiling; needs a "
        "C++ compiler), which auto picks for other jobs of 20,000 passages or pairs on CPUs with fast bf16"
        if inference
        else ""
    )
    parser.add_argument(
        "--precision", choices=INFERENCE_PRECISIONS if inference else PRECISIONS, default="auto",
        help="auto = bf16 autocast on CUDA and on CPUs with AMX or AVX512-BF16 (about 2x faster there), fp32 on "
        f"other CPUs{int8} (default: auto)",
    )  # fmt: skip


def add_training_args(
    parser: argparse.ArgumentParser,
    lr: float,
    epochs: float,
    dropout: float,
    min_steps: int = 0,
    head_lr: float | None = None,
) -> None:
    """The optimiser, precision and checkpoint options both `train` commands share (defaults from
    pipelines/defaults.py, passed in by each command)."""
    parser.add_argument(
        "--attention-dropout", type=float, default=dropout,
        help="attention-probability dropout; 0 enables the fast SDPA kernel (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--epochs", type=positive_float, default=epochs, help=f"epochs over the groups (default: {epochs:g})"
    )
    parser.add_argument(
        "--min-steps", type=non_negative_int, default=min_steps,
        help=f"at least this many optimiser steps: a small training set gets more epochs (default: {min_steps})",
    )  # fmt: skip
    parser.add_argument("--lr", type=positive_float, default=lr, help=f"peak learning rate (default: {lr:g})")
    parser.add_argument(
        "--head-lr", type=positive_float, default=head_lr,
        help="peak learning rate for parameters the start model lacks, e.g. a new cross-encoder head "
        f"(default: {'--lr' if head_lr is None else f'{head_lr:g}'})",
    )  # fmt: skip
    parser.add_argument("--warmup", type=fraction, default=0.1, help="warm-up fraction of the steps (default: 0.1)")
    parser.add_argument(
        "--grad-accumulation", type=positive_int, default=1, help="batches accumulated per update (default: 1)"
    )
    add_precision_arg(parser)
    parser.add_argument("--gradient-checkpointing", action="store_true", help="trade compute for activation memory")
    parser.add_argument(
        "--save-every", type=non_negative_int, default=0, help="checkpoint every K steps (default: 0 = only at the end)"
    )
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    resume.add_argument(
        "--overwrite", action="store_true",
        help="delete what an earlier training left in --out and start again (a non-empty --out is refused "
        "without --resume or --overwrite)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=42, help="seed for sampling and initialisation (default: 42)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")


def prepare_training_output(args: argparse.Namespace) -> bool:
    """Check (and with --overwrite clear) a training command's --out; returns whether this process is
    the one that writes files (rank 0 under torchrun, which alone checks the folder)."""
    if torchrun_world()[0] != 0:
        return False
    prepare_output_dir(args.out, resume=args.resume, overwrite=args.overwrite)
    return True


def training_options(args: argparse.Namespace) -> dict:
    """The TrainingConfig fields set by `add_training_args`."""
    return dict(
        epochs=args.epochs, min_steps=args.min_steps, learning_rate=args.lr, head_learning_rate=args.head_lr, warmup_ratio=args.warmup, grad_accumulation=args.grad_accumulation,
        precision=args.precision, gradient_checkpointing=args.gradient_checkpointing, save_every=args.save_every,
        seed=args.seed, device=args.device,
    )  # fmt: skip


def without_negatives_note(summary: dict) -> str:
    dropped = summary.get("groups_without_negatives", 0)
    return f" ({dropped} groups without a negative left out)" if dropped else ""
