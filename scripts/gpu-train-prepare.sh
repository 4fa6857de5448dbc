#!/usr/bin/env bash
# Get the repository ready to travel for scripts/gpu-train.sh (run here, from the root):
#   bash scripts/gpu-train-prepare.sh PACK_FOLDER [MiB]
# Writes .gpu-carry/travel.npz (the pack within the budget, default 44 MiB) and the wheels the
# device lacks (.gpu-carry/wheels, for its Python 3.12), and moves models/*.pt aside to
# .gpu-carry-aside/ (put it back with: mv .gpu-carry-aside/*.pt models/).
set -euo pipefail
pack=${1:?usage: $0 PACK_FOLDER [MiB]}
mib=${2:-44}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python=${PYTHON:-.venv/bin/python}
mkdir -p .gpu-carry/wheels .gpu-carry-aside
"$python" -m training travel "$pack" --out .gpu-carry/travel.npz --max-mib "$mib"
for spec in pydantic pydantic-core pydantic-settings annotated-types typing-inspection \
            python-dotenv pytorch-metric-learning; do
    version=$("$python" -m pip show "$spec" 2>/dev/null | awk '/^Version:/ {print $2}')
    "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .gpu-carry/wheels "$spec${version:+==$version}"
done
if compgen -G "models/*.pt" >/dev/null; then mv models/*.pt .gpu-carry-aside/; fi
du -sh .gpu-carry
