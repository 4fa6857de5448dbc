"""Clustering on the kNN graph (``indexer.people``): checked against brute force and on
vectors whose persons are known."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.checkpoint import ModelInfo
from indexer.people import (
    DEFAULT_THRESHOLD,
    UNASSIGNED,
    Graph,
    _heaviest_label,
    attach,
    cluster,
    components,
    grouping_threshold,
    knn_graph,
    whispers,
)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def people_vectors(sizes: list[int], dim: int = 64, spread: float = 0.06, seed: int = 0):
    """Faces around one random centre per person: same-person cosine ~0.9, others ~0."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(len(sizes), dim)))
    vectors = [
        unit(c + spread * rng.normal(size=(n, dim))) for c, n in zip(centres, sizes, strict=True)
    ]
    truth = np.repeat(np.arange(len(sizes)), sizes)
    return np.concatenate(vectors), truth, centres


def same_partition(found: np.ndarray, truth: np.ndarray) -> bool:
    pairs_found = found[:, None] == found[None, :]
    pairs_true = truth[:, None] == truth[None, :]
    return bool(np.array_equal(pairs_found, pairs_true))


def test_graph_holds_exactly_the_links_above_the_threshold() -> None:
    vectors, _, _ = people_vectors([6, 5, 4])
    graph = knn_graph(vectors, threshold=0.5, k=20)
    sims = vectors @ vectors.T
    expected = {(i, j) for i in range(len(vectors)) for j in range(len(vectors))}
    expected = {(i, j) for i, j in expected if i != j and sims[i, j] >= 0.5}
    assert set(zip(graph.src.tolist(), graph.dst.tolist(), strict=True)) == expected
    assert np.allclose(graph.sim, sims[graph.src, graph.dst], atol=1e-5)


def test_heaviest_label_matches_a_python_loop() -> None:
    rng = np.random.default_rng(3)
    n = 40
    src, dst = rng.integers(0, n, 300), rng.integers(0, n, 300)
    keep = src != dst
    graph = Graph(n, src[keep], dst[keep], rng.random(int(keep.sum())).astype(np.float32))
    labels = rng.integers(0, 6, n)
    expected = labels.copy()
    for node in range(n):
        weights: dict[int, float] = {}
        for s, d, w in zip(graph.src, graph.dst, graph.sim, strict=True):
            if s == node:
                weights[int(labels[d])] = weights.get(int(labels[d]), 0.0) + float(w)
        if weights:
            expected[node] = max(sorted(weights), key=lambda lab: weights[lab])
    assert np.array_equal(_heaviest_label(graph, labels, 7), expected)


def test_persons_are_found_and_strays_left_unassigned() -> None:
    vectors, truth, _ = people_vectors([9, 7, 5])
    strays = unit(np.random.default_rng(9).normal(size=(4, vectors.shape[1])))
    found = cluster(np.concatenate([vectors, strays]), threshold=0.5, min_faces=3)
    assert same_partition(found[: len(truth)], truth)
    assert sorted(np.bincount(found[found >= 0]).tolist()) == [5, 7, 9]
    assert (found[len(truth) :] == UNASSIGNED).all()


def test_groups_below_the_minimum_stay_unassigned() -> None:
    vectors, _, _ = people_vectors([6, 2])
    found = cluster(vectors, threshold=0.5, min_faces=3)
    assert (found[:6] == 0).all() and (found[6:] == UNASSIGNED).all()
    assert (cluster(vectors, threshold=0.5, min_faces=2) >= 0).all()


def test_whispers_do_not_chain_two_persons_through_one_face() -> None:
    """One face halfway between two persons links to both: components join them, whispers
    keep two persons."""
    vectors, truth, centres = people_vectors([12, 12], spread=0.03)
    bridge = unit(centres[0] + centres[1])[None, :]
    both = np.concatenate([vectors, bridge])
    graph = knn_graph(both, threshold=0.5, k=30)
    assert len(np.unique(components(graph))) == 1
    found = whispers(graph)
    assert same_partition(found[:24], truth)
    assert found[24] in (found[0], found[12])


def test_labelled_faces_keep_their_label_and_pull_their_neighbours_in() -> None:
    vectors, truth, _ = people_vectors([8, 8])
    fixed = np.full(len(vectors), -1)
    fixed[[0, 1]] = 0  # two faces of the first person labelled alike
    fixed[8] = 1  # one of the second
    found = cluster(vectors, threshold=0.5, min_faces=3, fixed=fixed)
    assert same_partition(found, truth)
    lone = cluster(vectors[:1], threshold=0.5, min_faces=3, fixed=np.array([0]))
    assert lone.tolist() == [0]  # a labelled face is a person even alone


def test_attach_votes_for_the_nearest_person_above_the_threshold() -> None:
    vectors, truth, centres = people_vectors([6, 6])
    newcomers = unit(np.stack([centres[1], centres[0], -centres[0]]))
    assert attach(newcomers, vectors, truth + 10, threshold=0.5).tolist() == [11, 10, UNASSIGNED]


def test_large_galleries_use_the_approximate_graph_and_still_find_persons() -> None:
    vectors, _, _ = people_vectors([10] * 2100, dim=128, spread=0.05, seed=5)
    found = cluster(vectors, threshold=0.6, min_faces=3)
    assert (found >= 0).mean() > 0.99
    assert len(np.unique(found[found >= 0])) == pytest.approx(2100, abs=10)


def test_a_minimum_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        cluster(np.eye(3, dtype=np.float32), 0.5, min_faces=0)


@pytest.mark.parametrize(
    ("thresholds", "given", "expected"),
    [
        ({"0.01": 0.58, "0.001": 0.73}, None, 0.73),
        ({"0.01": 0.58}, None, 0.58),
        ({}, None, DEFAULT_THRESHOLD),
        ({"0.01": 0.58, "0.001": 0.73}, 0.9, 0.9),
    ],
)
def test_grouping_cuts_at_the_stricter_calibrated_rate(
    thresholds: dict[str, float], given: float | None, expected: float
) -> None:
    """Links chain, so grouping takes the 1-in-1,000 threshold over the 1-in-100 one that
    matches use; a given threshold wins, an uncalibrated model gets the default."""
    info = ModelInfo(arch="resnet18", embedding_dim=8, input_size=32, thresholds=thresholds)
    assert grouping_threshold(info, given) == expected
