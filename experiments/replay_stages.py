"""Re-run the last stages of a finished `tandem run` under today's configuration, keeping its earlier stages
as they are: how the records are refreshed after a change that only touches the late stages (e.g. how the
rerank stage scores), when the earlier stages' recorded configuration no longer matches today's word for
word (an option renamed or re-expressed since, with the same outputs) and `tandem run` would retrain them.

Every stage from `--from` on runs exactly as `tandem run` runs it (`pipelines.runner.run_stage`, the same
folders and done.json), with today's defaults and any `--set`; the stages before it are not checked. Whoever
uses it says so in the record's note, and why the earlier stages stand. With `--resume` the first stage
resumes from the checkpoints in its folder, as an interrupted `tandem run` resumes its reranker stage.

    .venv/bin/python -m experiments.replay_stages --run runs/sf-lastwin --dataset scifact --from rerank
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from core.data.sources import open_dataset
from pipelines.config import load_config
from pipelines.modes import choose_mode
from pipelines.runner import run_stage, wanted_configs
from pipelines.stages import STAGE_NAMES
from pipelines.stages.context import RunContext


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a finished `tandem run` folder")
    parser.add_argument("--dataset", required=True, help="its dataset: a name or a BEIR folder")
    parser.add_argument("--from", dest="first", choices=STAGE_NAMES, required=True, help="the first stage to re-run")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="as in tandem run")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="the first stage keeps its folder and resumes from the checkpoints there (the reranker stage)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    dataset = open_dataset(args.dataset)
    config = load_config(None, quick=False, sets=args.set)
    mode, why, transferred = choose_mode(dataset, config)
    ctx = RunContext(dataset, args.run, config, mode, why, transferred)
    wanted = wanted_configs(ctx)
    for stage in STAGE_NAMES[STAGE_NAMES.index(args.first) :]:
        print(f"stage {stage}: re-running", flush=True)
        run_stage(ctx, stage, wanted[stage], resume=args.resume and stage == args.first)


if __name__ == "__main__":
    main()
