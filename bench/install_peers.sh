#!/usr/bin/env bash
# The speed benchmarks' peers (sentence-transformers with its torch, ONNX Runtime and OpenVINO backends)
# in their own environment, ./.venv-peers: their exporters need transformers < 4.58, tandem needs 5.x.
# Not needed by tandem itself or by its tests. Re-running it is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-peers
.venv-peers/bin/python -m pip install --quiet --upgrade pip
.venv-peers/bin/python -m pip install --quiet torch==2.13.0
.venv-peers/bin/python -m pip install --quiet -r bench/peers/requirements.txt
echo "peers installed in .venv-peers"
