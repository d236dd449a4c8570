"""A plan for MS MARCO passage at tandem's defaults: each stage's work, and its time on this CPU and on GPUs.

MS MARCO passage has 8,841,823 passages, 502,939 train queries with a judged positive and 6,980 dev
queries. The stages and their sizes are `tandem run`'s (`pipelines/plan.py`) at that shape. Times come from:

- **this machine, measured**: the per-token inference and per-step training rates of a finished run's
  warm-up (`--rates RUN/plan.json`, bf16 on 2 cores), the int8 encoding rate of `bench.scale`'s 1M-passage
  run (`--scale DIR`, its encode.json) and the mean token count of its MS MARCO-length passages; training
  steps are scaled from the run's passage length to MS MARCO's by tokens.
- **GPUs, derived, not measured**: no GPU was lent to this project. One V100 runs MiniLM-L6 over MS MARCO
  (query, passage) pairs at 1,800 pairs/s (published: the model card of cross-encoder/ms-marco-MiniLM-L-6-v2;
  the bi-encoder's passages are the same network over slightly shorter inputs); a training step costs 3x
  its forward pass (backward ~2x forward); N GPUs divide every model stage by N (DDP for training, shards
  for encoding and scoring). BM25 and FAISS search stay on the CPU at this machine's rates.

    .venv/bin/python -m bench.msmarco_plan --rates runs/scifact/plan.json --scale runs/scale-1m \\
        --search-ms 1.0
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from pipelines.defaults import DistillDefaults, RerankDefaults, RerankerDefaults, RetrieverDefaults
from pipelines.estimate import BM25_INDEX_PER_S, bm25_query_seconds

PASSAGES, TRAIN_QUERIES, DEV_QUERIES = 8_841_823, 502_939, 6_980
QUERY_TOKENS = 10  # MS MARCO queries average ~6 words
V100_PAIRS_PER_S = 1_800  # cross-encoder/ms-marco-MiniLM-L-6-v2 model card, V100
TRAIN_COST = 3.0  # forward + backward, in forward passes


def mean_tokens(corpus: Path, sample: int = 2_000) -> float:
    """Mean tokens per passage (at max length 256) over the span corpus's first `sample` lines (its spans
    are drawn independently, so the first lines are a random sample; the 0.5 GB file is not read whole)."""
    from transformers import AutoTokenizer

    from core.models import resolve_model

    with open(corpus) as lines:
        texts = [json.loads(line)["text"] for line in itertools.islice(lines, sample)]
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(None))
    return sum(len(ids) for ids in tokenizer(texts, truncation=True, max_length=256)["input_ids"]) / len(texts)


def stages(
    rates: dict, encode_per_s: float, tokens: float, search_ms: float
) -> list[tuple[str, str, float, float, float]]:
    """(stage, work, CPU-only seconds (BM25, FAISS), model seconds on this CPU, model seconds on one V100)
    at tandem's defaults. `search_ms`: one dense query over the 8.8M-passage index, batched."""
    scale = (tokens + QUERY_TOKENS) / (rates["passage_tokens"]["256"] + QUERY_TOKENS)  # steps scale by tokens
    pair_cpu = (tokens + QUERY_TOKENS) * rates["score_s_per_token"]
    seq_gpu = 1 / V100_PAIRS_PER_S
    retriever, reranker, distill, rerank = RetrieverDefaults(), RerankerDefaults(), DistillDefaults(), RerankDefaults()
    r_steps = int(TRAIN_QUERIES / retriever.batch_queries * retriever.epochs)
    r_seqs = retriever.batch_queries * (1 + retriever.group_size)  # queries count as (short) sequences
    c_steps = int(TRAIN_QUERIES / reranker.batch_queries * reranker.epochs)
    c_pairs = reranker.batch_queries * reranker.group_size
    d_steps = int(TRAIN_QUERIES / distill.batch_queries * distill.epochs)
    d_seqs = distill.batch_queries * (1 + distill.group_size)
    d_pairs = TRAIN_QUERIES * (1 + distill.num_negatives)
    pairs = DEV_QUERIES * rerank.depth * len(rerank.first_stages)
    encode_cpu, encode_gpu = PASSAGES / encode_per_s, PASSAGES * seq_gpu
    step_cpu = rates["retriever_step_s"] * scale / r_seqs  # per sequence of a bi-encoder step
    return [
        ("bm25", f"index {PASSAGES:,} passages, search {DEV_QUERIES:,} dev queries",
         PASSAGES / BM25_INDEX_PER_S + DEV_QUERIES * bm25_query_seconds(1000), 0.0, 0.0),
        ("dense-zeroshot", f"encode {PASSAGES:,} passages", 0.0, encode_cpu, encode_gpu),
        ("retriever", f"BM25 negatives for {TRAIN_QUERIES:,} queries; {r_steps:,} steps of {r_seqs} sequences",
         TRAIN_QUERIES * bm25_query_seconds(retriever.negatives_depth), r_steps * r_seqs * step_cpu,
         r_steps * r_seqs * TRAIN_COST * seq_gpu),
        ("index", f"encode {PASSAGES:,} passages", 0.0, encode_cpu, encode_gpu),
        ("mining", f"{TRAIN_QUERIES:,} queries, BM25 + dense at depth 100",
         TRAIN_QUERIES * (bm25_query_seconds(100) + search_ms / 1000), 0.0, 0.0),
        ("reranker", f"{c_steps:,} steps of {c_pairs} pairs", 0.0, c_steps * rates["reranker_step_s"] * scale,
         c_steps * c_pairs * TRAIN_COST * seq_gpu),
        ("distill", f"score {d_pairs:,} pairs; {d_steps:,} steps of {d_seqs} sequences; encode {PASSAGES:,}",
         0.0, d_pairs * pair_cpu + d_steps * d_seqs * step_cpu + encode_cpu,
         (d_pairs + d_steps * d_seqs * TRAIN_COST) * seq_gpu + encode_gpu),
        ("rerank", f"{pairs:,} pairs (dev, top {rerank.depth} of {' and '.join(rerank.first_stages)})",
         0.0, pairs * pair_cpu, pairs * seq_gpu),
    ]  # fmt: skip


