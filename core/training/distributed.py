"""Running under torchrun: joining the process group, and gathering embeddings across processes so
in-batch negatives are shared by every GPU."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from core.parts import torchrun_local_rank, torchrun_world


@dataclass
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup_distributed(device: str | None = None) -> DistributedContext:
    """Join the process group torchrun describes (WORLD_SIZE > 1), or run alone.
    NCCL on CUDA, gloo on CPU."""
    rank, world_size = torchrun_world()
    local_rank = torchrun_local_rank()
    use_cuda = torch.cuda.is_available() if device in (None, "auto") else device.startswith("cuda")
    target = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(target)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return DistributedContext(rank, world_size, local_rank, target)


def gather_with_grad(tensor: Tensor) -> Tensor:
    """Concatenate `tensor` from every process along dim 0, keeping the gradient for the local slice.

    Every process then computes the loss over the global batch; scaling that loss by the world size
    makes DDP's gradient average equal to the single-process gradient (as in DPR and Tevatron)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    gathered = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, tensor.detach().contiguous())
    gathered[dist.get_rank()] = tensor
    return torch.cat(gathered, dim=0)


def gather_objects(items: list, world_size: int = 1) -> list:
    """Concatenate a list of picklable items from every process, in rank order (the order
    `gather_with_grad` concatenates the matching tensors in)."""
    if world_size == 1 or not (dist.is_available() and dist.is_initialized()):
        return items
    gathered: list[list] = [[] for _ in range(dist.get_world_size())]
    dist.all_gather_object(gathered, items)
    return [item for part in gathered for item in part]
