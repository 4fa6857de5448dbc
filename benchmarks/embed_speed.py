"""Embedder throughput: plain fp32 eager PyTorch against facefind's own path, and the peak.

Every variant embeds the same uint8 crops (preprocessing included) and the variants take turns
round by round, so their ratio holds even when other work shares the CPU. ``plain-fp32`` is
what one writes first: the network in fp32, contiguous NCHW, eager, ``torch.inference_mode``.
``facefind`` is ``indexer.embedder.Embedder`` as the command-line tools run it (weights
converted to bf16 where the CPU has native bf16, channels-last, eager); ``facefind-compiled`` is
the same with ``compile=True``, as the service runs it (torch.compile with frozen weights, one
graph per batch size, batches padded up to the next one). ``CANDIDATES`` lists variants timed
for comparison only: none at present. (A TorchScript trace + freeze variant was dropped: it
replaced ``Embedder.model``, but the embedder calls the forward it fixed when it was built, so
the column it filled measured the eager model.)
"""

from __future__ import annotations

import copy
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import cpu_info
from indexer.checkpoint import ModelInfo, load_checkpoint
from indexer.embedder import Embedder, resolve_precision
from indexer.model import EmbeddingNet

log = logging.getLogger(__name__)

EmbedFn = Callable[[list[np.ndarray]], np.ndarray]
REQUIRED = ("plain-fp32", "facefind", "facefind-compiled")
CANDIDATES: tuple[str, ...] = ()


@dataclass(frozen=True)
class EmbedPlan:
    sizes: tuple[int, ...]
    """Input sizes timed with every variant at each of ``batches`` (the issue's figures)."""
    sweep: tuple[int, ...]
    """Extra batch sizes at the model's input size, plain and facefind only (the plot)."""
    variants: tuple[str, ...]
    batches: tuple[int, ...] = (1, 32)
    rounds: int = 5
    min_round_s: float = 1.0
    device: str = "cpu"


def run(model_path: str, plan: EmbedPlan) -> dict[str, Any]:
    net, info = load_checkpoint(model_path)
    device = torch.device(plan.device)
    # Several compiled embedders share EmbeddingNet.forward's graph cache here (a service has
    # one); without room for all their graphs dynamo would quietly fall back to eager.
    torch._dynamo.config.recompile_limit = 64
    compiled: dict[int, Embedder] = {}
    configs = [(s, b, plan.variants) for s in plan.sizes for b in plan.batches]
    configs += [(info.input_size, b, REQUIRED) for b in plan.sweep]
    runs: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    views = 2 if info.flip_average else 1  # a mirror-averaging model runs twice per face
    flops = {size: views * flops_per_image(net, size) for size in sorted({c[0] for c in configs})}
    for size, batch, variants in configs:
        crops = _crops(batch, size)
        fns: dict[str, EmbedFn] = {}
        setup: dict[str, float] = {}
        for name in variants:
            start = time.perf_counter()
            try:
                fns[name] = make_variant(name, net, info, device, crops, compiled)
            except Exception as exc:  # a candidate that fails here is reported, not fatal
                errors[f"{name}@{size}/{batch}"] = f"{type(exc).__name__}: {exc}"[:500]
            setup[name] = time.perf_counter() - start
        for name, rate in _race(fns, crops, plan.rounds, plan.min_round_s).items():
            runs.append(
                {
                    "variant": name,
                    "size": size,
                    "batch": batch,
                    "images_per_s": rate,
                    "setup_s": setup[name],
                }
            )
            log.info("embed %s size %d batch %d: %.1f img/s", name, size, batch, rate)
    peak = cpu_peak(torch.get_num_threads()) if device.type == "cpu" else None
    for row in runs:
        row["gflops"] = row["images_per_s"] * flops[row["size"]] / 1e9
    return {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "facefind_precision": str(resolve_precision("auto", device)).removeprefix("torch."),
        "flops_per_image": {str(k): v for k, v in flops.items()},
        "flops_source": "torch.utils.flop_counter.FlopCounterMode, one image, 2 FLOPs per MAC",
        "peak": peak,
        "runs": runs,
        "speedups": _speedups(runs),
        "errors": errors,
        "rounds": plan.rounds,
        "min_round_s": plan.min_round_s,
    }


def make_variant(
    name: str,
    net: EmbeddingNet,
    info: ModelInfo,
    device: torch.device,
    crops: list[np.ndarray],
    compiled: dict[int, Embedder],
) -> EmbedFn:
    """A crops -> vectors function for one variant, warmed up (compiled) already.

    ``compiled`` keeps one compiled embedder per input size: it has a graph for every batch
    size already, so compiling it again per batch size would only cost time.
    """
    if name == "plain-fp32":
        return _plain(copy.deepcopy(net).to(device).eval(), info, device)
    size = crops[0].shape[0]
    # The network at this size, crops cut at it: no shrink from a larger crop is timed.
    sized = replace(info, input_size=size, crop_size=size)
    if name == "facefind-compiled":
        if size not in compiled:
            compiled[size] = Embedder(copy.deepcopy(net), sized, str(device), compile=True)
            if not compiled[size].compiled:
                raise RuntimeError("torch.compile failed here (see the log)")
        embedder = compiled[size]
        return lambda c: embedder.embed(c, batch_size=len(c))
    if name != "facefind":
        raise ValueError(f"unknown variant {name!r}")
    embedder = Embedder(copy.deepcopy(net), sized, str(device))
    fn: EmbedFn = lambda c: embedder.embed(c, batch_size=len(c))  # noqa: E731
    fn(crops)  # oneDNN's first-call primitive creation: before timing
    fn(crops)
    return fn


