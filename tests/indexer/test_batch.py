"""One image that breaks a decoder or detector in an unforeseen way must not end a build."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from indexer.batch import process_images
from indexer.faceflow import FlowSpec
from indexer.pipeline import FacePipeline


def test_an_unexpected_fault_on_one_image_is_reported_and_the_rest_go_on(
    gallery_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = sorted(gallery_dir.rglob("*.jpg"))[:4]
    bad = str(paths[1])
    real = FacePipeline.from_bytes

    def flaky(self: FacePipeline, data: bytes, name: str = "image", **kwargs: object):
        if name == bad:
            raise ValueError("detector fault")
        return real(self, data, name=name, **kwargs)

    monkeypatch.setattr(FacePipeline, "from_bytes", flaky)
    spec = FlowSpec("none", None, crop_size=64, max_pixels=10_000_000)
    results = list(process_images(paths, spec, workers=1))

    assert [r.path for r in results] == paths
    assert results[1].error == "ValueError: detector fault" and results[1].faces is None
    assert all(r.error is None and r.faces is not None for i, r in enumerate(results) if i != 1)


def test_workers_end_when_the_build_is_killed(
    tmp_path: Path, shared_data: Path, model_path: Path
) -> None:
    """SIGKILL leaves no pool shutdown behind: the workers must notice on their own."""
    cmd = [sys.executable, "-m", "indexer", "build", str(shared_data / "lfw"), "--index",
           str(tmp_path / "index"), "--model", str(model_path), "--workers", "2"]  # fmt: skip
    build = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        while len(workers) < 2 and build.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            workers = [
                p
                for p in psutil.Process(build.pid).children()
                if "spawn_main" in " ".join(p.cmdline())
            ]
        assert len(workers) == 2, "the build never started its worker processes"
    finally:
        build.kill()
        build.wait()
    _, alive = psutil.wait_procs(workers, timeout=15)
    for process in alive:
        process.kill()
    assert alive == [], "worker processes outlived the killed build"
