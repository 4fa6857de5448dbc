"""Top-k and mAP of indexer.evaluate against a plain Python loop over random data."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.evaluate import retrieval_metrics
from indexer.ranking import TOP_K


def _brute_force(
    queries: np.ndarray, query_ids: list[str], gallery: np.ndarray, gallery_ids: list[str]
) -> dict[str, float]:
    """The definitions, one query and one rank at a time, with nothing vectorised."""
    top = dict.fromkeys(TOP_K, 0.0)
    average_precisions = []
    for q, identity in zip(queries, query_ids, strict=True):
        sims = [float(np.dot(q.astype(np.float64), g.astype(np.float64))) for g in gallery]
        ranking = sorted(range(len(gallery)), key=lambda i: -sims[i])
        relevant = [gallery_ids[i] == identity for i in ranking]
        for k in TOP_K:
            top[k] += any(relevant[:k])
        hits, precisions = 0, []
        for rank, is_hit in enumerate(relevant, start=1):
            if is_hit:
                hits += 1
                precisions.append(hits / rank)
        average_precisions.append(sum(precisions) / len(precisions) if precisions else 0.0)
    metrics = {f"top{k}": top[k] / len(queries) for k in TOP_K}
    metrics["mAP"] = sum(average_precisions) / len(average_precisions)
    return metrics


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_a_brute_force_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_queries, n_gallery, dim = int(rng.integers(5, 40)), int(rng.integers(12, 80)), 16
    people = [f"p{i}" for i in range(int(rng.integers(3, 15)))]
    # A shared direction per person makes the rankings neither perfect nor random; some
    # query identities are absent from the gallery (AP 0, never a top-k hit).
    centres = rng.normal(size=(len(people) + 2, dim))
    query_people = rng.integers(0, len(people) + 2, n_queries)
    gallery_people = rng.integers(0, len(people), n_gallery)
    queries = centres[query_people] + rng.normal(scale=1.5, size=(n_queries, dim))
    gallery = centres[gallery_people] + rng.normal(scale=1.5, size=(n_gallery, dim))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    gallery = (gallery / np.linalg.norm(gallery, axis=1, keepdims=True)).astype(np.float32)
    names = [*people, "stranger-a", "stranger-b"]
    query_ids = [names[i] for i in query_people]
    gallery_ids = [names[i] for i in gallery_people]

    got = retrieval_metrics(queries, query_ids, gallery, gallery_ids)
    expected = _brute_force(queries, query_ids, gallery, gallery_ids)
    assert got == pytest.approx(expected, abs=1e-9)
    assert 0.0 < expected["mAP"] < 1.0


def test_a_perfect_and_a_hopeless_ranking() -> None:
    gallery = np.eye(4, dtype=np.float32)
    assert retrieval_metrics(gallery, list("abcd"), gallery, list("abcd")) == pytest.approx(
        {"top1": 1.0, "top5": 1.0, "top10": 1.0, "mAP": 1.0}
    )
    none = retrieval_metrics(gallery, list("wxyz"), gallery, list("abcd"))
    assert none == pytest.approx({"top1": 0.0, "top5": 0.0, "top10": 0.0, "mAP": 0.0})
