#!/usr/bin/env bash
# The GPU check: hero-base bf16 training steps on one CUDA device (SDPA, fused AdamW, pinned-memory loader,
# torch.compile off and on), MFU against a bf16 GEMM measured in the same run, a 1-process NCCL job through the
# project's launcher, the feature extractor's CNN throughput, peak memory. One table on stdout, JSON in
# data/08_reporting/gpu_check.json. No network; about 5 minutes on an H100 (limit: 8).
#   scripts/gpu_check.sh [--small] [--steps N] [--videos N] [--out FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
export HF_HUB_OFFLINE=1 KEDRO_DISABLE_TELEMETRY=true
exec timeout 480 "$PY" scripts/gpu_check.py "$@"
