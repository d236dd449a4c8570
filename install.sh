#!/usr/bin/env bash
# Install tandem into ./.venv from scratch: torch first (the pinned CPU build, so nothing pulls CUDA
# wheels), then the package with pinned dependencies. Re-running it is cheap.
# Usage: bash install.sh [extras]    (default extras: cpu,test,int8; on a CUDA machine use gpu,test)
set -euo pipefail
cd "$(dirname "$0")"
extras="${1:-cpu,test,int8}"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".[${extras}]"
echo "tandem installed in .venv ($(.venv/bin/tandem --help >/dev/null && echo ok))"
