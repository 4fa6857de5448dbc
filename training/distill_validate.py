"""Validation on the held-out identities of a pack: the retrieval protocol's figures and the
calibrated "same person" similarity at fixed false-accept rates."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from indexer.model import EmbeddingNet
from indexer.ranking import exact_order, ranking_metrics
from training.augment import to_input
from training.distill_data import DistillData

FALSE_ACCEPT_RATES = (0.01, 0.001)
MAX_PER_IDENTITY = 40


@torch.no_grad()
def embed(
    model: EmbeddingNet, crops: torch.Tensor, size: int, dtype: torch.dtype, flip: bool = False
) -> np.ndarray:
    """Raw vectors; with ``flip``, each crop's plus its mirror image's, as the Embedder does
    for a model that records ``flip_average``."""
    model.eval()
    out = []
    for start in range(0, len(crops), 128):
        x = to_input(crops[start : start + 128], size)
        with torch.autocast(x.device.type, dtype=dtype, enabled=dtype != torch.float32):
            vectors = model(x).float()
            if flip:
                vectors += model(x.flip(3)).float()
        out.append(vectors.cpu())
    return torch.cat(out).numpy()


def validate(
    model: EmbeddingNet,
    data: DistillData,
    size: int,
    device: torch.device,
    dtype: torch.dtype,
    flip: bool = False,
) -> dict[str, float]:
    """The held-out identities' protocol figures and calibration, embedded as served."""
    index = torch.from_numpy(data.val).to(device)
    vectors = embed(model, data.crops[index], size, dtype, flip)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    identities = data.identities[data.val]
    metrics = protocol_metrics(vectors, identities)
    metrics.update(calibrate(vectors, identities))
    return metrics


def protocol_metrics(vectors: np.ndarray, identities: np.ndarray) -> dict[str, float]:
    """benchmarks/PROTOCOL.md: per identity at most 40 images, every fourth a query, the
    rest (and identities of one image) the gallery."""
    rows: dict[str, list[int]] = defaultdict(list)
    for i, name in enumerate(identities):
        rows[str(name)].append(i)
    queries: list[int] = []
    gallery: list[int] = []
    for members in rows.values():
        if len(members) == 1:
            gallery += members
            continue
        for n, i in enumerate(members[:MAX_PER_IDENTITY]):
            (queries if n % 4 == 0 else gallery).append(i)
    order = exact_order(vectors[queries], vectors[gallery])
    return ranking_metrics(order, identities[queries].tolist(), identities[gallery].tolist())


def calibrate(vectors: np.ndarray, identities: np.ndarray) -> dict[str, float]:
    """The cosine similarity above which at most a share FAR of different people's pairs
    fall, and the share of same-person pairs above it (true-accept rate)."""
    sims = vectors @ vectors.T
    same = identities[:, None] == identities[None, :]
    upper = np.triu(np.ones_like(same), k=1)
    genuine, impostor = sims[same & upper], sims[~same & upper]
    out: dict[str, float] = {}
    for far in FALSE_ACCEPT_RATES:
        threshold = float(np.quantile(impostor, 1.0 - far))
        out[f"threshold_far_{far:g}"] = threshold
        out[f"tar_far_{far:g}"] = float((genuine > threshold).mean()) if len(genuine) else 0.0
    return out


def thresholds(metrics: dict[str, float]) -> dict[str, float]:
    """The checkpoint's ``thresholds`` entry from ``calibrate``'s figures, keyed by rate."""
    return {f"{far:g}": metrics[f"threshold_far_{far:g}"] for far in FALSE_ACCEPT_RATES}
