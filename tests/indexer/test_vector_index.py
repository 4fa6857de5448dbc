from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexer.vector_index import VectorIndex, choose_index


def _clustered(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    """Face-like data: many identities, a few nearby vectors each, unit length."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n // 4 + 1, dim))
    vectors = centres[np.arange(n) // 4] + 0.3 * rng.normal(size=(n, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_index_choice_follows_gallery_size() -> None:
    assert choose_index(1_000, 256) == "Flat"
    assert choose_index(100_000, 256) == "Flat"
    assert choose_index(1_000_000, 256).startswith("IVF4096,")
    assert "PQ64" in choose_index(50_000_000, 256)


def test_exact_search_returns_ids_best_first() -> None:
    vectors = _clustered(200)
    ids = np.arange(1000, 1200)
    index = VectorIndex.build(ids, vectors, 32)
    sims, found = index.search(vectors[:5], 3)
    assert found[:, 0].tolist() == [1000, 1001, 1002, 1003, 1004]
    assert np.all(np.diff(sims, axis=1) <= 1e-6)
    np.testing.assert_allclose(sims[:, 0], 1.0, atol=1e-5)


def test_remove_save_and_load(tmp_path: Path) -> None:
    vectors = _clustered(100)
    index = VectorIndex.build(np.arange(100), vectors, 32)
    assert index.remove(np.array([0, 1]))
    assert index.ntotal == 98
    index.save(tmp_path / "i.faiss")
    loaded = VectorIndex.load(tmp_path / "i.faiss", "Flat")
    _, found = loaded.search(vectors[:1], 1)
    assert found[0, 0] != 0 and loaded.ntotal == 98


def test_ivf_recall_against_exact() -> None:
    vectors = _clustered(20_000)
    ids = np.arange(len(vectors))
    exact = VectorIndex.build(ids, vectors, 32, "Flat")
    approx = VectorIndex.build(ids, vectors, 32, "IVF256,Flat")
    queries = vectors[::200] + 0.05
    _, truth = exact.search(queries, 10)
    recalls = []
    for nprobe in (approx.nprobe, 64):
        approx.nprobe = nprobe
        _, got = approx.search(queries, 10)
        recalls.append(
            np.mean([len(set(t) & set(g)) / 10 for t, g in zip(truth, got, strict=True)])
        )
    assert recalls[0] >= 0.7 and recalls[1] >= 0.95 and recalls[1] > recalls[0]
    assert approx.remove(np.array([5]))


def test_hnsw_cannot_remove_so_the_caller_is_told() -> None:
    vectors = _clustered(300)
    index = VectorIndex.build(np.arange(300), vectors, 32, "HNSW16,Flat")
    assert index.remove(np.array([1])) is False


def test_too_few_vectors_to_train_falls_back_to_exact() -> None:
    index = VectorIndex.build(np.arange(50), _clustered(50), 32, "IVF1024,Flat")
    assert index.factory == "Flat" and index.ntotal == 50


def test_bad_factory_string_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="invalid FAISS index factory"):
        VectorIndex(32, "NoSuchIndex42")
