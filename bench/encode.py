"""Passage encoding: tandem's BiEncoder.encode against sentence-transformers at its best (torch fp32 and
bf16, ONNX Runtime fp32 and int8, OpenVINO fp32, bf16 and int8), same model, passages, max length, batch
size and threads. Prints each row's passages/s, its agreement with tandem's fp32 embeddings and, with
`--quality`, its nDCG@10 on SciFact test (whole corpus, exact search); then a roofline line and

    RESULT encode: tandem (<setting>) / fastest peer (<backend>) = X.XXx

where only rows at most 0.005 nDCG@10 below tandem's fp32 figure count (every row when `--quality` is off).

    bash bench/install_peers.sh                                  # once: the peers' environment
    .venv/bin/python -m bench.encode --count 500 --threads 1 --quality
    .venv/bin/python -m bench.encode --peers                     # tandem's rows only
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bench.common import (
    add_inference_args,
    add_peer_args,
    dense_ndcg,
    encoder_gflop,
    matmul_peak_gflops,
    roofline,
    run_peers,
    scifact_passages,
    scifact_test,
    set_threads,
)
from core.models import resolve_model
from pipelines.warmup import fastest_seconds
from retrieval.encoder import BiEncoder

TANDEM_SETTINGS = ("fp32", "bf16", "bf16-compiled", "int8")
PEAK_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "int8": torch.int8}
QUALITY_TOLERANCE = 0.005
AGREEMENT_FOR_EQUAL = 0.9999


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="default: all-MiniLM-L6-v2 (offline copy)")
    parser.add_argument("--count", type=int, default=500, help="SciFact passages timed (default: 500)")
    parser.add_argument("--settings", nargs="+", default=list(TANDEM_SETTINGS), help="tandem precisions to time")
    parser.add_argument("--quality", action="store_true", help="also nDCG@10 on SciFact test for every row")
    add_inference_args(parser, dtypes=False)
    add_peer_args(parser)
    parser.set_defaults(threads=1)
    args = parser.parse_args()
    set_threads(args.threads)
    path = resolve_model(args.model)
    passages = scifact_passages(args.count)
    quality = scifact_test() if args.quality else None

    ours = BiEncoder.from_pretrained(path).to_device(args.device)
    ours.config.passage_max_length = args.max_length
    rows: dict[str, dict] = {}
    quality_inputs = quality[1] + [text for _, text in quality[2]] if quality else None
    for setting in args.settings:
        if setting == "int8":  # quantised before timing, as the peers' exports are
            started = time.perf_counter()
            ours.prepare_int8("passage", passages)
            print(
                f"tandem int8: quantised in {time.perf_counter() - started:.1f} s (once per model and job)", flush=True
            )
        if setting == "bf16-compiled":  # compiled before timing (the first call), as int8 is quantised
            started = time.perf_counter()
            ours.encode(passages, "passage", args.batch_size, setting, show_progress=False)
            print(f"tandem bf16-compiled: first call (compiling) {time.perf_counter() - started:.1f} s", flush=True)

        def encode(texts: list[str], precision: str = setting) -> np.ndarray:
            return ours.encode(texts, "passage", args.batch_size, precision, show_progress=False)

        seconds = fastest_seconds(lambda e=encode: e(passages), args.repeats)
        row = rows[f"tandem {setting}"] = {"rate": len(passages) / seconds, "outputs": encode(passages)}
        if quality_inputs:
            row["quality_outputs"] = encode(quality_inputs)
        print(f"tandem {setting}: {row['rate']:.1f} passages/s", flush=True)
    inputs = {"texts": passages}
    for backend, row in run_peers("encode", path, inputs, args, quality_inputs).items():
        rows[f"sentence-transformers {backend}"] = row

    reference = rows[f"tandem {args.settings[0]}"]["outputs"]
    print(
        f"\nmodel={path} threads={args.threads} max_length={args.max_length} batch={args.batch_size} passages={len(passages)} (SciFact)"
    )
    print(f"| system | passages/s | mean cosine vs tandem {args.settings[0]} | nDCG@10 SciFact test |")
    print("|---|---|---|---|")
    for name, row in rows.items():
        cosine = row["agreement"] = float(np.mean(np.sum(unit(row["outputs"]) * unit(reference), axis=1)))
        if row.get("quality_outputs") is not None:
            n = len(quality[0])
            vectors = row["quality_outputs"]
            row["ndcg"] = dense_ndcg(vectors[:n], vectors[n:], quality[0], [q for q, _ in quality[2]], quality[3])
        ndcg = f"{row['ndcg']:.4f}" if "ndcg" in row else "not measured"
        print(f"| {name} | {row['rate']:.1f} | {cosine:.5f} | {ndcg} |")
    report(rows, args, ours, passages, "encode", "passages")


def equal_quality(row: dict, reference_ndcg: float) -> bool:
    """No more than QUALITY_TOLERANCE nDCG@10 below tandem fp32 (a row that scores higher is not worse);
    a row whose nDCG was not measured counts only when its outputs agree with tandem fp32's to 0.9999
    (cosine or score correlation)."""
    if "ndcg" in row:
        return row["ndcg"] >= reference_ndcg - QUALITY_TOLERANCE
    return row["agreement"] >= AGREEMENT_FOR_EQUAL


def unit(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def report(
    rows: dict[str, dict], args, model, texts, task: str, unit_name: str, lengths: list[int] | None = None
) -> None:
    """The roofline line and the RESULT line, counting only rows of equal quality when it was measured."""
    tokenizer = model.tokenizer
    if lengths is None:
        lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=args.max_length)["input_ids"]]
    config = (model.passage_model if hasattr(model, "passage_model") else model.model).config
    gflop_per_item = encoder_gflop(config, lengths) / len(lengths)
    peaks = {name: matmul_peak_gflops(dtype) for name, dtype in PEAK_DTYPES.items()}
    print(
        f"\nroofline: {gflop_per_item:.2f} GFLOP per {unit_name[:-1]} (matrix multiplies, mean over these inputs); "
        f"a 2048x2048 matmul on {args.threads} thread(s) reaches "
        + ", ".join(f"{peak:.0f} GFLOP/s {name}" for name, peak in peaks.items())
    )
    for name, row in rows.items():
        peak = next((peaks[d] for d in ("int8", "bf16") if d in name), peaks["fp32"])
        print(f"  {name}: {roofline(gflop_per_item, row['rate'], peak)}")
    fp32 = rows.get("tandem fp32", {}).get("ndcg")
    eligible = {n: r for n, r in rows.items() if fp32 is None or equal_quality(r, fp32)}
    ours = {n: r for n, r in eligible.items() if n.startswith("tandem")}
    peers = {n: r for n, r in eligible.items() if not n.startswith("tandem")}
    if not ours or not peers:
        print(f"RESULT {task}: no tandem row and peer row of equal quality to compare")
        return
    best_ours = max(ours, key=lambda n: ours[n]["rate"])
    best_peer = max(peers, key=lambda n: peers[n]["rate"])
    basis = (
        f"rows at most {QUALITY_TOLERANCE} nDCG@10 below tandem fp32" if fp32 is not None else "quality not measured"
    )
    print(
        f"RESULT {task}: tandem ({best_ours.removeprefix('tandem ')}) / fastest peer "
        f"({best_peer.removeprefix('sentence-transformers ')}) = {ours[best_ours]['rate'] / peers[best_peer]['rate']:.2f}x ({basis})"
    )


if __name__ == "__main__":
    main()
