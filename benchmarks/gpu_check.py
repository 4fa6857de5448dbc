"""The GPU path checked and measured in one run: ``python -m benchmarks.gpu_check OUT_DIR``.

``scripts/gpu-check.sh`` runs it on a machine with one NVIDIA GPU, within 8 minutes. Parts,
in order (the tests and the builds are child processes with time limits, the compiled
embedder's sweep stops at its budget), with OUT_DIR/gpu.json rewritten after each, so that a
run cut short still leaves what it measured:

- ``tests``: the tests marked ``gpu`` (``pytest tests/gpu``, a child process);
- ``embed``: ``Embedder`` throughput at batch 1 to 512, as ``indexer build`` runs it (bf16 on a
  GPU that has it, channels-last, eager) and with its network compiled by ``torch.compile``,
  preprocessing and the copies to and from the device included; the CPU beside it;
- ``build``: ``python -m indexer build --device cuda`` over photos (a carried LFW subset where
  there is one), images/s, and the same build with ``--device cpu`` beside it;
- ``search``: 10M vectors (``benchmarks/gpu_search.py``).

The embedder is a randomly initialised network shaped like the shipped model (the shipped
file stays behind: the machine receives at most 64 MiB); speed does not depend on weights.
``--cpu`` runs every part at tiny sizes on the CPU, CI's proof that the check works: its
results say ``"dry_run": true`` and ``python -m benchmarks.report`` never shows them as GPU
figures.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import gpu_search
from benchmarks.common import (
    DATA,
    REPO,
    new_results,
    python_cmd,
    remove_scratch,
    scratch_dir,
    shown,
    write_results,
)
from indexer.build import find_images
from indexer.checkpoint import load_checkpoint, save_checkpoint
from indexer.embedder import Embedder
from indexer.model import EmbeddingNet

log = logging.getLogger(__name__)

SHIPPED_SHAPE = ("resnet50", 256, 96)
"""arch, embedding width and input size of models/facefind-resnet50.pt (a test keeps it true)."""
CARRY = REPO / ".gpu-carry"
"""What ``python -m benchmarks.gpu_pack`` packs for the trip: wheels and an LFW subset."""
TARGET_FACES_PER_S = 3000.0
PARTS = ("tests", "embed", "build", "search")


@dataclass(frozen=True)
class Plan:
    device: str
    input_size: int
    batches: tuple[int, ...]
    cpu_batches: tuple[int, ...]
    rounds: int
    min_round_s: float
    build_images: int | None
    compile_backend: str
    """inductor on the GPU; the dry run takes dynamo's ``eager`` backend (same wrapping, no
    code generation), since Inductor needs minutes of two busy CI cores for a ResNet50."""
    search: gpu_search.GpuSearchPlan
    budget_s: dict[str, float]
    """Seconds each part is planned to take: the limit of the tests' and the builds' child
    processes and of the compiled embedder's sweep; search is bounded by the script's own."""


GPU_PLAN = Plan(
    device="cuda",
    input_size=SHIPPED_SHAPE[2],
    batches=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
    cpu_batches=(1, 32),
    rounds=3,
    min_round_s=0.5,
    build_images=None,
    compile_backend="inductor",
    search=gpu_search.GpuSearchPlan(),
    budget_s={"tests": 120, "embed": 150, "build": 80, "search": 120},  # 470 s of the 480
)
CPU_PLAN = Plan(
    device="cpu",
    input_size=32,  # a ResNet50 still, at a ninth of the 96 px work: CI's cores are shared
    batches=(1, 2),
    cpu_batches=(),
    rounds=1,
    min_round_s=0.0,
    build_images=6,  # under 8 images the build decodes in-process: no worker start-up
    compile_backend="eager",
    search=gpu_search.GpuSearchPlan(
        n=20_000, queries=50, single_queries=10, cpu_flat_queries=5, nprobes=(8, 32)
    ),
    # two CI cores shared with other work: generous, the figures mean nothing anyway
    budget_s={"tests": 600, "embed": 240, "build": 180, "search": 120},
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__)
    parser.add_argument("out_dir", type=Path, help="folder for gpu.json and the tests' report")
    parser.add_argument("--cpu", action="store_true", help="tiny sizes on the CPU: a dry run")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument(
        "--photos",
        type=Path,
        help="build: a folder or .tar of photos (default: ../shared/data/lfw, else "
        ".gpu-carry/lfw.tar, else synthesized images)",
    )
    parser.add_argument("--note", default="", help="recorded with the results")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    plan = CPU_PLAN if args.cpu else GPU_PLAN
    if plan.device == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA GPU here; use --cpu for a dry run on the CPU", file=sys.stderr)
        return 2
    out = args.out_dir / "gpu.json"
    results = new_results("gpu", args.cpu, args.note)
    results.update(dry_run=args.cpu, device=plan.device, gpu=gpu_details(), parts={}, errors={})
    work = scratch_dir("gpu-check")
    try:
        model, results["model"] = stand_in_model(work, plan.input_size)
        failed = False
        for part in args.parts:
            start = time.perf_counter()
            try:
                results[part] = RUNNERS[part](args, plan, model, work)
            except Exception as exc:  # one broken part must not cost the others' figures
                log.exception("part %s failed", part)
                results["errors"][part] = f"{type(exc).__name__}: {exc}"[:2000]
                failed = True
            results["parts"][part] = round(time.perf_counter() - start, 1)
            write_results(results, out)
        tests = results.get("tests") or {}
        failed = failed or bool(tests.get("failed") or tests.get("errors"))
    finally:
        remove_scratch()
    return 1 if failed else 0


def gpu_details() -> dict[str, Any] | None:
    """The GPU as PyTorch sees it: name, memory, compute capability, CUDA version."""
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return {
        "name": props.name,
        "memory_gib": round(props.total_memory / 2**30, 1),
        "capability": f"{props.major}.{props.minor}",
        "multiprocessors": props.multi_processor_count,
        "cuda": torch.version.cuda,
        "torch": torch.__version__,
        "bf16": torch.cuda.is_bf16_supported(),
    }


def stand_in_model(work: Path, input_size: int) -> tuple[str, dict[str, Any]]:
    """A random-weight checkpoint shaped like the shipped model, made here and now."""
    arch, dim, _ = SHIPPED_SHAPE
    torch.manual_seed(0)
    path = work / f"random-{arch}-{dim}-{input_size}.pt"
    save_checkpoint(path, EmbeddingNet(arch, dim), input_size, metrics={"note": "random weights"})
    _, info = load_checkpoint(path)
    return str(path), {
        "path": str(path),
        "name": info.name,
        "fingerprint": info.fingerprint,
        "arch": arch,
        "embedding_dim": dim,
        "input_size": input_size,
        "random_weights": True,
    }


def run_tests(args: argparse.Namespace, plan: Plan, _: str, work: Path) -> dict[str, Any]:
    """``pytest -m gpu tests/gpu`` in a child process; its JUnit XML read back as JSON."""
    xml = args.out_dir / "gpu-tests.xml"
    cmd = [sys.executable, "-m", "pytest", "tests/gpu", "-m", "gpu", "-q", "-rs"]
    cmd += ["-p", "no:cacheprovider", f"--junitxml={xml}", "--timeout=300"]
    env = os.environ | {"GPU_CHECK_DEVICE": plan.device}
    budget = plan.budget_s["tests"]
    done = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=budget, check=False
    )
    (args.out_dir / "gpu-tests.log").write_text(done.stdout + done.stderr)
    result = junit_summary(xml) if xml.is_file() else {"cases": []}
    result.update(
        command=shown(cmd),
        device=plan.device,
        exit_status=done.returncode,
        tail=done.stdout[-1500:],
    )
    return result


def junit_summary(xml: Path) -> dict[str, Any]:
    cases = []
    for case in ET.parse(xml).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                outcome = {"failure": "failed", "error": "errors"}.get(tag, tag)
                message = (found.get("message") or found.text or "")[:500]
                break
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        cases.append({"name": name, "outcome": outcome, "message": message})
    counts = {k: sum(c["outcome"] == k for c in cases) for k in ("passed", "failed", "errors")}
    return {**counts, "skipped": sum(c["outcome"] == "skipped" for c in cases), "cases": cases}


def run_embed(_: argparse.Namespace, plan: Plan, model: str, work: Path) -> dict[str, Any]:
    deadline = time.monotonic() + plan.budget_s["embed"]
    net, info = load_checkpoint(model)
    rng = np.random.default_rng(0)
    size = info.input_size
    crops = list(rng.integers(0, 256, (max(plan.batches), size, size, 3), dtype=np.uint8))
    eager = Embedder(copy.deepcopy(net), info, plan.device)
    runs = [_embed_row("facefind", eager, crops, b, plan) for b in plan.batches]
    compiled, compile_info = _compiled_embedder(net, info, plan.device, plan.compile_backend)
    for batch in plan.batches:
        if compiled is None:
            break
        if time.monotonic() > deadline:
            compile_info.setdefault("not_run", []).append(batch)
            continue
        try:
            runs.append(_embed_row("facefind-compiled", compiled, crops, batch, plan))
        except Exception as exc:  # a graph that fails at one size is reported, not fatal
            compile_info["error"] = f"batch {batch}: {type(exc).__name__}: {exc}"[:1000]
            break
    cpu = Embedder(copy.deepcopy(net), info, "cpu") if plan.cpu_batches else None
    cpu_runs = [_embed_row("facefind", cpu, crops, b, plan) for b in plan.cpu_batches if cpu]
    best = max(runs, key=lambda r: r["images_per_s"])
    return {
        "device": plan.device,
        "precision": eager.precision,
        "channels_last": True,
        "input_size": size,
        "runs": runs,
        "compile": compile_info,
        "cpu": {
            "precision": cpu.precision if cpu else None,
            "threads": torch.get_num_threads(),
            "runs": cpu_runs,
        },
        "rounds": plan.rounds,
        "min_round_s": plan.min_round_s,
        "target": {
            "faces_per_s": TARGET_FACES_PER_S,
            "best": {k: best[k] for k in ("variant", "batch", "images_per_s")},
            "met": best["images_per_s"] >= TARGET_FACES_PER_S and plan.device == "cuda",
        },
    }


def _compiled_embedder(
    net: EmbeddingNet, info: Any, device: str, backend: str
) -> tuple[Embedder | None, dict[str, Any]]:
    """The Embedder with its network through torch.compile, weights frozen as on the CPU path.

    ``Embedder(compile=True)`` compiles on the CPU only (and pads batches to at most 32), so
    the check compiles the same network itself, once, with a dynamic batch dimension that
    serves all ten sizes. On CUDA ``reduce-overhead`` adds CUDA graphs, which take the launch overhead out of small
    batches. Compilation happens at each size's warm-up, timed apart as ``setup_s``.
    """
    import torch._dynamo
    import torch._inductor.config as inductor_config

    if hasattr(torch._dynamo.config, "recompile_limit"):
        torch._dynamo.config.recompile_limit = 64
    cuda = device.startswith("cuda") and backend == "inductor"
    mode = "reduce-overhead" if cuda else None
    described = {"backend": backend, "mode": mode or "default", "freezing": True, "dynamic": True}
    embedder = Embedder(copy.deepcopy(net), info, device)
    try:
        compiled = torch.compile(embedder.model, backend=backend, mode=mode, dynamic=True)
    except Exception as exc:
        return None, {**described, "error": f"{type(exc).__name__}: {exc}"[:1000]}

    def forward(batch: torch.Tensor) -> torch.Tensor:
        with inductor_config.patch(freezing=True):
            return compiled(batch)

    embedder._forward = forward  # where Embedder._compile puts its compiled network
    return embedder, described


def _embed_row(
    variant: str, embedder: Embedder, crops: list[np.ndarray], batch: int, plan: Plan
) -> dict[str, Any]:
    chunk = crops[:batch]
    start = time.perf_counter()
    embedder.embed(chunk, batch_size=batch)  # first call: compiles, allocates, picks kernels
    embedder.embed(chunk, batch_size=batch)
    setup = time.perf_counter() - start
    rate = _rate(lambda: embedder.embed(chunk, batch_size=batch), batch, plan)
    log.info("embed %s on %s, batch %d: %.0f faces/s", variant, embedder.device, batch, rate)
    return {
        "variant": variant,
        "device": str(embedder.device),
        "batch": batch,
        "images_per_s": rate,
        "setup_s": setup,
    }


def _rate(fn: Callable[[], object], images: int, plan: Plan) -> float:
    """Median over rounds of images per second; ``embed`` returns host arrays, so it syncs."""
    rates = []
    for _ in range(plan.rounds):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= plan.min_round_s:
                break
        rates.append(calls * images / elapsed)
    return statistics.median(rates)


def run_build(args: argparse.Namespace, plan: Plan, model: str, work: Path) -> dict[str, Any]:
    gallery, source = photos(args.photos, work / "photos", plan.build_images)
    devices = [plan.device] + (["cpu"] if plan.device != "cpu" else [])
    budget = plan.budget_s["build"] / len(devices)
    runs = [timed_build(gallery, work / f"store-{d}", model, d, budget) for d in devices]
    return {"gallery": source, "images": len(find_images(gallery)), "runs": runs}


def timed_build(gallery: Path, store: Path, model: str, device: str, timeout: float) -> dict:
    """One whole ``python -m indexer build`` (start-up and model loading included)."""
    cmd = python_cmd("indexer", "build", str(gallery), "--index", str(store), "--model", model)
    cmd += ["--detector", "haar", "--device", device]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{shown(cmd)} failed:\n{done.stderr[-2000:]}")
    images = len(find_images(gallery))
    faces = re.search(r"gallery: (\d+) faces", done.stdout)
    return {
        "device": device,
        "command": shown(cmd),
        "workers": os.cpu_count(),
        "images": images,
        "faces": int(faces.group(1)) if faces else None,
        "seconds": seconds,
        "images_per_s": images / seconds,
    }


def photos(given: Path | None, dest: Path, count: int | None) -> tuple[Path, dict[str, Any]]:
    """The build's gallery: given, LFW beside the repo, the carried LFW subset, or made up."""
    lfw_tar = CARRY / "lfw.tar"
    source = given or next((p for p in (DATA / "lfw", lfw_tar) if p.exists()), None)
    if source is None:
        made = synthesized_photos(dest, count or 200)
        return made, {"kind": "synthesized", "path": None, "note": "random images, no faces"}
    described = {"kind": "lfw", "path": str(source), "carried": source == lfw_tar}
    if source.is_file():
        with tarfile.open(source) as tar:
            tar.extractall(dest, filter="data")
        source = dest
    if count:
        return _subset(source, count, dest.parent / "subset"), described
    return source, described


