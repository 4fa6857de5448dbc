#!/usr/bin/env bash
# The accuracy issue's GPU recipe in one command: scripts/gpu-train.sh OUT_DIR [--cpu]
#
# Distils the 0095 teacher into a ResNet50 on one CUDA device with everything there: the
# travel pack's crops and targets preloaded as tensors, augmentation on the GPU, bf16,
# channels-last, compiled, batches of 512; the learning rate and the sizes follow the time
# spent, so the run ends by itself inside FACEFIND_GPU_MINUTES (default 7). OUT_DIR gets the
# half-precision model in parts of at most 15 MiB (model.pt.part-*; `cat` them back), its
# SHA256SUMS, metrics.csv, config.json and the log.
# Before the trip, here:  bash scripts/gpu-train-prepare.sh   (travel pack and wheels in
# .gpu-carry/, the shipped model moved aside so the copy fits 64 MiB)
# With --cpu: the same steps at a tiny size on the CPU (CI proves the recipe works).
set -euo pipefail

usage() { echo "usage: $0 OUT_DIR [--cpu]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
out=$1
mode=${2:-}
[[ -z $mode || $mode == --cpu ]] || usage
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$repo"
exec > >(tee "$out/gpu-train.log") 2>&1

python=${PYTHON:-}
if [[ -z $python ]]; then
    if [[ -x .venv/bin/python ]]; then python=.venv/bin/python; else python=python3; fi
fi
# shellcheck source=scripts/carried-wheels.sh
source scripts/carried-wheels.sh
use_carried_wheels "$python" "${TMPDIR:-/tmp}/facefind-train-site" \
    "bash scripts/gpu-train-prepare.sh packs them" \
    torch torchvision numpy cv2 pydantic pydantic_settings pytorch_metric_learning matplotlib tqdm

pack=${FACEFIND_GPU_PACK:-.gpu-carry/travel.npz}
[[ -f $pack ]] || { echo "error: no travel pack at $pack (bash scripts/gpu-train-prepare.sh)" >&2; exit 3; }
run=${TMPDIR:-/tmp}/facefind-gpu-run
rm -rf "$run"
if [[ $mode == --cpu ]]; then
    args=(--device cpu --arch resnet18 --image-size 40 --sizes "32:0.5,40:0.5" --batch-size 16
          --ids-per-batch 2 --val-share 0.5 --val-every 32 --max-steps 4 --warmup-steps 1)
    minutes=${FACEFIND_GPU_MINUTES:-2}
else
    args=(--device cuda --compile --image-size 96 --sizes 96:1 --batch-size 512
          --ids-per-batch 64 --lr 2e-3 --warmup-steps 200 --val-every 300000)
    minutes=${FACEFIND_GPU_MINUTES:-7}
fi
PYTHONUNBUFFERED=1 "$python" -m training distill --pack "$pack" --out "$run" \
    --schedule time --time-limit "$minutes" "${args[@]}"
"$python" -m training export "$run/best.pt" "$run/model.pt"
split -b 15m -d "$run/model.pt" "$out/model.pt.part-"
(cd "$out" && sha256sum model.pt.part-* > SHA256SUMS && sha256sum < "$run/model.pt" \
    | sed 's/-$/model.pt/' >> SHA256SUMS)
cp "$run/metrics.csv" "$run/config.json" "$out/"
echo "done: files in $out"
