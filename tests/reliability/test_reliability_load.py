"""Load: concurrent clients send mixed queries and adds to a real server on 127.0.0.1.

No request may fail (no 5xx, no dropped connection), resident memory must stay flat once warm,
open file descriptors must not pile up; latency percentiles and throughput are reported.
The default run is short (8 clients, 3 s warm-up + 8 s); ``scripts/reliability.sh`` runs
16 clients for 10 s + 60 s via ``RELIABILITY_LOAD_CLIENTS``, ``RELIABILITY_LOAD_WARMUP_SECONDS``
and ``RELIABILITY_LOAD_SECONDS``.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from reliability_testing import (
    StartService,
    assert_clean_log,
    env_int,
    percentiles,
    report,
    server_errors,
)

CLIENTS = env_int("LOAD_CLIENTS", 8)
WARMUP_S = env_int("LOAD_WARMUP_SECONDS", 3)
MEASURE_S = env_int("LOAD_SECONDS", 8)
QUERY_SHARE = 0.8
RSS_GROWTH_LIMIT = 150 * 2**20
"""Allowed growth of resident memory after warm-up: 150 MB (the process holds ~0.9 GB)."""


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"query": [], "add": []})
    statuses: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    stored: int = 0
    """New gallery entries that adds reported (not duplicates)."""


def client(
    url: str,
    queries: list[Path],
    adds: list[Path],
    take: threading.Lock,
    tally: Tally,
    measure_from: float,
    until: float,
    rng: random.Random,
) -> None:
    """One user: 80% searches with a known face, 20% adds of a new photo, as fast as answered."""
    with httpx.Client(base_url=url, timeout=120) as http:
        while time.monotonic() < until:
            if rng.random() < QUERY_SHARE:
                kind, photo = "query", rng.choice(queries)
            else:
                with take:
                    if not adds:
                        return
                    kind, photo = "add", adds.pop()
            files = {("image" if kind == "query" else "images"): (photo.name, photo.read_bytes())}
            path, params = ("/query", {"k": 10}) if kind == "query" else ("/gallery", {})
            start = time.monotonic()
            try:
                answer = http.post(path, files=files, params=params)
            except httpx.TransportError as exc:
                with tally.lock:
                    tally.errors.append(f"{kind}: {exc!r}")
                return
            took = time.monotonic() - start
            with tally.lock:
                tally.statuses[f"{kind} {answer.status_code}"] += 1
                if start >= measure_from:
                    tally.latencies[kind].append(took)
                if kind == "add" and answer.status_code == 200:
                    tally.stored += sum(not e["duplicate"] for e in answer.json()["added"])
                if answer.status_code >= 500 or (kind == "query" and answer.status_code != 200):
                    tally.errors.append(f"{kind} {answer.status_code}: {answer.text[:200]}")


def test_concurrent_queries_and_adds_hold_without_errors_or_leaks(
    tmp_path: Path, start_service: StartService, face_photos: list[Path], lfw_photos: list[Path]
) -> None:
    rng = random.Random(env_int("SEED", 0))
    service = start_service(tmp_path / "data")
    process = psutil.Process(service.pid)
    with httpx.Client(base_url=service.url, timeout=120) as http:
        for start in range(0, 60, 10):  # a gallery to search: 60 faces
            files = [("images", (p.name, p.read_bytes())) for p in face_photos[start : start + 10]]
            assert http.post("/gallery", files=files).status_code == 200
        before = http.get("/info").json()["gallery_size"]

    tally, take = Tally(), threading.Lock()
    adds = rng.sample(lfw_photos, 4000)
    began = time.monotonic()
    measure_from, until = began + WARMUP_S, began + WARMUP_S + MEASURE_S
    args = (service.url, face_photos, adds, take, tally, measure_from, until)
    threads = [
        threading.Thread(target=client, args=(*args, random.Random(rng.random())))
        for _ in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    samples: list[tuple[float, int, int]] = []  # (seconds since start, RSS, open fds)
    while any(t.is_alive() for t in threads) and time.monotonic() < until + 120:
        samples.append((time.monotonic() - began, process.memory_info().rss, process.num_fds()))
        time.sleep(0.5)
    for thread in threads:
        thread.join(120)
    elapsed = time.monotonic() - measure_from

    assert not tally.errors, tally.errors[:10]
    warm = [s for s in samples if s[0] >= WARMUP_S]
    assert len(warm) >= 4, samples
    baseline = warm[0][1]
    steady = warm[len(warm) // 2 :]
    growth = max(s[1] for s in steady) - baseline
    fds = (warm[0][2], warm[-1][2])
    queries, added = tally.latencies["query"], tally.latencies["add"]
    with httpx.Client(base_url=service.url, timeout=120) as http:
        assert server_errors(http) == {}
        size = http.get("/info").json()["gallery_size"]
    assert size == before + tally.stored  # every add reported is stored
    assert_clean_log(service.text())
    mb = 2**20
    report(
        "load",
        {
            "clients": CLIENTS,
            "warmup_s": WARMUP_S,
            "measured_s": round(elapsed, 1),
            "mix": f"{QUERY_SHARE:.0%} POST /query (k=10), rest POST /gallery (1 new photo)",
            "statuses": dict(tally.statuses),
            "throughput_per_s": round((len(queries) + len(added)) / elapsed, 1),
            "query": percentiles(queries),
            "add": percentiles(added),
            "all": percentiles(queries + added),
            "gallery_faces": [before, size],
            "rss_mb_after_warmup": round(baseline / mb, 1),
            "rss_mb_halfway": round(steady[0][1] / mb, 1),
            "rss_mb_max_second_half": round(max(s[1] for s in steady) / mb, 1),
            "rss_mb_end": round(warm[-1][1] / mb, 1),
            "rss_growth_mb": round(growth / mb, 1),
            "open_fds_after_warmup_and_end": list(fds),
        },
    )
    assert queries and added
    assert growth < RSS_GROWTH_LIMIT, f"resident memory grew by {growth / mb:.0f} MB"
    assert fds[1] <= fds[0] + 2 * CLIENTS, fds
