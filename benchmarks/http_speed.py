"""``POST /query`` end to end: a real ``python -m service`` on loopback, real HTTP clients.

One client in a loop gives the latency a user sees (p50/p95/p99) and, from the timings every
response carries, where the time goes (decode, detect, embed, search, and HTTP around them).
Then 1, 4 and 16 clients at once give throughput: more at 16 than at 1 means the service's
micro-batching shares the embedder's forward passes. The clients run in this process, on the
same CPU as the server, as they would on a one-machine deployment.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from benchmarks.common import YUNET, percentiles, python_cmd, shown

STAGES = ("decode", "detect", "embed", "search", "total")
TARGET_P50_MS = 60.0


@dataclass(frozen=True)
class HttpPlan:
    latency_requests: int = 200
    per_client: int = 40
    levels: tuple[int, ...] = (1, 4, 16)
    warmup: int = 10
    detector: str = "yunet"


def query_photo(source: Path, longest: int = 500) -> tuple[bytes, dict[str, Any]]:
    """A JPEG of ``source`` scaled so that its longest side is ``longest`` pixels."""
    image = Image.open(source).convert("RGB")
    scale = longest / max(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    return data, {
        "source": str(source),
        "width": image.width,
        "height": image.height,
        "bytes": len(data),
    }


def run(model: str, data_dir: Path, photo: Path, plan: HttpPlan, log_file: Path) -> dict[str, Any]:
    body, photo_info = query_photo(photo)
    with serve(model, data_dir, plan.detector, log_file) as url:
        info = httpx.get(f"{url}/info", timeout=30).json()
        asyncio.run(_clients(url, body, 1, plan.warmup))
        single = asyncio.run(_clients(url, body, 1, plan.latency_requests))
        levels = [asyncio.run(_clients(url, body, c, plan.per_client * c)) for c in plan.levels]
    by_level = {row["clients"]: row["throughput_rps"] for row in levels}
    low, high = min(plan.levels), max(plan.levels)
    return {
        "server": {
            "command": shown(service_cmd(model, data_dir, plan.detector)),
            "detector": plan.detector,
            "index_type": info["index_type"],
            "gallery_size": info["gallery_size"],
            "device": info["model"]["device"],
            "precision": info["model"]["precision"],
            "compiled": info["model"].get("compiled", False),
            "input_size": info["model"]["input_size"],
        },
        "query_photo": photo_info,
        "single_client": single,
        "concurrency": levels,
        "targets": {
            "p50_ms": TARGET_P50_MS,
            "p50_met": single["p50_ms"] < TARGET_P50_MS,
            "batching_met": by_level[high] > by_level[low],
        },
    }


def service_cmd(model: str, data_dir: Path, detector: str) -> list[str]:
    """The service as timed: this store, this model, this detector (YuNet from ../shared)."""
    cmd = python_cmd("service", "--data-dir", str(data_dir), "--model", model)
    cmd += ["--detector", detector]
    if detector == "yunet":
        cmd += ["--detector-model", str(YUNET)]
    return cmd


@contextmanager
def serve(model: str, data_dir: Path, detector: str, log_file: Path) -> Iterator[str]:
    """``python -m service`` on a free loopback port until the block ends; yields its URL."""
    port = _free_port()
    cmd = [*service_cmd(model, data_dir, detector), "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "FACEFIND_LOG_LEVEL": "warning"}
    env.pop("FACEFIND_COMPILE", None)  # the service as shipped
    with log_file.open("w") as log:
        server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url, server, log_file)
            yield url
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


async def _clients(url: str, body: bytes, clients: int, requests: int) -> dict[str, Any]:
    """``clients`` connections sending ``requests`` queries in all; latencies as clients see them."""
    latencies: list[float] = []
    stages: dict[str, list[float]] = {s: [] for s in STAGES}
    overhead: list[float] = []
    remaining = requests
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:

        async def one_client() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter()
                response = await client.post(
                    "/query", params={"k": 10}, files={"image": ("query.jpg", body, "image/jpeg")}
                )
                elapsed_ms = (time.perf_counter() - start) * 1000.0
                response.raise_for_status()
                timings = response.json()["timings"]
                latencies.append(elapsed_ms)
                for stage in STAGES:
                    stages[stage].append(timings[f"{stage}_ms"])
                overhead.append(elapsed_ms - timings["total_ms"])

        start = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        seconds = time.perf_counter() - start
    split = {stage: statistics.median(v) for stage, v in stages.items() if v}
    split["http_and_queueing"] = statistics.median(overhead) if overhead else float("nan")
    return {
        "clients": clients,
        "requests": len(latencies),
        "seconds": seconds,
        "throughput_rps": len(latencies) / seconds,
        **percentiles(latencies),
        "stages_median_ms": split,
    }


def _wait_ready(
    url: str, server: subprocess.Popen[bytes], log_file: Path, limit: float = 600
) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the service exited ({server.returncode}):\n{_tail(log_file)}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the service was not ready after {limit:.0f} s:\n{_tail(log_file)}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
