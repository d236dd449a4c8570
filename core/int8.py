"""int8 inference on the CPU through OpenVINO (`--precision int8`, the optional extra `int8`).

A transformer is converted to OpenVINO once per process and statically quantised with NNCF: weights
and activations in int8, activation ranges measured on calibration inputs drawn from the job's own
texts (as sentence-transformers' `export_static_quantized_openvino_model` does with a fixed dataset).
It is the fastest CPU path for encoding and scoring, at a small cost in quality (docs/log.md, "Precision
measurements"). Training never runs in int8."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from transformers import BatchEncoding
from transformers.utils import logging as transformers_logging

from core.errors import TandemError

CALIBRATION_SIZE = 128
"""Inputs whose activations set the int8 ranges: 128 took ~30 s on one core and gave the figures above."""


def int8_available() -> bool:
    """Whether the `int8` extra (OpenVINO and NNCF) is installed, without importing it."""
    return all(importlib.util.find_spec(name) is not None for name in ("openvino", "nncf"))


def require_openvino() -> None:
    try:
        import nncf  # noqa: F401
        import openvino  # noqa: F401
    except ImportError:
        raise TandemError(
            "--precision int8 needs OpenVINO and NNCF, an optional extra: `bash install.sh cpu,test,int8` "
            "or `pip install 'tandem[int8]'` (or use --precision bf16 / fp32)"
        ) from None


def require_cpu(device: torch.device) -> None:
    if device.type != "cpu":
        raise TandemError(f"--precision int8 runs on the CPU (OpenVINO), not on {device}: use bf16 there")


def calibration_sample(lengths: Sequence[int], size: int = CALIBRATION_SIZE) -> list[int]:
    """Indices of `size` inputs evenly spread over the length order, so short and long inputs both set
    the ranges; deterministic for the same inputs."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    if len(order) <= size:
        return order
    step = len(order) / size
    return [order[int(k * step)] for k in range(size)]


SHAPE_CACHE_ENTRIES = 200
"""OpenVINO keeps compiled kernels per input shape (5,000 entries by default); length-sorted batches bring
a new shape with nearly every batch, so at the default the encoder's heap keeps growing over a large
corpus. 200 entries keep it level at the same speed; no cache keeps it level too but runs slower
(docs/log.md, the int8 encoding memory measurements)."""


class Int8Model:
    """`model`'s forward pass (its first output: hidden states or logits) as an OpenVINO int8 model,
    compiled for this process's torch thread count. Call it with a tokenised batch."""

    def __init__(self, model: torch.nn.Module, calibration: Sequence[BatchEncoding], example: BatchEncoding) -> None:
        """`example`: a padded batch (inputs of different lengths) to trace with; an unpadded one would let
        transformers drop the attention mask from the traced graph, and padded batches would then attend
        to their padding."""
        require_openvino()
        import nncf
        import openvino

        nncf.set_log_level(logging.WARNING)
        if not calibration:
            raise ValueError("int8 quantisation needs at least one calibration input")
        was_training = model.training
        model.eval()
        with torch.no_grad(), _quiet():
            converted = openvino.convert_model(model, example_input=dict(example))
        model.train(was_training)
        with _quiet():
            quantised = nncf.quantize(
                converted,
                nncf.Dataset([_numpy(batch) for batch in calibration]),
                model_type=nncf.ModelType.TRANSFORMER,
                subset_size=len(calibration),
            )
        self._inputs = [port.get_any_name() for port in converted.inputs]
        self._compiled = openvino.Core().compile_model(
            quantised,
            "CPU",
            {
                "INFERENCE_NUM_THREADS": str(torch.get_num_threads()),
                "PERFORMANCE_HINT": "LATENCY",
                "CPU_RUNTIME_CACHE_CAPACITY": str(SHAPE_CACHE_ENTRIES),
            },
        )

    def __call__(self, batch: BatchEncoding) -> torch.Tensor:
        inputs = {name: value for name, value in _numpy(batch).items() if name in self._inputs}
        return torch.from_numpy(np.asarray(self._compiled(inputs)[0]))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Export and quantisation without their chatter in a run's log: NNCF's progress bars (rich, on
    stdout), transformers' log lines and deprecation warnings met while tracing, the tracer's shape-check
    warnings (constants by design). The caller's own progress bar covers the job."""
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        transformers_logging.set_verbosity(verbosity)


def _numpy(batch: BatchEncoding | dict) -> dict[str, np.ndarray]:
    return {name: value.cpu().numpy() for name, value in batch.items()}
