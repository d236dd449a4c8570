"""sentence-transformers at its best, for the speed benchmarks: torch fp32 / bf16, ONNX Runtime fp32 / int8
(dynamic quantisation, `export_dynamic_quantized_onnx_model`) and OpenVINO fp32 / int8 (static
quantisation calibrated on the inputs' first 300 texts, as `export_static_quantized_openvino_model`
does with its default config). It runs in `.venv-peers` (`bash bench/install_peers.sh`): those backends'
exporters need a transformers release older than tandem's. `bench.encode` and `bench.rerank` start it;
it is not meant to be run by hand.

Input (`--inputs`, JSON): {"texts": [...]} for encode, {"pairs": [[query, passage], ...]} for rerank.
Optionally "quality": more inputs, run once untimed by the backends in "quality_backends" (default all),
for the caller's nDCG@10. Output (`--out`): `<backend>.npy` per backend (embeddings or scores; also
`<backend>.quality.npy`) and `rates.json` ({backend: items per second}).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

BACKENDS = ("torch-fp32", "torch-bf16", "onnx-fp32", "onnx-int8", "openvino-fp32", "openvino-bf16", "openvino-int8")
# OpenVINO runs bf16 by default on CPUs that have it; its fp32 and bf16 rows set the precision hint explicitly.
OPENVINO_PRECISION = {"fp32": "f32", "bf16": "bf16"}


def pin(threads: int) -> None:
    """Every library in this process on `threads` cores, as tandem's side is."""
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:threads]))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"


def onnx_kwargs(threads: int, file_name: str | None = None) -> dict:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    kwargs = {"session_options": options, "provider": "CPUExecutionProvider"}
    if file_name:
        kwargs["file_name"] = file_name
    return kwargs


def openvino_kwargs(threads: int, file_name: str | None = None, dtype: str = "int8") -> dict:
    config = {"INFERENCE_NUM_THREADS": str(threads), "PERFORMANCE_HINT": "LATENCY"}
    if dtype in OPENVINO_PRECISION:
        config["INFERENCE_PRECISION_HINT"] = OPENVINO_PRECISION[dtype]
    kwargs = {"ov_config": config}
    if file_name:
        kwargs["file_name"] = file_name
    return kwargs


def model_key(model: str) -> str:
    """Names a cached export after the model's path and its weight files' sizes and times, so a retrained
    model in the same folder is exported again."""
    import hashlib

    stamp = [model] + [
        f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in sorted(Path(model).glob("*.safetensors"))
    ]
    return hashlib.sha1("|".join(stamp).encode()).hexdigest()[:12]


def load(task: str, backend: str, model: str, cache: Path, args, calibration: list) -> object:
    """The model on `backend`; exported (and quantised) models are cached under `cache`."""
    import torch
    from sentence_transformers import CrossEncoder, SentenceTransformer

    def make(path: str, engine: str, **model_kwargs):
        if task == "encode":
            m = SentenceTransformer(path, device="cpu", backend=engine, model_kwargs=model_kwargs or None)
            m.max_seq_length = args.max_length
            return m
        return CrossEncoder(
            path, device="cpu", backend=engine, max_length=args.max_length, activation_fn=torch.nn.Identity(),
            model_kwargs=model_kwargs or None,
        )  # fmt: skip

    kind, dtype = backend.split("-")
    if kind == "torch":
        m = make(model, "torch")
        if dtype == "bf16":
            m = m.to(torch.bfloat16)
        return m
    folder = cache / f"{task}-{kind}-{model_key(model)}"
    if kind == "onnx":
        if not (folder / "onnx" / "model.onnx").is_file():
            make(model, "onnx", **onnx_kwargs(args.threads)).save_pretrained(str(folder))
        if dtype == "fp32":
            return make(str(folder), "onnx", **onnx_kwargs(args.threads))
        quantised = "onnx/model_qint8_avx512_vnni.onnx"
        if not (folder / quantised).is_file():
            from sentence_transformers import export_dynamic_quantized_onnx_model

            export_dynamic_quantized_onnx_model(
                make(str(folder), "onnx", **onnx_kwargs(args.threads)), "avx512_vnni", str(folder)
            )
        return make(str(folder), "onnx", **onnx_kwargs(args.threads, quantised))
    if not (folder / "openvino" / "openvino_model.xml").is_file():
        make(model, "openvino", **openvino_kwargs(args.threads)).save_pretrained(str(folder))
    if dtype in OPENVINO_PRECISION:
        return make(str(folder), "openvino", **openvino_kwargs(args.threads, dtype=dtype))
    quantised = "openvino/openvino_model_qint8_quantized.xml"
    if not (folder / quantised).is_file():
        quantise_openvino(make(str(folder), "openvino", **openvino_kwargs(args.threads)), folder, calibration)
    return make(str(folder), "openvino", **openvino_kwargs(args.threads, quantised))


