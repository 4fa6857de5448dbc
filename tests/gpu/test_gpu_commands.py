"""``python -m indexer build`` and ``python -m service`` on the device, as users run them.

``python -m service`` has no ``--device`` flag yet; the device is its FACEFIND_DEVICE setting,
which is what such a flag would set.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from service_process import REPO, clean_env, free_port

from indexer.checkpoint import load_checkpoint
from indexer.detect import make_detector
from indexer.embedder import Embedder
from indexer.pipeline import FacePipeline
from indexer.store import DB_NAME

pytestmark = pytest.mark.gpu


def _build(photos: Path, store: Path, model: Path, device: str, precision: str = "auto") -> str:
    cmd = [sys.executable, "-m", "indexer", "build", str(photos), "--index", str(store),
           "--model", str(model), "--detector", "none", "--device", device,
           "--precision", precision]  # fmt: skip
    done = subprocess.run(
        cmd, cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _vectors(store: Path) -> dict[str, np.ndarray]:
    with sqlite3.connect(store / DB_NAME) as db:
        rows = db.execute("SELECT source, vector FROM faces").fetchall()
    return {Path(source).name: np.frombuffer(blob, dtype=np.float32) for source, blob in rows}


@pytest.fixture(scope="module")
def device_store(
    device: str, photos: Path, model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    store = tmp_path_factory.mktemp("store")
    out = _build(photos, store, model_path, device)
    assert "gallery: 6 faces" in out, out
    return store


def _cpu_vectors(photos: Path, model: Path) -> dict[str, np.ndarray]:
    """What the build should have stored: the whole image (``--detector none``) through the
    embedder in fp32 on the CPU, in this process (a second build would cost a minute of CI)."""
    net, info = load_checkpoint(model)
    pipeline = FacePipeline(make_detector("none", None), info.crop_size)
    paths = sorted(photos.rglob("*.jpg"))
    crops = [pipeline.from_path(p).faces[0].crop for p in paths]
    vectors = Embedder(net, info, "cpu", "fp32").embed(crops)
    return {p.name: v for p, v in zip(paths, vectors, strict=True)}


def test_indexer_build_on_the_device_stores_the_cpus_vectors(
    device_store: Path, photos: Path, model_path: Path
) -> None:
    ours, reference = _vectors(device_store), _cpu_vectors(photos, model_path)
    assert sorted(ours) == sorted(reference) and len(ours) == 6
    a = np.stack([ours[name] for name in sorted(ours)])
    b = np.stack([reference[name] for name in sorted(ours)])
    assert (a * b).sum(axis=1).min() >= 0.999
    mean = b.mean(axis=0)  # as in test_gpu_embedder: the part that tells inputs apart
    centred = ((a - mean) * (b - mean)).sum(axis=1)
    centred /= np.linalg.norm(a - mean, axis=1) * np.linalg.norm(b - mean, axis=1)
    assert centred.min() >= 0.95, centred


def test_service_on_the_device_answers_a_query(
    device: str, device_store: Path, photos: Path, model_path: Path, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port),
           "--data-dir", str(device_store), "--model", str(model_path), "--detector", "none"]  # fmt: skip
    env = clean_env() | {"FACEFIND_DEVICE": device}
    log = tmp_path / "service.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        _wait_ready(proc, url, log)
        query = photos / "person1" / "photo3.jpg"
        with query.open("rb") as fh:
            reply = httpx.post(f"{url}/query", files={"image": fh}, params={"k": 3}, timeout=120)
        assert reply.status_code == 200, reply.text
        best = reply.json()["faces"][0]["matches"][0]
        assert Path(best["source"]).name == "photo3.jpg" and best["label"] == "person1"
        assert best["similarity"] > 0.99
        reply = httpx.get(f"{url}/info", timeout=30)
        assert reply.status_code == 200, reply.text
        info = reply.json()
        assert info["model"]["device"] == device and info["gallery_size"] == 6
    finally:
        proc.terminate()
        proc.wait(60)


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the service exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/ready", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the service did not get ready:\n{log.read_text()[-3000:]}")
