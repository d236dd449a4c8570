"""Pair scoring: tandem's CrossEncoder.score against sentence-transformers' CrossEncoder.predict at its best
(torch fp32 and bf16, ONNX Runtime fp32 and int8, OpenVINO fp32, bf16 and int8), same model, pairs
(SciFact test queries x their top hits in `--run`), max length, batch size and threads. Prints each
row's pairs/s and its score correlation with tandem's fp32 scores, then a roofline line and

    RESULT rerank: tandem (<setting>) / fastest peer (<backend>) = X.XXx

    .venv/bin/tandem bm25 search --index runs/bm25-scifact --dataset scifact --split test --k 100 --out runs/bm25.test.trec
    .venv/bin/python -m bench.rerank --run runs/bm25.test.trec --pairs 500 --threads 1
    .venv/bin/python -m bench.rerank --run RUN --model runs/scifact/reranker/nll --quality   # + nDCG@10 per row

Without `--model` the reranker is all-MiniLM-L6-v2 with a new (seeded) one-logit head, saved once so
that every row scores with the same weights: its speed is a real cross-encoder's, its ranking is not,
so `--quality` needs a trained cross-encoder.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import add_inference_args, add_peer_args, data_root, run_peers, set_threads
from bench.encode import report
from core.data.runs import read_run
from core.models import resolve_model
from pipelines.warmup import fastest_seconds
from rerank.model import CrossEncoder, is_cross_encoder

TANDEM_SETTINGS = ("fp32", "bf16", "bf16-compiled", "int8")


def load_pairs(
    run_path: str, count: int | None, depth: int = 100
) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """(queries, passages, (query id, passage id)) for each query's top `depth` hits in the run, in run order."""
    root = data_root() / "scifact"
    queries = {json.loads(line)["_id"]: json.loads(line)["text"] for line in open(root / "queries.jsonl")}
    corpus = {}
    for line in open(root / "corpus.jsonl"):
        record = json.loads(line)
        corpus[record["_id"]] = f"{record['title']} {record['text']}".strip()
    keys = [(qid, doc) for qid, hits in read_run(run_path).items() for doc, _ in hits[:depth]][:count]
    return [queries[q] for q, _ in keys], [corpus[d] for _, d in keys], keys


def ndcg_of(scores: np.ndarray, keys: list[tuple[str, str]]) -> float:
    from core.data.beir import BeirDataset
    from pipelines.evaluation.metrics import evaluate

    run: dict[str, list[tuple[str, float]]] = {}
    for (qid, doc), score in zip(keys, scores, strict=True):
        run.setdefault(qid, []).append((doc, float(score)))
    return evaluate(run, BeirDataset(data_root() / "scifact").qrels("test"), ["nDCG@10"]).aggregate["nDCG@10"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a SciFact test run (e.g. from `tandem bm25 search`)")
    parser.add_argument("--model", help="cross-encoder (default: all-MiniLM-L6-v2 with a new head: speed is the same)")
    parser.add_argument("--pairs", type=int, default=500, help="pairs timed (default: 500)")
    parser.add_argument("--settings", nargs="+", default=list(TANDEM_SETTINGS), help="tandem precisions to time")
    parser.add_argument(
        "--quality", type=int, nargs="?", const=20, default=None, metavar="DEPTH",
        help="also nDCG@10 on SciFact test for every row, reranking each query's top DEPTH (default 20)",
    )  # fmt: skip
    add_inference_args(parser, dtypes=False)
    add_peer_args(parser)
    parser.set_defaults(threads=1)
    args = parser.parse_args()
    set_threads(args.threads)
    queries, passages, _ = load_pairs(args.run, args.pairs)
    path = resolve_model(args.model)
    if args.quality and not is_cross_encoder(path):
        parser.error("--quality needs a trained cross-encoder (--model): a new head ranks at random")
    torch.manual_seed(0)
    ours = CrossEncoder.from_pretrained(path, max_length=args.max_length).to_device(args.device)
    shared = Path(args.peer_cache) / "cross-encoder"
    ours.save_pretrained(shared)  # the same weights (incl. a new head) for every row
    quality = load_pairs(args.run, None, args.quality) if args.quality else None

    rows: dict[str, dict] = {}
    for setting in args.settings:
        if setting == "int8":  # quantised before timing, as the peers' exports are
            started = time.perf_counter()
            ours.prepare_int8(queries, passages)
            print(
                f"tandem int8: quantised in {time.perf_counter() - started:.1f} s (once per model and job)", flush=True
            )
        if setting == "bf16-compiled":  # compiled before timing (the first call), as int8 is quantised
            started = time.perf_counter()
            ours.score(queries, passages, args.batch_size, setting, show_progress=False)
            print(f"tandem bf16-compiled: first call (compiling) {time.perf_counter() - started:.1f} s", flush=True)

        def score(q: list[str], p: list[str], precision: str = setting) -> np.ndarray:
            return ours.score(q, p, args.batch_size, precision, show_progress=False)

        seconds = fastest_seconds(lambda s=score: s(queries, passages), args.repeats)
        row = rows[f"tandem {setting}"] = {"rate": len(queries) / seconds, "outputs": score(queries, passages)}
        if quality:
            row["quality_outputs"] = score(quality[0], quality[1])
        print(f"tandem {setting}: {row['rate']:.1f} pairs/s", flush=True)
    pairs = [[q, p] for q, p in zip(queries, passages, strict=True)]
    quality_pairs = [[q, p] for q, p in zip(quality[0], quality[1], strict=True)] if quality else None
    for backend, row in run_peers("rerank", str(shared), {"pairs": pairs}, args, quality_pairs).items():
        rows[f"sentence-transformers {backend}"] = row

    reference = rows[f"tandem {args.settings[0]}"]["outputs"]
    print(
        f"\nmodel={path} threads={args.threads} max_length={args.max_length} batch={args.batch_size} pairs={len(pairs)}"
    )
    print(f"| system | pairs/s | score correlation vs tandem {args.settings[0]} | nDCG@10 SciFact test |")
    print("|---|---|---|---|")
    for name, row in rows.items():
        correlation = row["agreement"] = float(np.corrcoef(row["outputs"].ravel(), reference)[0, 1])
        if row.get("quality_outputs") is not None:
            row["ndcg"] = ndcg_of(row["quality_outputs"].ravel(), quality[2])
        ndcg = f"{row['ndcg']:.4f}" if "ndcg" in row else "not measured"
        print(f"| {name} | {row['rate']:.1f} | {correlation:.5f} | {ndcg} |")
    lengths = [
        len(ids)
        for ids in ours.tokenizer(queries, passages, truncation="longest_first", max_length=args.max_length)[
            "input_ids"
        ]
    ]
    report(rows, args, ours, None, "rerank", "pairs", lengths)


if __name__ == "__main__":
    main()
