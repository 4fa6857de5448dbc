"""The micro-batcher, around the real embedder."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from indexer.decode import read_image
from indexer.embedder import Embedder, load_embedder
from service.batcher import MicroBatcher


@pytest.fixture(scope="module")
def embedder(model_path: Path) -> Embedder:
    return load_embedder(model_path, precision="fp32")


@pytest.fixture(scope="module")
def crops(faces: dict[str, list[Path]], embedder: Embedder) -> list[np.ndarray]:
    import cv2

    size = embedder.input_size
    return [cv2.resize(read_image(p), (size, size)) for paths in faces.values() for p in paths[:2]]


def test_concurrent_requests_share_forward_passes_and_get_their_own_rows(
    embedder: Embedder, crops: list[np.ndarray]
) -> None:
    batches: list[int] = []
    batcher = MicroBatcher(embedder.embed, embedder.embedding_dim, max_batch=32, wait_s=0.5,
                           on_batch=lambda n, _: batches.append(n))  # fmt: skip
    requests = [crops[i : i + 2] for i in range(0, len(crops), 2)]
    results: dict[int, np.ndarray] = {}
    start = threading.Barrier(len(requests))

    def run(i: int) -> None:
        start.wait()
        results[i] = batcher.submit(requests[i]).result(timeout=60)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.close()
    assert sum(batches) == len(crops) and len(batches) < len(requests)
    alone = embedder.embed(crops)
    for i, request in enumerate(requests):
        assert results[i].shape == (len(request), embedder.embedding_dim)
        np.testing.assert_allclose(results[i], alone[2 * i : 2 * i + 2], atol=1e-4)


def test_a_full_batch_does_not_wait(embedder: Embedder, crops: list[np.ndarray]) -> None:
    batcher = MicroBatcher(embedder.embed, embedder.embedding_dim, max_batch=4, wait_s=30.0)
    vectors = batcher.submit(crops[:4]).result(timeout=20)
    assert vectors.shape == (4, embedder.embedding_dim)
    batcher.close()


def test_errors_reach_their_callers_and_the_worker_survives(
    embedder: Embedder, crops: list[np.ndarray]
) -> None:
    batcher = MicroBatcher(embedder.embed, embedder.embedding_dim, wait_s=0.0)
    wrong = batcher.submit([np.zeros((8, 8), dtype=np.uint8)])
    with pytest.raises(RuntimeError):
        wrong.result(timeout=20)
    assert batcher.submit(crops[:1]).result(timeout=20).shape == (1, embedder.embedding_dim)
    assert batcher.submit([]).result(timeout=1).shape == (0, embedder.embedding_dim)
    batcher.close()
    with pytest.raises(RuntimeError, match="shut down"):
        batcher.submit(crops[:1])


def test_close_finishes_the_queued_jobs(embedder: Embedder, crops: list[np.ndarray]) -> None:
    batcher = MicroBatcher(embedder.embed, embedder.embedding_dim, max_batch=2, wait_s=0.0)
    futures = [batcher.submit([crop]) for crop in crops[:6]]
    batcher.close()
    assert all(f.done() and f.result().shape == (1, embedder.embedding_dim) for f in futures)
