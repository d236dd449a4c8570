"""Pair scoring: tandem's CrossEncoder.score vs sentence-transformers' CrossEncoder.predict on the
same model and pairs (SciFact test queries x their BM25 top hits), same batch size and threads.

    .venv/bin/python -m bench.rerank --run runs/scifact/bm25.test.trec --pairs 2000
    .venv/bin/python -m bench.rerank --run RUN --peer-dtype same     # both in the same dtype
    .venv/bin/python -m bench.rerank --run RUN --device cuda --dtype bf16
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from sentence_transformers import CrossEncoder as StCrossEncoder

from bench.common import add_inference_args, best_of, data_root, dtype_of, resolved_dtypes, set_threads
from core.data.runs import read_run
from core.models import resolve_model
from rerank.model import CrossEncoder


def load_pairs(run_path: str, count: int) -> tuple[list[str], list[str]]:
    root = data_root() / "scifact"
    queries = {json.loads(line)["_id"]: json.loads(line)["text"] for line in open(root / "queries.jsonl")}
    corpus = {}
    for line in open(root / "corpus.jsonl"):
        record = json.loads(line)
        corpus[record["_id"]] = f"{record['title']} {record['text']}".strip()
    run = read_run(run_path)
    pairs = [(queries[qid], corpus[doc]) for qid, hits in run.items() for doc, _ in hits[:100]]
    return [q for q, _ in pairs[:count]], [p for _, p in pairs[:count]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a SciFact test run (e.g. from `tandem bm25 search`)")
    parser.add_argument("--model", help="cross-encoder (default: all-MiniLM-L6-v2 with a new head: speed is the same)")
    parser.add_argument("--pairs", type=int, default=2000)
    add_inference_args(parser)
    args = parser.parse_args()
    set_threads(args.threads)
    path = resolve_model(args.model)
    queries, passages = load_pairs(args.run, args.pairs)
    torch.manual_seed(0)
    ours = CrossEncoder.from_pretrained(path, max_length=args.max_length).to_device(args.device)
    ours.save_pretrained("/tmp/tandem-bench-ce")  # the same weights (incl. a new head) for both
    theirs = StCrossEncoder(
        "/tmp/tandem-bench-ce", max_length=args.max_length, device=args.device, activation_fn=torch.nn.Identity()
    )
    our_dtype, peer_dtype = resolved_dtypes(args)
    if dtype_of(peer_dtype) is not None:
        theirs.model.to(dtype_of(peer_dtype))
    pairs = list(zip(queries, passages, strict=True))
    a = ours.score(queries, passages, args.batch_size, args.dtype, show_progress=False)
    b = theirs.predict(pairs, batch_size=args.batch_size)
    agreement = float(np.corrcoef(a, b)[0, 1])
    t_ours = best_of(
        args.repeats, lambda: ours.score(queries, passages, args.batch_size, args.dtype, show_progress=False)
    )
    t_theirs = best_of(args.repeats, lambda: theirs.predict(pairs, batch_size=args.batch_size))
    print(
        f"model={path} device={args.device} tandem dtype={our_dtype} sentence-transformers dtype={peer_dtype} threads={args.threads} max_length={args.max_length} batch={args.batch_size} pairs={len(pairs)}"
    )
    print(
        f"tandem {len(pairs) / t_ours:.1f} pairs/s, sentence-transformers {len(pairs) / t_theirs:.1f} pairs/s (score correlation {agreement:.4f})"
    )
    print(f"RESULT rerank: tandem ({our_dtype}) / sentence-transformers ({peer_dtype}) = {t_theirs / t_ours:.2f}x")


if __name__ == "__main__":
    main()