def hours(seconds: float) -> str:
    return f"{seconds / 3600:,.1f} h" if seconds >= 360 else f"{seconds / 60:.0f} min"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=Path, required=True, help="a finished `tandem run`'s plan.json")
    parser.add_argument("--scale", type=Path, required=True, help="bench.scale's --out (the int8 encode rate)")
    parser.add_argument(
        "--search-ms",
        type=float,
        required=True,
        help="ms per batched query of --factory auto at its default nprobe over the 1M index "
        "(bench.scale's sweep); scaled by 8.8 (IVF lists grow with the corpus at 4096 lists)",
    )
    parser.add_argument("--encode-rate", type=float,
                        help="int8 passages/s instead of encode.json's overall rate (e.g. that of the shards that "
                        "ran alone, when others shared the cores)")  # fmt: skip
    parser.add_argument("--gpus", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    rates = json.loads(args.rates.read_text())["rates"]
    meta = json.loads((args.scale / "index" / "meta.json").read_text())
    figures = json.loads((args.scale / "encode.json").read_text())
    encode_per_s = args.encode_rate or figures["passages"] / figures["seconds"]
    tokens = mean_tokens(Path(meta["corpus_path"]))
    print(f"this CPU: {meta['precision']} encoding {encode_per_s:.1f} passages/s ({tokens:.1f} tokens each); "
          f"training steps from {args.rates}, scaled by tokens")  # fmt: skip
    gpu_heads = " | ".join(f"{n} x V100 (derived)" for n in args.gpus)
    print(f"\n| stage | work | this CPU, 2 cores (measured rates) | {gpu_heads} |")
    print("|---|---|---|" + "---|" * len(args.gpus))
    totals = [0.0] * (1 + len(args.gpus))
    search_ms = args.search_ms * PASSAGES / meta["count"]
    for stage, work, cpu_only, model_cpu, model_gpu in stages(rates, encode_per_s, tokens, search_ms):
        row = [cpu_only + model_cpu] + [cpu_only + model_gpu / n for n in args.gpus]
        totals = [t + v for t, v in zip(totals, row, strict=True)]
        print(f"| {stage} | {work} | " + " | ".join(hours(v) for v in row) + " |")
    print("| total | | " + " | ".join(f"**{hours(t)}**" for t in totals) + " |")


if __name__ == "__main__":
    main()
