"""Latency of ``POST /query`` on a real ``python -m service`` process (the test model, CPU).

Run: ``.venv/bin/pytest tests/service/test_service_latency.py -m slow -s``; it prints p50/p95
for one client at a time and throughput for 1 and 4 concurrent clients.
"""

from __future__ import annotations

import concurrent.futures
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from service_process import ServiceProcess
from service_testing import upload

QUERIES = 100


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@pytest.mark.slow
def test_query_latency(
    tmp_path: Path, start_service: Callable[..., ServiceProcess], faces: dict[str, list[Path]]
) -> None:
    photos = [p for paths in faces.values() for p in paths]
    service = start_service(tmp_path / "data")
    with httpx.Client(base_url=service.url, timeout=60) as http:
        for start in range(0, 60, 20):
            batch = [upload(p) for p in photos[start : start + 20]]
            http.post("/gallery", files=batch).raise_for_status()
        queries = [(p.name, p.read_bytes()) for p in photos[60:]]

        def query(i: int) -> float:
            name, data = queries[i % len(queries)]
            begin = time.perf_counter()
            response = http.post("/query", files={"image": (name, data, "image/jpeg")})
            response.raise_for_status()
            return time.perf_counter() - begin

        for i in range(10):
            query(i)  # warm-up: first calls pay for lazy initialisation
        latencies = [query(i) for i in range(QUERIES)]
        p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
        rates = {}
        for clients in (1, 4):
            with concurrent.futures.ThreadPoolExecutor(clients) as pool:
                begin = time.perf_counter()
                list(pool.map(query, range(QUERIES)))
                rates[clients] = QUERIES / (time.perf_counter() - begin)
        server_ms = statistics.median(
            http.post("/query", files={"image": queries[0]}).json()["timings"]["total_ms"]
            for _ in range(20)
        )
    print(
        f"\nPOST /query, 1 client, {QUERIES} queries, gallery of 60: p50 {p50 * 1000:.1f} ms, "
        f"p95 {p95 * 1000:.1f} ms (server-side median {server_ms:.1f} ms); "
        f"throughput {rates[1]:.1f}/s with 1 client, {rates[4]:.1f}/s with 4"
    )
    assert p95 < 5.0, f"p95 of {p95:.2f} s"
