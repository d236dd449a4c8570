"""Where inference time goes: torch.profiler over tandem's passage encoding (or cross-encoder
scoring) on SciFact passages, plus the share spent in the tokenizer. Prints the top operators by
self CPU time and a final RESULT line with the matmul, attention and tokenizer shares.

    .venv/bin/python -m bench.profile --count 256
    .venv/bin/python -m bench.profile --count 256 --target rerank
"""

from __future__ import annotations

import argparse
import time

from torch.profiler import ProfilerActivity, profile

from bench.common import add_inference_args, scifact_passages, set_threads
from core.models import resolve_model
from rerank.model import CrossEncoder
from retrieval.encoder import BiEncoder

MATMUL_OPS = ("aten::addmm", "aten::mm", "aten::bmm", "aten::matmul", "aten::linear")
ATTENTION_OPS = ("aten::_scaled_dot_product", "aten::scaled_dot_product", "aten::_softmax", "aten::softmax")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="default: all-MiniLM-L6-v2 (offline copy)")
    parser.add_argument("--count", type=int, default=256, help="SciFact passages to run (default: 256)")
    parser.add_argument("--target", choices=["encode", "rerank"], default="encode")
    parser.add_argument("--top", type=int, default=15, help="operators to list (default: 15)")
    add_inference_args(parser)
    args = parser.parse_args()
    set_threads(args.threads)
    path = resolve_model(args.model)
    passages = scifact_passages(args.count)
    queries = ["which treatment reduces the risk of heart attack in older adults"] * len(passages)

    if args.target == "encode":
        model = BiEncoder.from_pretrained(path).to_device(args.device)
        model.config.passage_max_length = args.max_length
        tokenizer, max_length = model.tokenizer, args.max_length

        def run() -> None:
            model.encode(passages, "passage", args.batch_size, args.dtype, show_progress=False)

        def tokenize() -> None:
            tokenizer(passages, truncation=True, max_length=max_length)
    else:
        model = CrossEncoder.from_pretrained(path, max_length=args.max_length).to_device(args.device)

        def run() -> None:
            model.score(queries, passages, args.batch_size, args.dtype, show_progress=False)

        def tokenize() -> None:
            model.tokenizer(queries, passages, truncation="only_second", max_length=args.max_length)

    run()  # warm-up
    started = time.perf_counter()
    tokenize()
    tokenize_seconds = time.perf_counter() - started
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        started = time.perf_counter()
        run()
        total = time.perf_counter() - started
    events = prof.key_averages()
    print(events.table(sort_by="self_cpu_time_total", row_limit=args.top))
    self_total = sum(e.self_cpu_time_total for e in events) or 1.0

    def share(names: tuple[str, ...]) -> float:
        return sum(e.self_cpu_time_total for e in events if e.key.startswith(names)) / self_total

    print(
        f"RESULT profile {args.target}: {len(passages) / total:.1f} items/s under the profiler; "
        f"matmul {share(MATMUL_OPS):.0%}, attention {share(ATTENTION_OPS):.0%} of operator time; "
        f"tokenizer {tokenize_seconds / total:.1%} of wall time"
    )


if __name__ == "__main__":
    main()
