"""Passage encoding: tandem's BiEncoder.encode vs sentence-transformers' SentenceTransformer.encode,
same model, max length, batch size, threads and passages, in one process. Prints passages/s and the ratio.

    .venv/bin/python -m bench.encode                       # SciFact (2,000 passages) and synthetic (2,000)
    .venv/bin/python -m bench.encode --peer-dtype same            # both in the same dtype
    .venv/bin/python -m bench.encode --device cuda --dtype bf16 --count 20000
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

from bench.common import (
    add_inference_args,
    best_of,
    dtype_of,
    resolved_dtypes,
    scifact_passages,
    set_threads,
    synthetic_passages,
)
from core.models import resolve_model
from retrieval.encoder import BiEncoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="default: all-MiniLM-L6-v2 (offline copy)")
    parser.add_argument("--count", type=int, default=2000, help="passages per corpus (default: 2000)")
    add_inference_args(parser)
    args = parser.parse_args()
    set_threads(args.threads)
    path = resolve_model(args.model)
    precision = args.dtype  # tandem names the same settings as the benchmark
    our_dtype, peer_dtype = resolved_dtypes(args)

    ours = BiEncoder.from_pretrained(path).to_device(args.device)
    ours.config.passage_max_length = args.max_length
    theirs = SentenceTransformer(path, device=args.device)
    theirs.max_seq_length = args.max_length
    if dtype_of(peer_dtype) is not None:
        theirs = theirs.to(dtype_of(peer_dtype))

    print(
        f"model={path} device={args.device} tandem dtype={our_dtype} sentence-transformers dtype={peer_dtype} threads={args.threads} max_length={args.max_length} batch={args.batch_size}"
    )
    ratios = []
    for name, passages in (("scifact", scifact_passages(args.count)), ("synthetic", synthetic_passages(args.count))):
        a = ours.encode(passages, "passage", args.batch_size, precision, show_progress=False)
        b = theirs.encode(passages, batch_size=args.batch_size, convert_to_numpy=True)
        agreement = float(np.mean(np.sum(a * b.astype(np.float32), axis=1)))
        with torch.inference_mode():
            t_ours = best_of(
                args.repeats,
                lambda p=passages: ours.encode(p, "passage", args.batch_size, precision, show_progress=False),
            )
            t_theirs = best_of(args.repeats, lambda p=passages: theirs.encode(p, batch_size=args.batch_size))
        ratio = t_theirs / t_ours
        ratios.append(ratio)
        print(
            f"{name}: tandem {len(passages) / t_ours:.1f} passages/s, sentence-transformers {len(passages) / t_theirs:.1f} passages/s, ratio {ratio:.2f}x (mean cosine between outputs {agreement:.4f})"
        )
    print(
        f"RESULT encode: tandem ({our_dtype}) / sentence-transformers ({peer_dtype}) = {min(ratios):.2f}x (worst corpus)"
    )


if __name__ == "__main__":
    main()
