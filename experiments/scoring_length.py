"""How many tokens per pair the cross-encoder scores at (`rerank.max_length`), measured on dev: a finished
`tandem run`'s cross-encoder (trained at its own length) rescoring the dev queries' BM25 and hybrid top
`rerank.depth` at each `--lengths` value, exactly as the rerank stage scores (the same precision, int8
calibrated on the test BM25 pairs), then mixed with BM25 and dense as the fuse stage mixes them (bagged
convex weights). For each length it prints the cross-encoder alone on each first stage and the fuse
stage's convex mix, dev nDCG@10 only: the figures that choose the length. Reranked runs are kept as
RUN/experiments/scoring-length/LENGTH/{bm25,hybrid}-LABEL.trec.

`--tail-window` also scores each passage that does not fit beside its query on its last window (its last
tokens that do fit) and keeps the higher of the two scores: a max over the passage's first and last
windows (MaxP, Dai and Callan 2019), which shows the model the whole of most passages at the length it
trained at. Its runs are kept under LENGTH-tail/.

    .venv/bin/python -m experiments.scoring_length --run runs/sf-titles1x --dataset scifact --lengths 256 384 512
"""

from __future__ import annotations

import time

from core.data.runs import Run, read_run, write_run
from core.precision import bulk_precision, pick_device
from experiments.finished_run import finished_run, replay_parser
from pipelines.evaluation.fusion import choose_convex_weights, simplex_grid
from pipelines.evaluation.metrics import evaluate
from pipelines.stages.context import RunContext
from pipelines.stages.rerank import run_path
from rerank.model import CrossEncoder
from rerank.rerank import rerank_pairs, rerank_runs, reranked_at_depth, top_pairs


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
        model = CrossEncoder.from_pretrained(ctx.rerankers()[args.label], max_length=length).to_device()
        precision = bulk_precision(options["precision"], pick_device(), pairs)
        if precision == "int8":
            model.prepare_int8(*rerank_pairs(calibration_run, ctx.dataset.queries, ctx.dataset.corpus, depth))
        started = time.perf_counter()
        reranked = rerank_runs(
            dev, ctx.dataset.queries, ctx.dataset.corpus, model, depth, options["batch_size"], precision=precision
        )
        if args.tail_window:
            reranked = with_tail_windows(model, dev, reranked, ctx, depth, options["batch_size"], precision)
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


def tail_window(model: CrossEncoder, query: str, passage: str) -> str | None:
    """The passage's last window: the text of its last tokens that fit beside `query` in the model's
    `max_length` (None when the whole passage fits)."""
    special_tokens = 3  # [CLS] query [SEP] passage [SEP]
    budget = model.max_length - len(model.tokenizer(query, add_special_tokens=False)["input_ids"]) - special_tokens
    encoded = model.tokenizer(passage, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    tokens = encoded["offset_mapping"]  # each token's (start, end) in the passage's characters
    if budget <= 0 or len(tokens) <= budget:
        return None
    start = tokens[-budget][0]
    while 0 < start < len(passage) and not passage[start - 1].isspace():  # from the next whole word
        start += 1
    return passage[start:]


def with_tail_windows(
    model: CrossEncoder, first_runs: dict[str, Run], reranked: dict[str, Run], ctx: RunContext, depth: int,
    batch_size: int, precision: str,
) -> dict[str, Run]:  # fmt: skip
    """Each reranked run reordered by the max of each pair's score and its passage's last-window score."""
    queries, corpus = ctx.dataset.queries, ctx.dataset.corpus
    tails = {}
    for query_id, doc_id in top_pairs(first_runs.values(), depth):
        tail = tail_window(model, queries[query_id], corpus.passage(doc_id))
        if tail is not None:
            tails[query_id, doc_id] = tail
    scores = model.score(
        [queries[query_id] for query_id, _ in tails], list(tails.values()), batch_size=batch_size, precision=precision
    )
    tail_scores = dict(zip(tails, scores.tolist(), strict=True))
    maxed = {
        name: {
            query_id: [
                (doc_id, max(score, tail_scores.get((query_id, doc_id), score))) for doc_id, score in hits[:depth]
            ]
            for query_id, hits in run.items()
        }
        for name, run in reranked.items()
    }
    return {name: reranked_at_depth(first_runs[name], run, depth) for name, run in maxed.items()}


if __name__ == "__main__":
    main()