def quantise_openvino(model, folder: Path, calibration: list) -> None:
    """`export_static_quantized_openvino_model` with its default config, calibrated on local texts (it
    would download glue/sst2, which an offline machine cannot)."""
    import datasets
    from optimum.intel import OVConfig, OVQuantizationConfig, OVQuantizer

    config = OVQuantizationConfig()
    tokenizer = model.tokenizer
    if isinstance(calibration[0], list):
        encoded = tokenizer(
            [q for q, _ in calibration],
            [p for _, p in calibration],
            padding="max_length",
            max_length=384,
            truncation=True,
        )
    else:
        encoded = tokenizer(calibration, padding="max_length", max_length=384, truncation=True)
    dataset = datasets.Dataset.from_dict(dict(encoded))
    quantizer = OVQuantizer.from_pretrained(
        model.transformers_model if hasattr(model, "transformers_model") else model.model
    )
    save_dir = folder / "openvino-int8"
    quantizer.quantize(dataset, save_directory=str(save_dir), ov_config=OVConfig(quantization_config=config))
    for suffix in (".xml", ".bin"):
        os.replace(
            save_dir / "openvino" / f"openvino_model{suffix}",
            folder / "openvino" / f"openvino_model_qint8_quantized{suffix}",
        )


def run(task: str, model, inputs: list, batch_size: int):
    if task == "encode":
        return model.encode(inputs, batch_size=batch_size, convert_to_numpy=True)
    return model.predict([tuple(p) for p in inputs], batch_size=batch_size, convert_to_numpy=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=["encode", "rerank"], required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--cache", required=True, help="folder for exported models (reused between calls)")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    pin(args.threads)
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    data = json.loads(Path(args.inputs).read_text())
    inputs = data["texts"] if args.task == "encode" else data["pairs"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rates = {}
    for backend in args.backends:
        model = load(args.task, backend, args.model, Path(args.cache), args, inputs[:300])
        with torch.inference_mode():
            outputs = run(args.task, model, inputs, args.batch_size)  # also the warm-up
            best = float("inf")
            for _ in range(args.repeats):
                started = time.perf_counter()
                run(args.task, model, inputs, args.batch_size)
                best = min(best, time.perf_counter() - started)
        np.save(out / f"{backend}.npy", np.asarray(outputs, dtype=np.float32))
        if "quality" in data and backend in data.get(
            "quality_backends", BACKENDS
        ):  # encoded once, untimed: for nDCG@10 on a whole collection
            with torch.inference_mode():
                np.save(
                    out / f"{backend}.quality.npy",
                    np.asarray(run(args.task, model, data["quality"], args.batch_size), dtype=np.float32),
                )
        rates[backend] = len(inputs) / best
        print(f"peer {backend}: {rates[backend]:.1f}/s", flush=True)
        (out / "rates.json").write_text(json.dumps(rates, indent=2))


if __name__ == "__main__":
    main()
