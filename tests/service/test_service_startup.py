"""Time from ``python -m service`` to its first answers, as a newcomer starts it (issue 14).

A benchmark, not a timed test: it prints the figures and fails only if the service does not
answer. Run: ``.venv/bin/pytest tests/service/test_service_startup.py -m slow -s``. The shipped
model, the default (Haar) detector, compiling on (FACEFIND_COMPILE unset), an empty gallery.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from service_process import REPO, clean_env, free_port

SHIPPED_MODEL = REPO / "models" / "facefind-resnet50.pt"
COMPILE_WAIT = 1200.0
"""How long to wait for the compiled embedder (on a busy machine it may take longer, which
the figures then say)."""


def wait_for(http: httpx.Client, path: str, proc: subprocess.Popen[bytes]) -> float:
    """Seconds until ``path`` answers 200 (polled every 50 ms)."""
    start = time.perf_counter()
    while proc.poll() is None:
        try:
            if http.get(path, timeout=5).status_code == 200:
                return time.perf_counter() - start
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"the service exited ({proc.returncode}) before {path} answered")


@pytest.mark.slow
def test_time_to_first_answer(tmp_path: Path, faces: dict[str, list[Path]]) -> None:
    if not SHIPPED_MODEL.is_file():
        pytest.skip(f"the shipped model is missing: {SHIPPED_MODEL}")
    env = {k: v for k, v in clean_env().items() if k != "FACEFIND_COMPILE"}
    port = free_port()
    cmd = [sys.executable, "-m", "service", "--port", str(port), "--data-dir", str(tmp_path / "d")]
    log = tmp_path / "service.log"
    photo = faces["ben_afflek"][0]
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            health = wait_for(http, "/health", proc)
            files = [("images", (photo.name, photo.read_bytes(), "image/jpeg"))]
            http.post(
                "/gallery", files=files, data={"label": "ben"}, timeout=120
            ).raise_for_status()
            image = {"image": (photo.name, photo.read_bytes(), "image/jpeg")}
            answer = http.post("/query", files=image, timeout=120)
            first_query = time.perf_counter() - started
            cpu = psutil.Process(proc.pid).cpu_times()
            assert answer.json()["faces"][0]["matches"][0]["label"] == "ben"
            state = http.get("/ready").json()["embedder"]
            print(
                f"\n/health after {health:.1f} s; enrolled and first query answered "
                f"{first_query:.1f} s after start (embedder {state}; the process had used "
                f"{cpu.user + cpu.system:.1f} CPU s); load average {psutil.getloadavg()[0]:.1f}",
                flush=True,
            )
            slowest = 0.0  # the longest /ready while compiling: how much the event loop stalls
            while time.perf_counter() - started < COMPILE_WAIT:
                asked = time.perf_counter()
                final = http.get("/ready").json()["embedder"]
                slowest = max(slowest, time.perf_counter() - asked)
                if final != "compiling":
                    break
                time.sleep(1)
            compiled = time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(120)
    print(f"embedder {final} after {compiled:.0f} s; slowest /ready meanwhile {slowest:.2f} s")
    print("".join(line for line in log.open() if "GET /ready" not in line))