def flops_per_image(net: EmbeddingNet, size: int) -> float:
    """Counted by PyTorch on one image, not estimated by hand."""
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        copy.deepcopy(net).eval()(torch.zeros(1, 3, size, size))
    return float(counter.get_total_flops())


def cpu_peak(threads: int) -> dict[str, Any]:
    """threads x GHz x FLOPs per cycle per core, from the SIMD units the flags announce.

    AVX-512 FMA: 2 units x 16 fp32 lanes x 2 FLOPs = 64 FLOP/cycle; AVX2 FMA: 32. AVX512_BF16
    (VDPBF16PS) does two bf16 multiply-adds per fp32 lane: 128 FLOP/cycle. AMX-BF16 tiles:
    1024 multiply-adds per cycle = 2048 FLOP/cycle (Intel's figure).
    """
    cpu = cpu_info()
    flags = set(cpu["flags"])
    fp32 = 64 if "avx512f" in flags else 32 if "fma" in flags or "avx2" in flags else 8
    if "amx_bf16" in flags:
        bf16 = 2048
    elif "avx512_bf16" in flags:
        bf16 = 2 * fp32
    else:
        bf16 = fp32
    ghz = cpu["mhz"] / 1000.0
    return {
        "threads": threads,
        "ghz": ghz,
        "ghz_source": cpu["mhz_source"],
        "fp32_flop_per_cycle": fp32,
        "bf16_flop_per_cycle": bf16,
        "fp32_gflops": threads * ghz * fp32,
        "bf16_gflops": threads * ghz * bf16,
        "matmul_fp32_gflops": matmul_gflops(torch.float32),
        "matmul_bf16_gflops": matmul_gflops(torch.bfloat16),
        "matmul_size": MATMUL_SIZE,
    }


MATMUL_SIZE = 2048


def peak_gflops(peak: dict[str, Any], key: str) -> float:
    """The higher of the theoretical and the measured peak: a peak is never below a rate seen.

    The theoretical figure uses the nominal clock, which a boosting CPU exceeds (bf16 products
    measured faster than it here); a measured product can fall short of what convolutions reach.
    """
    return max(peak[key], peak.get(f"matmul_{key}", 0.0))


def matmul_gflops(dtype: torch.dtype, n: int = MATMUL_SIZE, seconds: float = 2.0) -> float:
    """The measured peak: one large square matrix product, the densest work oneDNN/MKL does.

    The nominal clock in /proc/cpuinfo can sit below the clock the CPU really runs at (turbo
    is invisible under a hypervisor), so the theoretical peak can be exceeded; this cannot.
    """
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    with torch.inference_mode():
        torch.mm(a, b)
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            torch.mm(a, b)
            calls += 1
        elapsed = time.perf_counter() - start
    return 2.0 * n**3 * calls / elapsed / 1e9


def _plain(model: EmbeddingNet, info: ModelInfo, device: torch.device) -> EmbedFn:
    mean = torch.tensor(info.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(info.std, device=device).view(1, 3, 1, 1)

    @torch.inference_mode()
    def embed(crops: list[np.ndarray]) -> np.ndarray:
        x = torch.from_numpy(np.stack(crops)).to(device).permute(0, 3, 1, 2).contiguous()
        x = (x.float() / 255.0 - mean) / std
        vectors = model(x)
        if info.flip_average:  # the same work as the Embedder: the mirror image too
            vectors = vectors + model(x.flip(3))
        return vectors.cpu().numpy()

    embed(_crops(1, info.input_size))
    return embed


def _race(
    fns: dict[str, EmbedFn], crops: list[np.ndarray], rounds: int, min_s: float
) -> dict[str, float]:
    """Median images/s per variant; the order rotates each round so none always goes first."""
    rates: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            calls, start = 0, time.perf_counter()
            while True:
                fns[name](crops)
                calls += 1
                elapsed = time.perf_counter() - start
                if elapsed >= min_s:
                    break
            rates[name].append(calls * len(crops) / elapsed)
    return {name: statistics.median(values) for name, values in rates.items() if values}


def _speedups(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    plain = {
        (r["size"], r["batch"]): r["images_per_s"] for r in runs if r["variant"] == "plain-fp32"
    }
    return [
        {
            "variant": r["variant"],
            "size": r["size"],
            "batch": r["batch"],
            "vs_plain_fp32": r["images_per_s"] / plain[(r["size"], r["batch"])],
        }
        for r in runs
        if r["variant"] != "plain-fp32" and (r["size"], r["batch"]) in plain
    ]


def _crops(batch: int, size: int) -> list[np.ndarray]:
    rng = np.random.default_rng(batch * 1000 + size)
    return list(rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8))
