"""How the fuse stage should choose its convex weights, measured on dev alone: repeated k-fold
cross-validation over a finished `tandem run`'s dev queries. In each fold the weights are chosen on the
other folds' queries and scored on the held-out ones, once by the grid's best weighting (`--resamples 0`,
the argmax) and once by bagging (the mean of the best weighting over bootstrap samples). The held-out mean
is what each way of choosing is worth on queries it did not see; the weights each picks on the whole dev
split are printed beside it. One JSON line per reranked run goes to RUN/experiments/fusion/results.jsonl.
No test figure is read.

    .venv/bin/python -m experiments.fusion --run runs/sf-final --dataset scifact
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from core.data.beir import Qrels
from core.data.runs import Run, ranked, read_run
from experiments.finished_run import finished_run, replay_parser
from pipelines.evaluation.fusion import bagged_weights, best_on, convex_figures, mean_figure, simplex_grid
from pipelines.stages.rerank import run_path


def figures_at(reranked: Run, others: list[Run], qrels: Qrels, weights: tuple[float, ...], depth: int) -> list[float]:
    """Per-query dev nDCG@10 of `convex` at any weights (on the grid or off it), in sorted query order."""
    return convex_figures(reranked, others, qrels, [weights], depth)[1][0]


def cross_validate(
    reranked: Run, others: list[Run], qrels: Qrels, grid: list[tuple[float, ...]], depth: int, args: argparse.Namespace
) -> dict:
    """Held-out nDCG@10 of the argmax and the bagged choice over `args.repeats` k-fold splits, and the
    weights each picks on the whole dev split."""
    queries, figures = convex_figures(reranked, others, qrels, grid, depth)
    rng = np.random.default_rng(args.seed)
    held: dict[str, list[float]] = {"argmax": [], "bagged": []}
    for _ in range(args.repeats):
        folds = np.array_split(rng.permutation(len(queries)), args.folds)
        totals = {"argmax": 0.0, "bagged": 0.0}
        for k, fold in enumerate(folds):
            train = [int(i) for j, other in enumerate(folds) if j != k for i in other]
            test = [int(i) for i in fold]
            totals["argmax"] += mean_figure(figures[best_on(figures, train)], test) * len(test)
            train_figures = [[row[i] for i in train] for row in figures]
            weights = bagged_weights(train_figures, grid, args.resamples, seed=int(rng.integers(1 << 31)))
            bagged = figures_at(reranked, others, qrels, weights, depth)
            totals["bagged"] += mean_figure(bagged, test) * len(test)
        for way, total in totals.items():
            held[way].append(total / len(queries))
    whole = {"argmax": grid[best_on(figures)], "bagged": bagged_weights(figures, grid, args.resamples, args.seed)}
    return {
        "dev_queries": len(queries),
        "held_out_nDCG@10": {way: float(np.mean(values)) for way, values in held.items()},
        "held_out_sd_over_repeats": {way: float(np.std(values)) for way, values in held.items()},
        "weights_on_all_dev": whole,
        "dev_nDCG@10_on_all_dev": {
            way: mean_figure(figures_at(reranked, others, qrels, weights, depth)) for way, weights in whole.items()
        },
    }


def union_of_tops(reranked: list[Run], depth: int) -> Run:
    """Per query, every passage in any of the runs' top `depth`, with its score (the same cross-encoder
    scored it in each), best first: the candidates of all first stages reranked as one list."""
    union: Run = {}
    for run in reranked:
        for query_id, hits in run.items():
            scores = dict(union.get(query_id, []))
            scores.update(hits[:depth])
            union[query_id] = ranked(list(scores.items()))
    return union


def main() -> None:
    parser = replay_parser(__doc__)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10, help="cross-validations, each with its own split")
    parser.add_argument("--resamples", type=int, default=100, help="bootstrap samples of the bagged choice")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--with-zeroshot",
        action="store_true",
        help="a fourth part: the zero-shot bi-encoder's run (the dense-zeroshot stage) beside the fine-tuned one's",
    )
    parser.add_argument(
        "--union",
        action="store_true",
        help="one more row: the mix over the union of every reranked run's top `rerank.depth` (the same scores)",
    )
    args = parser.parse_args()

    ctx = finished_run(args.run, args.dataset)
    config = ctx.config
    stages = ["bm25", ctx.dense_stage()] + (["dense-zeroshot"] if args.with_zeroshot else [])
    grid = simplex_grid(1 + len(stages), config["fuse"]["grid_step"])
    others = [read_run(ctx.stage_run(stage, "dev")) for stage in stages]
    out = args.run / "experiments" / "fusion"
    out.mkdir(parents=True, exist_ok=True)
    depth = config["rerank"]["depth"]
    names = [f"{first}-{args.label}" for first in config["rerank"]["first_stages"]]
    runs = {name: (read_run(run_path(ctx.stage_dir("rerank"), "dev", name)), depth) for name in names}
    if args.union:  # the union of the top `depth` of each run holds at most `depth` hits per run
        runs["union"] = (union_of_tops([run for run, _ in runs.values()], depth), depth * len(names))
    for name, (reranked, top) in runs.items():
        measured = cross_validate(reranked, others, ctx.dev_qrels(), grid, top, args)
        record = {**vars(args), "run": str(args.run), "reranked": name, **measured}
        with (out / "results.jsonl").open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
