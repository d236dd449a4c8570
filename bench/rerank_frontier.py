"""Reranking quality against latency as a frontier, not one point: tandem's knobs (depth, max length, and a
two-pass cascade in which the same model at a short max length drops the clear non-candidates before the
full-length pass) against sentence-transformers' CrossEncoder over its own (depth, max length, backend),
with the same trained cross-encoder, the same first stage (the run's hybrid) and the same threads.

    .venv/bin/python -m bench.rerank_frontier --run-dir runs/sf-final --dataset scifact
    .venv/bin/python -m bench.rerank_frontier --run-dir runs/nf-final --dataset ../shared/data/nfcorpus

Each (engine, max length) scores the dev and test queries' top `--depth` once; a shallower depth or a
cascade is read from those scores (`rerank.rerank.reranked_at_depth`, which is what reranking at that depth
returns). Latency is ms per query = pairs scored per query / pairs per second, the rate timed on the same
`--pairs` sample of those pairs for every engine. Choose on dev, report test: Z is the lower of the two
sides' best dev nDCG@10 less 0.005, each side's setting is its fastest with dev nDCG@10 >= Z, and the test
nDCG@10 of both is printed beside it (paired t-test between them). The last line:

    RESULT rerank: tandem X ms/query vs fastest peer Y ms/query at nDCG@10 >= Z = R.RRx

The peers run in `.venv-peers` (`bash bench/install_peers.sh`), int8 backends by default (the fastest;
fp32 and bf16 peers are slower per pair at the same depth, `bench.rerank`).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common import add_peer_args, run_peers, set_threads
from core.data.runs import Run, read_run
from core.data.sources import open_dataset
from pipelines.defaults import DEFAULTS
from pipelines.evaluation.metrics import Evaluation, evaluate
from pipelines.evaluation.report import paired_p_value
from pipelines.pipeline import CASCADE_MAX_LENGTH
from pipelines.stages.context import RunContext
from pipelines.warmup import fastest_seconds
from rerank.model import CrossEncoder
from rerank.rerank import reranked_at_depth, top_pairs

SPLITS = ("dev", "test")


@dataclass
class Setting:
    """One point of a side's frontier: its name, ms per query and nDCG@10 (and per-query figures) per split."""

    name: str
    ms_per_query: float
    evaluations: dict[str, Evaluation]

    def ndcg(self, split: str) -> float:
        return self.evaluations[split].aggregate["nDCG@10"]


def scored_runs(first: dict[str, Run], scores: np.ndarray, pairs: dict[tuple[str, str], int]) -> dict[str, Run]:
    """Each split's first-stage top hits with one engine's scores (the pairs numbered as `top_pairs` does)."""
    return {
        split: {
            query_id: [
                (doc_id, float(scores[pairs[query_id, doc_id]])) for doc_id, _ in hits if (query_id, doc_id) in pairs
            ]
            for query_id, hits in run.items()
        }
        for split, run in first.items()
    }


def frontier(
    prefix: str,
    first: dict[str, Run],
    scored: dict[int, dict[str, Run]],
    rates: dict[int, float],
    qrels: dict,
    depths: list[int],
    cascade: tuple[int, list[int]] | None = None,
) -> list[Setting]:
    """Every (max length, depth) of one side and, with `cascade` (its short max length, the full pass's
    depths), the cascades: the short pass reranks the top of the deepest depth, the longest max length
    rescores its top `keep`."""

    def setting(name: str, ms: float, runs: dict[str, Run]) -> Setting:
        return Setting(name, ms, {split: evaluate(runs[split], qrels[split]) for split in SPLITS})

    settings = [
        setting(
            f"{prefix} len {length} depth {depth}",
            1000 * depth / rates[length],
            {split: reranked_at_depth(first[split], scored[length][split], depth) for split in SPLITS},
        )
        for length in scored
        if cascade is None or length != cascade[0]
        for depth in depths
    ]
    if cascade:
        short, keeps = cascade
        full, deepest = max(scored), max(depths)
        for keep in keeps:
            runs = {
                split: reranked_at_depth(
                    reranked_at_depth(first[split], scored[short][split], deepest), scored[full][split], keep
                )
                for split in SPLITS
            }
            ms = 1000 * (deepest / rates[short] + keep / rates[full])
            settings.append(setting(f"{prefix} cascade len {short} depth {deepest} -> len {full} top {keep}", ms, runs))
    return settings


