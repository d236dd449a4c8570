"""Averaging a cross-encoder's late checkpoints, measured on dev: the uniform mean of the weights saved
every `save_every` steps within a step range, against the weights the trainer kept (the best of its dev
evaluations). Averaging the points of one training's decaying tail smooths the noise of its last
updates without a dev split choosing among them (Izmailov et al. 2018, "Averaging weights leads to wider
optima and better generalization"). One JSON line per call goes to CHECKPOINTS/averages.jsonl; no test
figure is read.

    .venv/bin/python -m experiments.cross_encoder --run runs/sf-lastwin --dataset scifact --name ckpt-avg \\
        --keep-checkpoints 100
    .venv/bin/python -m experiments.checkpoint_average --run runs/sf-lastwin --dataset scifact \\
        --checkpoints runs/sf-lastwin/experiments/cross-encoder/ckpt-avg --ranges 300:600 450:600

The figure is the trainer's own dev evaluation (`rerank_dev_score`: nDCG@10 of reranking each dev
query's hybrid top `reranker.eval_depth`, first windows, bf16 where fast); `--last-window` also scores
each model on both windows, as the rerank stage does.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from safetensors.torch import load_file

from core.training.averaging import TailAverage
from core.training.state import checkpoint_step, saved_checkpoints
from experiments.finished_run import finished_run, replay_parser
from pipelines.evaluation.dev_score import rerank_dev_score
from pipelines.stages.rerank import hybrid_run
from rerank.model import CrossEncoder

WEIGHTS_FILE = "model.safetensors"


def checkpoints_within(folder: Path, first: int, last: int) -> list[Path]:
    """The checkpoints of a training whose step lies in `first`..`last`, by step."""
    return [path for path in saved_checkpoints(folder) if first <= checkpoint_step(path) <= last]


def averaged_model(checkpoints: list[Path], last_window: bool) -> CrossEncoder:
    """A cross-encoder whose every floating-point tensor is the mean of the checkpoints' (integer buffers,
    such as position ids, are the first checkpoint's), summed in step order by the trainer's own
    `TailAverage`: the weights a training with `average_from` finishes with, to the bit."""
    model = CrossEncoder.from_pretrained(checkpoints[0], last_window=last_window)
    average = TailAverage(first_step=0, every=1)  # every point given is added
    for path in checkpoints:
        average.add(load_file(path / WEIGHTS_FILE))
    average.apply(model.model)
    return model


def main() -> None:
    parser = replay_parser(__doc__)
    parser.add_argument(
        "--checkpoints", type=Path, required=True, help="a training folder with checkpoint-STEP folders"
    )
    parser.add_argument("--ranges", nargs="*", default=[], help="step ranges FIRST:LAST to average")
    parser.add_argument("--kept", action="store_true", help="score the weights the trainer kept (its folder)")
    parser.add_argument("--last-window", action="store_true", help="also score each model on both windows (MaxP)")
    args = parser.parse_args()

    ctx = finished_run(args.run, args.dataset)
    depth = ctx.config["reranker"]["eval_depth"]
    dev_score = rerank_dev_score(
        hybrid_run(ctx, "dev"), ctx.dataset.queries, ctx.dataset.corpus, ctx.dev_qrels(), depth
    )
    models: dict[str, list[Path]] = {}
    if args.kept:
        models["kept"] = [args.checkpoints]
    for span in args.ranges:
        first, last = (int(step) for step in span.split(":"))
        models[f"mean {first}-{last}"] = checkpoints_within(args.checkpoints, first, last)
    windows = [False, True] if args.last_window else [False]
    figures = {}
    for name, paths in models.items():
        if not paths:
            raise SystemExit(f"no checkpoint for {name} in {args.checkpoints}")
        for last_window in windows:
            started = time.perf_counter()
            figure = dev_score(averaged_model(paths, last_window))
            key = f"{name}{' (both windows)' if last_window else ''}"
            figures[key] = {"dev_nDCG@10": round(figure, 4), "checkpoints": [p.name for p in paths]}
            print(f"{key}: dev nDCG@10 {figure:.4f} ({len(paths)} checkpoints, {time.perf_counter() - started:.0f} s)")
    record = {"run": str(args.run), "checkpoints": str(args.checkpoints), "eval_depth": depth, "figures": figures}
    with open(args.checkpoints / "averages.jsonl", "a") as results:
        results.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
