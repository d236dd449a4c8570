"""Device and numeric precision for training and inference alike: which device, whether this CPU
has fast bf16 (AMX or AVX512-BF16), and the autocast context every forward pass runs under.

Inference code imports this module, never the training loop."""

from __future__ import annotations

import contextlib
import copy
import os

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
CPU_BF16_ENV = "TANDEM_CPU_BF16"
"""Set to 0 or 1 to decide what `auto` means on a CPU instead of detecting it (the same numbers on every
machine, e.g. in tests and their subprocesses)."""
INFERENCE_PRECISIONS = (*PRECISIONS, "int8", "bf16-compiled")
"""int8 (OpenVINO, `core.int8`) and bf16-compiled (torch.compile on the CPU, `core.compiled`) are for encoding
and scoring only: training runs in one of PRECISIONS."""
CPU_COMPILE_ENV = "TANDEM_CPU_COMPILE"
"""Set to 0 or 1 to decide whether `auto` compiles bulk bf16 jobs on a CPU (`bulk_encode_precision`) instead of
checking for a C++ compiler (the tests set 0; the compiled path is tested explicitly)."""
BULK_COMPILE_MIN = 20_000
"""Inputs (passages or pairs) a bulk job needs before `auto` compiles it: below it, compiling costs more
than the faster kernels save (measured on two threads with AMX: docs/log.md, "compiled bf16")."""
CPU_INT8_ENV = "TANDEM_CPU_INT8"
"""Set to 0 or 1 to decide whether `auto` scores bulk pairs in int8 on a CPU instead of checking that the
`int8` extra is installed (the tests set 0, so their numbers do not depend on the extra)."""
BULK_INT8_MIN = 2_000
"""Pairs a bulk job needs before `auto` quantises it: quantising (conversion and 128 calibration pairs)
costs tens of seconds, which the faster int8 scoring repays only over a job this large (docs/log.md,
"Precision measurements")."""


def pick_device(device: str | None = None) -> torch.device:
    """`None`/`auto`: CUDA when available, else CPU; anything else as given (`cpu`, `cuda:1`)."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with bf16 matrix instructions: AMX tiles (Intel Sapphire Rapids and later) or
    AVX512-BF16 (AMD Zen 4 and later, Intel Cooper Lake), where oneDNN's bf16 matrix multiplies beat fp32
    for encoding, scoring and training alike (docs/log.md, "Precision measurements")."""
    forced = os.environ.get(CPU_BF16_ENV)
    if forced in ("0", "1"):
        return forced == "1"
    probes = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(probe is not None and probe() for probe in probes)


def bulk_precision(precision: str, device: torch.device, inputs: int) -> str:
    """What a bulk cross-encoder job (pairs to rerank or score) runs in. `auto` becomes int8 on a CPU where
    the `int8` extra (OpenVINO, NNCF) is installed and the job has at least BULK_INT8_MIN pairs: there int8
    scored 1.75x bf16's pairs/s in a SciFact run's rerank at the same quality (dev nDCG@10 -0.0008 in the
    chosen fusion, -0.0014 alone, p 0.88; README "Precision"). Without the extra, as for encoding, see
    `bulk_encode_precision`."""
    if precision == "auto" and device.type == "cpu" and inputs >= BULK_INT8_MIN and _int8_wanted():
        return "int8"
    return bulk_encode_precision(precision, device, inputs)


def _int8_wanted() -> bool:
    """`TANDEM_CPU_INT8` when set, else whether the `int8` extra is installed."""
    forced = os.environ.get(CPU_INT8_ENV)
    if forced in ("0", "1"):
        return forced == "1"
    from core.int8 import int8_available

    return int8_available()


def bulk_encode_precision(precision: str, device: torch.device, inputs: int) -> str:
    """What a bulk encoding job (a corpus or a shard of one) runs in. `auto` becomes bf16-compiled on a CPU
    with fast bf16 where torch.compile can build kernels and the job has at least BULK_COMPILE_MIN inputs
    (1.14-1.3x eager bf16 once compiled). Encoding stays out of int8: a fine-tuned bi-encoder lost
    0.005-0.007 nDCG@10 there."""
    if precision != "auto" or device.type != "cpu" or inputs < BULK_COMPILE_MIN or not cpu_has_fast_bf16():
        return precision
    forced = os.environ.get(CPU_COMPILE_ENV)
    if forced in ("0", "1"):
        return "bf16-compiled" if forced == "1" else precision
    from core.compiled import compile_available

    return "bf16-compiled" if compile_available() else precision


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `precision` on `device`, or None for plain fp32. `auto`: bf16 on CUDA
    (fp16 where bf16 is unsupported) and on CPUs with bf16 matrix instructions; fp32 on other CPUs."""
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_fast_bf16() else None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if precision == "bf16-compiled":
        return torch.bfloat16
    if precision == "int8":
        raise ValueError("int8 is an inference precision (encoding, scoring); train in auto, bf16 or fp32")
    raise ValueError(f"unknown precision '{precision}' ({', '.join(PRECISIONS)})")


def resolved_precision(precision: str, device: torch.device) -> str:
    """What `precision` runs as on `device`: fp32, bf16, fp16 or int8 (`auto` resolved), for the records
    that must tell vectors of different precisions apart."""
    if precision == "int8":
        return "int8"
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[autocast_dtype(precision, device)]


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """`torch.autocast` for `precision` on `device`, or a no-op context for fp32."""
    dtype = autocast_dtype(precision, device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def casts_weights(precision: str, device: torch.device) -> bool:
    """Whether inference runs a bf16 copy of the weights rather than autocast: on the CPU, where autocast
    re-casts every weight on every call (19 % of a bf16 encode in bench.profile). bf16-compiled compiles
    that copy (`compiles`)."""
    return device.type == "cpu" and precision != "int8" and autocast_dtype(precision, device) == torch.bfloat16


def compiles(precision: str) -> bool:
    """Whether inference runs the bf16 copy compiled (`core.compiled`)."""
    return precision == "bf16-compiled"


def bf16_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A bf16 copy of `model` for inference (the original keeps its float32 weights for training)."""
    return copy.deepcopy(model).to(torch.bfloat16).eval()
