"""The one way from an image to faces, vectors and gallery matches.

Every entry point (``python -m indexer build|search|evaluate``, the service, training's
``prepare`` and ``pack``) builds its pipeline from a ``FlowSpec`` made by ``flow_spec``, turns
detected faces into gallery rows with ``new_faces`` and reports matches with ``match_dict``,
so that what is cropped, stored and answered is the same everywhere.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from indexer.align import BOX, Alignment
from indexer.decode import DEFAULT_MAX_PIXELS
from indexer.defaults import DEFAULT_DETECTOR_MODEL, FETCH_DETECTOR
from indexer.detect import make_detector
from indexer.pipeline import FaceMode, FacePipeline, ImageFaces, encode_jpeg
from indexer.records import Match, NewFace
from indexer.settings import FaceFlowSettings

if TYPE_CHECKING:  # the worker processes that run the pipeline never import torch
    from indexer.checkpoint import ModelInfo

log = logging.getLogger(__name__)

DEFAULT_FALSE_ACCEPT_RATE = "0.01"
"""The calibrated threshold ``same_person`` and ``min_similarity=auto`` use by default: at
most 1 in 100 pairs of different people passes it."""


@dataclass(frozen=True)
class FlowSpec:
    """Everything needed to rebuild the same pipeline in any thread or process (it pickles)."""

    detector: str
    detector_model: Path | None
    crop_size: int
    alignment: Alignment = BOX
    max_pixels: int = DEFAULT_MAX_PIXELS
    mode: FaceMode = "largest"

    def pipeline(self) -> FacePipeline:
        detector = make_detector(self.detector, self.detector_model)
        return FacePipeline(
            detector, self.crop_size, max_pixels=self.max_pixels, alignment=self.alignment
        )

    @property
    def crops(self) -> str:
        """What the embedder is fed: aligned faces only where the detector gives landmarks."""
        aligned = self.alignment.kind == "template" and self.detector == "yunet"
        return "aligned" if aligned else "box"


def flow_spec(info: ModelInfo, faces: FaceFlowSettings, mode: FaceMode = "largest") -> FlowSpec:
    """The pipeline for a model: its crop size and alignment, the chosen detector (YuNet
    falls back to Haar, with one warning, where its model file is not installed)."""
    detector, detector_model = resolve_detector(faces.detector, faces.detector_model)
    spec = FlowSpec(
        detector, detector_model, info.crop_size, info.alignment, faces.max_pixels, mode
    )
    spec.pipeline()  # a bad detector name or an unreadable model file fails here, in one line
    return spec


def resolve_detector(name: str, model: Path | None) -> tuple[str, Path | None]:
    """YuNet with no file given uses the installed copy; without one, Haar serves instead."""
    if name != "yunet" or model is not None:
        return name, model
    if DEFAULT_DETECTOR_MODEL.is_file():
        return name, DEFAULT_DETECTOR_MODEL
    _warn_no_yunet()
    return "haar", None


@functools.cache
def _warn_no_yunet() -> None:
    log.warning(
        "YuNet's model file is not installed (%s): detecting with Haar instead, which finds "
        "fewer faces and no landmarks to align them by. Fix: %s",
        DEFAULT_DETECTOR_MODEL,
        FETCH_DETECTOR,
    )


def vector_space(info: ModelInfo, spec: FlowSpec) -> str:
    """What a gallery's vectors are comparable by: the model, and the crops it was fed.

    A model trained on aligned faces but fed box crops (no landmarks) makes other vectors, so
    a gallery records that too and refuses to mix them."""
    if info.alignment.kind == "template" and spec.crops == "box":
        return f"{info.fingerprint}:box"
    return info.fingerprint


def new_faces(
    image: ImageFaces,
    vectors: np.ndarray,
    source: str,
    label: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> list[NewFace]:
    """Gallery rows for the faces of one image, with their crops and landmarks."""
    return [
        NewFace(
            vector=vector,
            source=source,
            content_hash=image.content_hash,
            box=face.box,
            score=face.score,
            face_found=face.detected,
            label=label,
            metadata=dict(metadata or {}),
            crop_jpeg=encode_jpeg(face.crop),
            landmarks=[(float(x), float(y)) for x, y in face.landmarks] if face.landmarks else None,
        )
        for face, vector in zip(image.faces, vectors, strict=True)
    ]


def threshold(info: ModelInfo, false_accept_rate: str = DEFAULT_FALSE_ACCEPT_RATE) -> float | None:
    """The model's calibrated "same person" similarity, if it was calibrated."""
    return info.thresholds.get(false_accept_rate)


def match_dict(match: Match, same_person_at: float | None) -> dict[str, Any]:
    """One match as every interface reports it."""
    r = match.record
    return {
        "id": r.id,
        "label": r.label,
        "similarity": round(float(match.similarity), 4),
        "same_person": None if same_person_at is None else bool(match.similarity >= same_person_at),
        "source": r.source,
        "box": list(r.box),
        "landmarks": [list(p) for p in r.landmarks] if r.landmarks else None,
        "metadata": r.metadata,
    }


def face_dict(image: ImageFaces, index: int) -> dict[str, Any]:
    """One query face as every interface reports it (matches added by the caller)."""
    face = image.faces[index]
    return {
        "box": list(face.box),
        "score": round(float(face.score), 4),
        "detected": face.detected,
        "landmarks": [[round(x, 1), round(y, 1)] for x, y in face.landmarks]
        if face.landmarks
        else None,
    }


def crops_of(images: Sequence[ImageFaces]) -> list[np.ndarray]:
    return [face.crop for image in images for face in image.faces]
