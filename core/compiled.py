"""Compiled bf16 inference on the CPU (`--precision bf16-compiled`).

`torch.compile` (inductor) with freezing turns a bf16 forward pass into generated C++ kernels: the weights
become constants pre-packed for oneDNN's AMX/AVX-512 matrix multiplies, and layer norm, GELU, softmax and
the elementwise ops around them are fused, so eager PyTorch's per-operator dispatch and memory traffic
go. Shapes are dynamic, so one compilation serves every batch size and length of a length-sorted job.
Compiling costs tens of seconds once per process and model, which is why `auto` compiles only large jobs
(`core.precision.bulk_encode_precision`; the measurements: docs/log.md, "compiled bf16")."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

import torch
from transformers import BatchEncoding

from core.errors import TandemError


def compile_available() -> bool:
    """Whether inductor can build CPU kernels here: it compiles generated C++ with `$CXX` or g++/clang++."""
    compilers = [os.environ.get("CXX"), "g++", "clang++"]
    return hasattr(torch, "compile") and any(name and shutil.which(name) for name in compilers)


def require_compiler(device: torch.device) -> None:
    if device.type != "cpu":
        raise TandemError(f"--precision bf16-compiled is for the CPU, not {device}: use bf16 there")
    if not compile_available():
        raise TandemError(
            "--precision bf16-compiled needs a C++ compiler for torch.compile (set $CXX or install g++); "
            "use --precision bf16 without one"
        )


def compiled_forward(model: torch.nn.Module, output: Callable[[object], torch.Tensor]) -> Callable:
    """`model`'s forward pass (an eval-mode bf16 copy; `output` picks the tensor from its result) compiled
    with frozen weights. A batch of one runs eagerly: torch.compile specialises size-1 dimensions, and that
    one batch (a job's last, or a single query) would otherwise cost a second compilation."""
    import torch._inductor.config as inductor_config  # here: importing inductor costs every command a second

    compiled = torch.compile(model, dynamic=True)

    def forward(batch: BatchEncoding) -> torch.Tensor:
        if batch["input_ids"].shape[0] == 1:
            return output(model(**batch))
        with inductor_config.patch(freezing=True):  # compile's own `options` left it off: 1.2x instead of 1.3x
            return output(compiled(**batch))

    return forward


def bf16_weights_forward(
    cache: dict,
    key: object,
    module: torch.nn.Module,
    precision: str,
    device: torch.device,
    output: Callable[[object], torch.Tensor],
    adapt: Callable[[torch.nn.Module], None] | None = None,
) -> Callable | None:
    """The one fast-inference path both models share. For a `precision` that runs on a bf16 copy of the
    weights (`casts_weights`: bf16 on a CPU, bf16-compiled): the forward pass of a bf16 copy of `module`,
    made once and kept under `key` in `cache` (compiled for bf16-compiled; `adapt` adjusts the copy, e.g. a
    float32 head). None when the model itself runs under autocast. `output` picks the tensor from the
    model's result."""
    from core.precision import bf16_copy, casts_weights, compiles

    if compiles(precision):
        require_compiler(device)
    if not casts_weights(precision, device):
        return None
    full_key = (key, "bf16-compiled" if compiles(precision) else "bf16")
    if full_key not in cache:
        model = bf16_copy(module)
        if adapt is not None:
            adapt(model)
        if compiles(precision):
            cache[full_key] = compiled_forward(model, output)
        else:
            cache[full_key] = lambda batch: output(model(**batch))
    return cache[full_key]
