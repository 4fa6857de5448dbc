"""Validation by the retrieval protocol (PROTOCOL.md), never by triplet accuracy.

The validation crops are made once; each epoch only embeds them with the current network
through the indexer's own ``Embedder``, so the figures are what serving would measure.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from indexer.checkpoint import ModelInfo
from indexer.embedder import Embedder
from indexer.errors import FacefindError
from indexer.evaluate import read_manifest, retrieval_metrics
from indexer.faceflow import FlowSpec
from indexer.model import EmbeddingNet
from training.data import Sample, load_rgb
from training.faces import crop_faces

log = logging.getLogger(__name__)


@dataclass
class ValidationSet:
    crops: list[np.ndarray]
    identities: np.ndarray
    is_query: np.ndarray
    face_found: float

    def __len__(self) -> int:
        return len(self.crops)


def from_manifest(
    manifest: Path, root: Path, size: int, detector: str, detector_model: Path | None, workers: int
) -> ValidationSet:
    """Crop a benchmark's raw photos exactly as the protocol does (largest face, fallback).

    Box crops: what ``validate`` embeds them as, and what a trained checkpoint declares."""
    rows = read_manifest(manifest, root)
    paths = [r.path for r in rows]
    spec = FlowSpec(detector, detector_model, size)
    results = list(crop_faces(paths, spec, workers, "validation crops"))
    bad = [r for r in results if r.crop is None]
    if bad:
        raise FacefindError(f"a validation image could not be read: {bad[0].error}")
    return ValidationSet(
        [r.crop for r in results if r.crop is not None],
        np.array([r.identity for r in rows]),
        np.array([r.role == "query" for r in rows]),
        float(np.mean([r.face_found for r in results])),
    )


def from_samples(samples: Sequence[tuple[Sample, str]], size: int) -> ValidationSet:
    """Prepared crops resized to the input size, as serving crops straight to that size."""
    crops = [
        cv2.resize(load_rgb(s.path), (size, size), interpolation=cv2.INTER_AREA) for s, _ in samples
    ]
    return ValidationSet(
        crops,
        np.array([s.identity for s, _ in samples]),
        np.array([role == "query" for _, role in samples]),
        1.0,
    )


def validate(
    model: EmbeddingNet, valset: ValidationSet, size: int, device: str, precision: str
) -> dict[str, float]:
    """top-1/5/10 and mAP; leaves the model in eval mode (the caller switches back)."""
    info = ModelInfo(model.arch, model.embedding_dim, size)
    vectors = Embedder(model, info, device=device, precision=precision).embed(valset.crops, 64)
    q = valset.is_query
    return retrieval_metrics(vectors[q], valset.identities[q], vectors[~q], valset.identities[~q])
