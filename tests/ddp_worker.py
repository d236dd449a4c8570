"""Runs in each process of the 2-process DDP test (spawned, so it must live in an importable module)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from core.data.groups import GroupSample
from retrieval.encoder import BiEncoder, BiEncoderConfig
from retrieval.train import in_batch_nll

TEMPERATURE = 0.1
CONFIG = BiEncoderConfig(pooling="mean", normalize=True, temperature=TEMPERATURE)


def global_batch() -> list[GroupSample]:
    """Four groups; the first query also judges the last group's positive relevant (an in-batch false negative)."""
    pairs = [
        ("aspirin heart attack", ["aspirin reduces heart attack risk", "fish oil shows no effect"]),
        ("vitamin d bones", ["vitamin d increases bone density", "coffee and blood pressure"]),
        ("exercise depression", ["aerobic exercise reduces depression", "sleep consolidates memory"]),
        ("lung cancer cause", ["smoking causes lung cancer", "salt raises blood pressure"]),
    ]
    judged = {"aspirin heart attack": {"aspirin reduces heart attack risk", "smoking causes lung cancer"}}
    return [GroupSample(query, texts, texts, frozenset(judged.get(query, {texts[0]}))) for query, texts in pairs]


def gradients(encoder: BiEncoder) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in encoder.named_parameters() if p.grad is not None}


def single_process(model_dir: Path) -> tuple[float, dict[str, torch.Tensor]]:
    encoder = BiEncoder.from_pretrained(model_dir, CONFIG).eval()  # eval: no dropout, so runs are comparable
    loss = in_batch_nll(encoder, encoder, global_batch(), TEMPERATURE)
    loss.backward()
    return loss.item(), gradients(encoder)


def worker(rank: int, world_size: int, model_dir: str, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        encoder = BiEncoder.from_pretrained(model_dir, CONFIG).eval()
        model = DistributedDataParallel(encoder, find_unused_parameters=True)
        share = len(global_batch()) // world_size
        local = global_batch()[rank * share : (rank + 1) * share]
        loss = in_batch_nll(model, encoder, local, TEMPERATURE, world_size)
        loss.backward()
        torch.save({"loss": loss.item(), "grads": gradients(encoder)}, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()
