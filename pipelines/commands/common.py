"""Arguments and helpers several sub-commands share."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from retrieval.atomic import atomic_file
from retrieval.beir import BeirDataset
from retrieval.sources import open_dataset


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


def write_config(path: str | Path, args: argparse.Namespace, **extra: object) -> None:
    """Save the exact configuration a command ran with, beside its output."""
    config = {k: v for k, v in vars(args).items() if k != "handler"}
    config = {k: str(v) if isinstance(v, Path) else v for k, v in config.items()}
    config["argv"] = sys.argv
    config.update(extra)
    with atomic_file(path) as out:
        json.dump(config, out, indent=2, default=str)
        out.write("\n")
