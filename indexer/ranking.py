"""The protocol's figures from a ranking: top-k and mAP (docs/benchmark-format.md).

Pure NumPy, so that a training run on a machine without FAISS measures exactly what the
benchmarks measure."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TOP_K = (1, 5, 10)


def ranking_metrics(
    order: np.ndarray, query_identities: Sequence[str], gallery_identities: Sequence[str]
) -> dict[str, float]:
    """``order[q]`` ranks the whole gallery for query ``q``, best first."""
    gallery = np.asarray(gallery_identities)
    hits = gallery[order] == np.asarray(query_identities)[:, None]
    metrics = {f"top{k}": float(hits[:, :k].any(axis=1).mean()) for k in TOP_K}
    ranks = np.arange(1, hits.shape[1] + 1)
    precision_at_hit = np.cumsum(hits, axis=1) / ranks
    relevant = hits.sum(axis=1)
    ap = np.where(
        relevant > 0, (precision_at_hit * hits).sum(axis=1) / np.maximum(relevant, 1), 0.0
    )
    metrics["mAP"] = float(ap.mean())
    return metrics


def exact_order(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Every gallery vector by cosine similarity (unit vectors), best first, ties by index."""
    return np.argsort(-(queries @ gallery.T), axis=1, kind="stable")