def synthesized_photos(dest: Path, count: int) -> Path:
    """JPEGs of noise in person folders: the decode and detect work of a photo, no face."""
    import cv2

    rng = np.random.default_rng(0)
    for i in range(count):
        folder = dest / f"person{i // 4:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        image = rng.integers(0, 256, (250, 250, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"{i:05d}.jpg"), cv2.GaussianBlur(image, (9, 9), 3))
    return dest


def _subset(source: Path, count: int, dest: Path) -> Path:
    for path in find_images(source)[:count]:
        target = dest / path.relative_to(source.resolve())
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return dest


def run_search(_: argparse.Namespace, plan: Plan, model: str, work: Path) -> dict[str, Any]:
    shape = gpu_search.calibrated_shape()
    search_plan = plan.search
    if shape:
        search_plan = replace(search_plan, alpha=shape["alpha"], noise=shape["noise"])
    search_plan = replace(search_plan, dim=SHIPPED_SHAPE[1])
    result = gpu_search.run(search_plan, plan.device)
    result["shape_source"] = (
        f"alpha and noise as fitted in {shape['source']}" if shape else "defaults"
    )
    return result


RUNNERS = {"tests": run_tests, "embed": run_embed, "build": run_build, "search": run_search}

if __name__ == "__main__":
    sys.exit(main())
