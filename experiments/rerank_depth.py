"""How deep the cross-encoder reranks (`rerank.depth`), measured on dev: the rerank and fuse stages of a
finished `tandem run` replayed at other depths from the cross-encoder scores the run already has (its
rerank stage scored each first stage's top `rerank.depth`, so any shallower depth needs no new scoring).
For each first stage (BM25, the hybrid) and depth it prints the cross-encoder alone, its dev-weighted
mix with the first stage and its convex mix with BM25 and dense, each with dev and test nDCG@10 and the
test paired t-test against the first stage; the last column marks the system dev would choose at that
depth. A quality experiment, not a speed benchmark: test figures are for depths already chosen.

    .venv/bin/python -m experiments.rerank_depth --run runs/sf-final --dataset scifact --depths 100 50 30
"""

from __future__ import annotations

from core.data.runs import Run, read_run
from experiments.finished_run import finished_run, replay_parser
from pipelines.evaluation.fusion import choose_convex_weights, choose_weight, convex, interpolate_reranked, simplex_grid
from pipelines.evaluation.metrics import evaluate
from pipelines.evaluation.report import paired_p_value
from pipelines.stages.rerank import run_path
from rerank.rerank import reranked_at_depth

SPLITS = ("dev", "test")


def main() -> None:
    parser = replay_parser(__doc__)
    parser.add_argument("--depths", type=int, nargs="+", required=True, help="at most the run's rerank.depth")
    args = parser.parse_args()

    ctx = finished_run(args.run, args.dataset)
    config = ctx.config  # every section
    scored_depth = config["rerank"]["depth"]
    if max(args.depths) > scored_depth:
        parser.error(f"{args.run} scored the top {scored_depth} only")
    qrels = {"dev": ctx.dev_qrels(), "test": ctx.dataset.qrels(config["split"]["test"])}
    rerank = ctx.stage_dir("rerank")
    first_runs = {
        "bm25": {split: read_run(ctx.stage_run("bm25", split)) for split in SPLITS},
        "hybrid": {split: read_run(run_path(rerank, split, "hybrid")) for split in SPLITS},
    }
    others = {
        split: [read_run(ctx.stage_run(stage, split)) for stage in ("bm25", ctx.dense_stage())] for split in SPLITS
    }
    grid = simplex_grid(3, config["fuse"]["grid_step"])
    for depth in args.depths:
        rows = []
        for first, firsts in first_runs.items():
            scored = {split: read_run(run_path(rerank, split, f"{first}-{args.label}")) for split in SPLITS}
            alone = {split: reranked_at_depth(firsts[split], scored[split], depth) for split in SPLITS}
            weight, _ = choose_weight(
                alone["dev"], firsts["dev"], qrels["dev"], config["rerank"]["fuse_weights"], depth
            )
            weights, _ = choose_convex_weights(alone["dev"], others["dev"], qrels["dev"], grid, depth)
            systems: dict[str, dict[str, Run]] = {
                f"{first} + CE": alone,
                f"{first} + CE fused (w {weight:g})": {
                    split: interpolate_reranked(alone[split], firsts[split], weight, depth) for split in SPLITS
                },
                f"{first} + CE convex {weights}": {
                    split: convex(alone[split], others[split], list(weights), depth) for split in SPLITS
                },
            }
            base = evaluate(firsts["test"], qrels["test"])
            for name, runs in systems.items():
                figures = {split: evaluate(runs[split], qrels[split]) for split in SPLITS}
                p = paired_p_value(figures["test"], base)
                rows.append([name, figures["dev"].aggregate["nDCG@10"], figures["test"].aggregate["nDCG@10"],
                             base.aggregate["nDCG@10"], p])  # fmt: skip
        best = max(rows, key=lambda row: row[1])
        for name, dev, test, first_test, p in rows:
            chosen = "  <- dev's choice" if [name, dev] == best[:2] else ""
            p_text = "n/a" if p is None else f"{p:.3g}"
            print(
                f"depth {depth:>3}  {name:<42} dev {dev:.4f}  test {test:.4f}  (first stage {first_test:.4f}, p {p_text}){chosen}"
            )


if __name__ == "__main__":
    main()
