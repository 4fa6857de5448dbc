# shellcheck shell=bash
# Sourced by scripts/gpu-check.sh and scripts/gpu-train.sh: on a machine without a registry,
# install what Python lacks from the wheels carried in .gpu-carry/wheels, into a private
# folder put on PYTHONPATH; a machine that has everything (a set-up venv) uses what it has.
#   use_carried_wheels PYTHON SITE HINT MODULE...   (exits 3, naming HINT, if still missing)

missing_modules() {
    local python=$1
    shift
    "$python" - "$@" <<'PY'
import importlib.util
import sys
print(" ".join(n for n in sys.argv[1:] if importlib.util.find_spec(n) is None))
PY
}

use_carried_wheels() {
    local python=$1 site=$2 hint=$3
    shift 3
    local lacking
    lacking=$(missing_modules "$python" "$@")
    if [[ -n $lacking ]] && compgen -G ".gpu-carry/wheels/*.whl" >/dev/null; then
        echo "missing: $lacking; installing the carried wheels into $site"
        "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$site" .gpu-carry/wheels/*.whl
        export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
        lacking=$(missing_modules "$python" "$@")
    fi
    if [[ -n $lacking ]]; then
        echo "error: missing Python modules: $lacking ($hint)" >&2
        exit 3
    fi
}
