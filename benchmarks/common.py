"""What every benchmark script shares: the machine record, result files, paths, statistics."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexer.atomic import atomic_write_text

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
MANIFESTS = SHARED / "benchmarks"
YUNET = SHARED / "models" / "face_detection_yunet.onnx"
RESULTS = REPO / "benchmarks" / "results"

PACKAGES = (
    "torch",
    "torchvision",
    "faiss-cpu",
    "opencv-python-headless",
    "numpy",
    "fastapi",
    "uvicorn",
    "httpx",
    "dlib-bin",
    "face_recognition",
    "face_recognition_models",
)


def cpu_info() -> dict[str, Any]:
    """CPU model, cores, clock and the SIMD flags the speed figures depend on.

    The clock is /proc/cpuinfo's ``cpu MHz`` (under a hypervisor the only one there is; it is
    the nominal clock, turbo is not visible), so peak figures derived from it are estimates.
    """
    text = _read("/proc/cpuinfo")
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni")
    return {
        "model": fields.get("model name", platform.processor() or "unknown"),
        "vendor": fields.get("vendor_id", ""),
        "family": fields.get("cpu family", ""),
        "cores": os.cpu_count() or 1,
        "mhz": float(fields.get("cpu MHz", "0") or 0),
        "mhz_source": "/proc/cpuinfo 'cpu MHz'",
        "flags": [f for f in wanted if f in flags],
    }


def machine_info() -> dict[str, Any]:
    """Everything a reader needs to place a figure: CPU, memory, OS, versions, load."""
    mem_kb = 0
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {
        "cpu": cpu_info(),
        "memory_gib": round(mem_kb / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": package_versions(),
        "gpu": gpu_info(),
        "load_average": list(os.getloadavg()),
    }


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def gpu_info() -> str | None:
    """The CUDA device's name, or None: GPU figures are only recorded where one is lent."""
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:
        return None


def new_results(kind: str, quick: bool, note: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "quick": quick,
        "note": note,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "python -m " + " ".join(shlex.quote(a) for a in _argv()),
        "machine": machine_info(),
    }


def write_results(results: dict[str, Any], out: Path) -> None:
    """Write atomically and print where: the JSON is what the report is made from."""
    results["load_average_end"] = list(os.getloadavg())
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(results, indent=2, default=_jsonable) + "\n")
    print(f"results written to {out}", file=sys.stderr)


def percentiles(values_ms: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(values_ms, dtype=np.float64)
    if arr.size == 0:
        return {"p50_ms": float("nan"), "p95_ms": float("nan"), "p99_ms": float("nan")}
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return {
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "mean_ms": float(arr.mean()),
    }


def scratch_dir(prefix: str) -> Path:
    """A temporary folder that ``remove_scratch`` deletes when the script ends."""
    path = Path(tempfile.mkdtemp(prefix=f"facefind-{prefix}-"))
    _SCRATCH.append(path)
    return path


def remove_scratch() -> None:
    """Delete every scratch folder (galleries, stores, stand-in models) this run made."""
    while _SCRATCH:
        shutil.rmtree(_SCRATCH.pop(), ignore_errors=True)


_SCRATCH: list[Path] = []


def python_cmd(*module_args: str) -> list[str]:
    """Run a module with this interpreter, from the repository root."""
    return [sys.executable, "-m", *module_args]


def shown(cmd: Sequence[str]) -> str:
    """A command as a reader would type it: ``python`` for this interpreter, shell-quoted."""
    return " ".join("python" if a == sys.executable else shlex.quote(a) for a in cmd)


def _argv() -> list[str]:
    module = sys.modules["__main__"].__spec__
    name = module.name if module is not None else Path(sys.argv[0]).stem
    return [name, *sys.argv[1:]]


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _jsonable(value: object) -> object:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def speed_model(model: str | None) -> tuple[str, dict[str, Any]]:
    """The checkpoint to time, and how to describe it.

    Speed does not depend on the weights, so where the default model is not installed yet a
    random-weight checkpoint of the same architecture, width and input size stands in (and the
    results say so).
    """
    from indexer.checkpoint import load_checkpoint, save_checkpoint
    from indexer.defaults import DEFAULT_MODEL
    from indexer.model import DEFAULT_INPUT_SIZE, EmbeddingNet

    random_weights = False
    if model is None:
        if DEFAULT_MODEL.is_file():
            model = str(DEFAULT_MODEL)
        else:
            import torch

            torch.manual_seed(0)
            path = scratch_dir("model") / "random-resnet50-256-112.pt"
            save_checkpoint(path, EmbeddingNet("resnet50", 256), DEFAULT_INPUT_SIZE)
            model, random_weights = str(path), True
    _, info = load_checkpoint(model)
    return model, {
        "path": model,
        "name": info.name,
        "fingerprint": info.fingerprint,
        "arch": info.arch,
        "embedding_dim": info.embedding_dim,
        "input_size": info.input_size,
        "crop_size": info.crop_size,
        "flip_average": info.flip_average,
        "random_weights": random_weights,
    }
