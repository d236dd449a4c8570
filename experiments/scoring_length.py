"""How many tokens per pair the cross-encoder scores at (`rerank.max_length`), measured on dev: a finished
`tandem run`'s cross-encoder (trained at its own length) rescoring the dev queries' BM25 and hybrid top
`rerank.depth` at each `--lengths` value, exactly as the rerank stage scores (the same precision, int8
calibrated on the test BM25 pairs), then mixed with BM25 and dense as the fuse stage mixes them (bagged
convex weights). For each length it prints the cross-encoder alone on each first stage and the fuse
stage's convex mix, dev nDCG@10 only: the figures that choose the length. Reranked runs are kept as
RUN/experiments/scoring-length/LENGTH/{bm25,hybrid}-LABEL.trec.

`--tail-window` also scores each passage that does not fit beside its query on its last window and keeps
the higher of the two scores (`CrossEncoder.last_window`, MaxP over the first and last windows): the
experiment that made it the rerank stage's default (`rerank.last_window`). Its runs are kept under
LENGTH-tail/; without it, every length scores the first window only.

    .venv/bin/python -m experiments.scoring_length --run runs/sf-titles1x --dataset scifact --lengths 256 384 512
"""

from __future__ import annotations

import time

from core.data.runs import read_run, write_run
from core.precision import bulk_precision, pick_device
from experiments.finished_run import finished_run, replay_parser
from pipelines.evaluation.fusion import choose_convex_weights, simplex_grid
from pipelines.evaluation.metrics import evaluate
from pipelines.stages.rerank import run_path
from rerank.model import CrossEncoder
from rerank.rerank import rerank_pairs, rerank_runs


def main() -> None:
    parser = replay_parser(__doc__)
    parser.add_argument("--lengths", type=int, nargs="+", required=True, help="tokens per pair to score at")
    parser.add_argument("--tail-window", action="store_true", help="max of the first and the last window's score")
    args = parser.parse_args()

    ctx = finished_run(args.run, args.dataset)
    config = ctx.config  # every section
    options = config["rerank"]
    rerank = ctx.stage_dir("rerank")
    dev = {"hybrid": read_run(run_path(rerank, "dev", "hybrid")), "bm25": read_run(ctx.stage_run("bm25", "dev"))}
    others = [read_run(ctx.stage_run(stage, "dev")) for stage in ("bm25", ctx.dense_stage())]
    calibration_run = read_run(ctx.stage_run("bm25", "test"))  # what the rerank stage calibrates int8 on
    qrels = ctx.dev_qrels()
    grid = simplex_grid(3, config["fuse"]["grid_step"])
    depth = options["depth"]
    pairs = sum(min(len(hits), depth) for run in dev.values() for hits in run.values())
    for length in args.lengths:
        model = CrossEncoder.from_pretrained(
            ctx.rerankers()[args.label], max_length=length, last_window=args.tail_window
        ).to_device()
        precision = bulk_precision(options["precision"], pick_device(), pairs)
        if precision == "int8":
            model.prepare_int8(*rerank_pairs(calibration_run, ctx.dataset.queries, ctx.dataset.corpus, depth))
        started = time.perf_counter()
        reranked = rerank_runs(
            dev, ctx.dataset.queries, ctx.dataset.corpus, model, depth, options["batch_size"], precision=precision
        )
        seconds = time.perf_counter() - started
        out = args.run / "experiments" / "scoring-length" / f"{length}{'-tail' if args.tail_window else ''}"
        for first, run in reranked.items():
            write_run(run, out / f"{first}-{args.label}.trec", tag=f"{first}-ce-{args.label}-{length}")
            alone = evaluate(run, qrels).aggregate["nDCG@10"]
            weights, fused = choose_convex_weights(
                run, others, qrels, grid, depth, resamples=config["fuse"]["resamples"]
            )
            print(
                f"length {length}{' tail' if args.tail_window else ''}  {first} + CE  dev {alone:.4f}  convex {weights} dev {fused:.4f}  "
                f"({precision}, {seconds:.0f} s for both first stages)",
                flush=True,
            )


if __name__ == "__main__":
    main()