def fastest_at(settings: list[Setting], floor: float) -> Setting:
    """The fastest setting whose dev nDCG@10 reaches `floor`."""
    return min((s for s in settings if s.ndcg("dev") >= floor), key=lambda s: s.ms_per_query)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", type=Path, required=True, help="a finished `tandem run` (its reranker and rerank)")
    parser.add_argument("--dataset", required=True, help="the run's dataset (name or folder)")
    parser.add_argument("--model", help="cross-encoder folder (default: the run's, RUN/reranker/nll)")
    parser.add_argument("--depths", type=int, nargs="+", default=[10, 20, 30], help="depths of both sides")
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 256], help="max lengths of both sides")
    parser.add_argument(
        "--cascade-length", type=int, default=CASCADE_MAX_LENGTH, help="tandem's short first pass (0: no cascade)"
    )
    parser.add_argument(
        "--cascade-keep", type=int, nargs="+", default=[10, 15, 20], help="pairs the long pass rescores"
    )
    parser.add_argument("--pairs", type=int, default=600, help="pairs timed per engine and max length")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    add_peer_args(parser)
    parser.set_defaults(peers=["openvino-int8", "onnx-int8"], quality_peers=None)
    args = parser.parse_args()
    args.quality_peers = args.peers
    set_threads(args.threads)

    dataset = open_dataset(args.dataset)
    config = {**DEFAULTS, **json.loads((args.run_dir / "rerank" / "config.json").read_text())}
    context = RunContext(dataset, args.run_dir, config)
    qrels = {"dev": context.dev_qrels(), "test": dataset.qrels(config["split"]["test"])}
    first = {
        split: read_run(args.run_dir / "rerank" / ("" if split == "test" else split) / "hybrid.trec")
        for split in SPLITS
    }
    first = {split: {q: hits for q, hits in run.items() if q in qrels[split]} for split, run in first.items()}
    deepest = max(args.depths)
    pairs = top_pairs(first.values(), deepest)
    queries = [dataset.queries[q] for q, _ in pairs]
    passages = [dataset.corpus.passage(d) for _, d in pairs]
    sample = np.random.default_rng(0).choice(len(pairs), size=min(args.pairs, len(pairs)), replace=False)
    timed_queries, timed_passages = [queries[i] for i in sample], [passages[i] for i in sample]
    model = str(args.model or args.run_dir / "reranker" / "nll")
    print(
        f"{len(pairs)} pairs: {sum(len(r) for r in first.values())} queries' top {deepest}; {len(sample)} timed",
        flush=True,
    )

    tandem_lengths = sorted({*args.lengths, *([args.cascade_length] if args.cascade_length else [])})
    tandem_scored, tandem_rates = {}, {}
    for length in tandem_lengths:
        encoder = CrossEncoder.from_pretrained(model, max_length=length).to_device("cpu")
        scores = encoder.score(queries, passages, args.batch_size, "int8", show_progress=False)
        seconds = fastest_seconds(
            lambda e=encoder: e.score(timed_queries, timed_passages, args.batch_size, "int8", show_progress=False),
            args.repeats,
        )
        tandem_rates[length] = len(sample) / seconds
        tandem_scored[length] = scored_runs(first, scores, pairs)
        print(f"tandem int8 len {length}: {tandem_rates[length]:.1f} pairs/s", flush=True)

    peer_settings: list[Setting] = []
    for backend in args.peers:
        peer_scored, peer_rates = {}, {}
        for length in args.lengths:
            args.max_length = length
            timed = [[q, p] for q, p in zip(timed_queries, timed_passages, strict=True)]
            everything = [[q, p] for q, p in zip(queries, passages, strict=True)]
            row = run_peers("rerank", model, {"pairs": timed}, _peer_args(args, backend), everything)[backend]
            peer_rates[length] = row["rate"]
            peer_scored[length] = scored_runs(first, row["quality_outputs"].ravel(), pairs)
            print(f"sentence-transformers {backend} len {length}: {row['rate']:.1f} pairs/s", flush=True)
        peer_settings += frontier(
            f"sentence-transformers {backend}", first, peer_scored, peer_rates, qrels, args.depths
        )
    cascade = (args.cascade_length, args.cascade_keep) if args.cascade_length else None
    ours = frontier("tandem int8", first, tandem_scored, tandem_rates, qrels, args.depths, cascade)

    print("\n| system | ms/query | dev nDCG@10 | test nDCG@10 |\n|---|---|---|---|")
    for s in sorted(ours + peer_settings, key=lambda s: s.ms_per_query):
        print(f"| {s.name} | {s.ms_per_query:.1f} | {s.ndcg('dev'):.4f} | {s.ndcg('test'):.4f} |")
    floor = min(max(s.ndcg("dev") for s in ours), max(s.ndcg("dev") for s in peer_settings)) - 0.005
    best_ours, best_peer = fastest_at(ours, floor), fastest_at(peer_settings, floor)
    p_value = paired_p_value(best_ours.evaluations["test"], best_peer.evaluations["test"])
    print(
        f"\nchosen on dev (nDCG@10 >= {floor:.4f}): {best_ours.name} (test {best_ours.ndcg('test'):.4f}) and "
        f"{best_peer.name} (test {best_peer.ndcg('test'):.4f}); paired p on test {p_value}"
    )
    print(
        f"RESULT rerank: tandem {best_ours.ms_per_query:.1f} ms/query vs fastest peer {best_peer.ms_per_query:.1f} "
        f"ms/query at nDCG@10 >= {floor:.4f} = {best_peer.ms_per_query / best_ours.ms_per_query:.2f}x"
    )


def _peer_args(args: argparse.Namespace, backend: str) -> argparse.Namespace:
    """`args` for `run_peers` with one backend, timed and scored (each backend in its own process)."""
    return argparse.Namespace(**{**vars(args), "peers": [backend], "quality_peers": [backend]})


if __name__ == "__main__":
    main()
