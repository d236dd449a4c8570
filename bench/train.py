"""Cross-encoder training throughput: tandem's N+1 NLL step vs the equivalent sentence-transformers step
(its CrossEncoder with MultipleNegativesRankingLoss, hard negatives as columns, no in-batch negatives,
identity activation, scale 1: the same softmax cross-entropy over 1 positive + N negatives).
Same start model, batch layout (B groups x N+1), max length, optimiser, threads and batches.

    .venv/bin/python -m bench.train --groups runs/scifact/groups-bm25.jsonl --dataset scifact --steps 10
    .venv/bin/python -m bench.train --groups GROUPS --peer-dtype same     # peer trains with the same autocast
    .venv/bin/python -m bench.train --groups GROUPS --group-size 11 --compile  # also a torch.compile'd step

It also prints the padding share of the timed batches: how much of what the step forwards is padding
(every pair padded to the batch's longest), and how much would remain if the pairs were forwarded in
length-sorted chunks of `--group-size` (what length-bucketed training could save at most).
"""

from __future__ import annotations

import argparse
import time

import torch
from sentence_transformers.cross_encoder import CrossEncoder as StCrossEncoder
from sentence_transformers.cross_encoder.losses import MultipleNegativesRankingLoss

from bench.common import add_dtype_args, dtype_of, resolved_dtypes, set_threads
from core.data.groups import epoch_batches, read_groups
from core.data.sources import open_dataset
from core.models import resolve_model
from core.precision import autocast
from core.training.losses import ListwiseNLLLoss
from rerank.model import CrossEncoder


class HardNegativesOnly(MultipleNegativesRankingLoss):
    """No in-batch negatives (sentence-transformers refuses num_negatives=0): the loss is then the
    softmax cross-entropy over each query's positive and hard-negative columns."""

    def get_in_batch_negatives(self, anchors, candidates):
        return iter(())


def time_steps(step, batches, warmup: int) -> float:
    for batch in batches[:warmup]:
        step(batch)
    started = time.perf_counter()
    for batch in batches[warmup:]:
        step(batch)
    return time.perf_counter() - started


def batch_pairs(batch) -> tuple[list[str], list[str]]:
    """A training batch's (queries, passages), one entry per pair, group after group."""
    return [sample.query for sample in batch for _ in sample.texts], [t for sample in batch for t in sample.texts]


def print_padding(model: CrossEncoder, batches: list, chunk: int) -> None:
    """Real tokens over forwarded tokens, padded to each batch's longest pair and in sorted chunks."""
    real = padded = chunked = 0
    for batch in batches:
        lengths = sorted(model.tokenize(*batch_pairs(batch))["attention_mask"].sum(dim=1).tolist())
        real += sum(lengths)
        padded += len(lengths) * lengths[-1]
        chunked += sum(max(lengths[i : i + chunk]) * len(lengths[i : i + chunk]) for i in range(0, len(lengths), chunk))
    print(
        f"padding: {1 - real / padded:.1%} of the tokens forwarded; {1 - real / chunked:.1%} in length-sorted chunks "
        f"of {chunk} pairs (at most {1 - chunked / padded:.1%} of the step's tokens saved)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", required=True)
    parser.add_argument("--dataset", default="scifact", help="dataset whose corpus the groups refer to")
    parser.add_argument("--model")
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--batch-queries", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--compile", action="store_true", help="also time the step with the model under torch.compile(dynamic=True)"
    )
    add_dtype_args(parser)
    args = parser.parse_args()
    our_dtype, peer_dtype = resolved_dtypes(args)
    device = torch.device(args.device)
    set_threads(args.threads)
    path = resolve_model(args.model)
    groups = read_groups(args.groups, open_dataset(args.dataset).corpus)
    batches = list(epoch_batches(groups, args.group_size, args.batch_queries, 0, 0))[: args.warmup + args.steps]
    pairs = args.steps * args.batch_queries * args.group_size
    nll = ListwiseNLLLoss()

    def tandem_step(model: CrossEncoder, optimizer: torch.optim.Optimizer, forward=None):
        forward = forward or model

        def step(batch):
            with autocast(our_dtype, device):
                loss = nll(forward(model.tokenize(*batch_pairs(batch))).view(len(batch), -1))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return step

    results = {}
    for label, dropout in (
        ("tandem (attention dropout 0, its default)", 0.0),
        ("tandem (attention dropout 0.1, as the model ships)", None),
    ):
        torch.manual_seed(0)
        model = CrossEncoder.from_pretrained(path, max_length=args.max_length, attention_dropout=dropout)
        model = model.to(device).train()
        seconds = time_steps(tandem_step(model, torch.optim.AdamW(model.parameters(), lr=2e-5)), batches, args.warmup)
        results[label] = pairs / seconds
    if args.compile:
        torch.manual_seed(0)
        model = CrossEncoder.from_pretrained(path, max_length=args.max_length, attention_dropout=0.0).to(device).train()
        compiled = torch.compile(model.model, dynamic=True)
        step = tandem_step(
            model, torch.optim.AdamW(model.parameters(), lr=2e-5), lambda batch: compiled(**batch).logits
        )
        results["tandem, torch.compile(dynamic=True) (compiling in the warm-up steps)"] = pairs / time_steps(
            step, batches, args.warmup
        )
    print_padding(model, batches[args.warmup :], args.group_size)

    torch.manual_seed(0)
    st = StCrossEncoder(path, num_labels=1, max_length=args.max_length, device=args.device)
    st.model.train()
    loss = HardNegativesOnly(st, num_negatives=None, scale=1.0, activation_fn=torch.nn.Identity())
    optimizer = torch.optim.AdamW(st.model.parameters(), lr=2e-5)

    def st_step(batch):
        columns = [[s.query for s in batch]] + [[s.texts[j] for s in batch] for j in range(args.group_size)]
        with torch.autocast(device.type, dtype=dtype_of(peer_dtype), enabled=dtype_of(peer_dtype) is not None):
            value = loss(columns, torch.zeros(len(batch)))
        value.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    results["sentence-transformers"] = pairs / time_steps(st_step, batches, args.warmup)
    print(
        f"model={path} tandem dtype={our_dtype} sentence-transformers dtype={peer_dtype} threads={args.threads} max_length={args.max_length} batch={args.batch_queries}x{args.group_size} steps={args.steps}"
    )
    for label, rate in results.items():
        print(f"{label}: {rate:.1f} pairs/s")
    base = results["sentence-transformers"]
    rates = list(results.values())  # tandem at dropout 0, at 0.1, compiled (with --compile), the peer
    compiled_note = f"; compiled step: {rates[2] / rates[0]:.2f}x the eager one" if args.compile else ""
    print(
        f"RESULT train: tandem ({our_dtype}) / sentence-transformers ({peer_dtype}) = {rates[0] / base:.2f}x "
        f"(same dropout: {rates[1] / base:.2f}x{compiled_note})"
    )


if __name__ == "__main__":
    main()
