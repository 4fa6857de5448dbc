#!/usr/bin/env bash
# The GPU path, checked and measured in one command: scripts/gpu-check.sh OUT_DIR [--cpu]
#
# On a machine with one NVIDIA GPU: installs what the machine lacks from the wheels packed
# by `python -m benchmarks.gpu_pack` (.gpu-carry/wheels), runs the tests marked `gpu` and the
# GPU benchmarks (benchmarks/gpu_check.py), and writes OUT_DIR/gpu.json (every figure),
# OUT_DIR/gpu-tests.xml and .log (the tests) and OUT_DIR/gpu-check.log (this run's output).
# Bounded to 8 minutes; the JSON is rewritten after each part, so a cut run keeps its figures.
# With --cpu: the same steps at tiny sizes on the CPU, a dry run that CI uses to prove that
# this works; its results say "dry_run": true and are never shown as GPU figures.
# PYTHON overrides the interpreter (default: .venv/bin/python where it exists, else python3).
set -euo pipefail

usage() { echo "usage: $0 OUT_DIR [--cpu]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
out=$1
mode=${2:-}
[[ -z $mode || $mode == --cpu ]] || usage
[[ $out != --* ]] || usage

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$repo"
exec > >(tee "$out/gpu-check.log") 2>&1
start=$SECONDS

python=${PYTHON:-}
if [[ -z $python ]]; then
    if [[ -x .venv/bin/python ]]; then python=.venv/bin/python; else python=python3; fi
fi

# shellcheck source=scripts/carried-wheels.sh
source scripts/carried-wheels.sh
use_carried_wheels "$python" "${TMPDIR:-/tmp}/facefind-gpu-site" \
    "pack them: python -m benchmarks.gpu_pack" \
    torch torchvision numpy cv2 faiss fastapi uvicorn pydantic pydantic_settings multipart \
    prometheus_client httpx pytest pytest_timeout
"$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi

# 8 minutes in all on the GPU, less what installing took, a little kept for timeout's own exit.
limit=480
[[ $mode == --cpu ]] && limit=1200  # the dry run, on CI's two shared cores
left=$((limit - (SECONDS - start) - 5))
status=0
PYTHONUNBUFFERED=1 timeout --kill-after=10 "$left" \
    "$python" -m benchmarks.gpu_check "$out" ${mode:+"$mode"} || status=$?
echo "gpu-check: exit status $status after $((SECONDS - start)) s; results in $out/gpu.json"
exit "$status"
