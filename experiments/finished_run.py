"""A finished `tandem run` as the experiments that replay its later stages read it (`fusion`,
`rerank_depth`, `scoring_length`): every section of its configuration as its report recorded it, and a
`RunContext` over its folders, so a replay finds the runs, dev split and models the run itself used."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.data.sources import open_dataset
from pipelines.stages.context import RunContext


def finished_run(run: Path, dataset: str) -> RunContext:
    """The context of the run in folder `run` (finished up to its report) on `dataset` (a name or folder);
    its `config` holds every section the run recorded."""
    config = json.loads((run / "report" / "config.json").read_text())
    return RunContext(open_dataset(dataset), run, config)


def replay_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every replay takes: the finished run's folder, its dataset, and which of its
    cross-encoders (by loss); each experiment adds its own."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a finished `tandem run` folder")
    parser.add_argument("--dataset", required=True, help="its dataset: a name or a BEIR folder")
    parser.add_argument("--label", default="nll", help="the cross-encoder (its loss)")
    return parser
