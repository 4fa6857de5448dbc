"""The gallery's record types, shared by the store, the CLI and the service."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

Box = tuple[int, int, int, int]
Landmarks = list[tuple[float, float]]
"""Five (x, y) points in image pixels: eyes, nose tip, mouth corners, as the detector gives them."""


@dataclass
class NewFace:
    """A face about to be stored: its vector and everything known about where it came from."""

    vector: np.ndarray
    source: str
    content_hash: str
    box: Box
    score: float
    face_found: bool
    label: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    crop_jpeg: bytes | None = None
    landmarks: Landmarks | None = None


@dataclass
class FaceRecord:
    """A stored face as read back; ``landmarks`` is None for faces stored without them."""

    id: str
    label: str | None
    source: str
    content_hash: str
    box: Box
    score: float
    face_found: bool
    metadata: dict[str, Any]
    model: str
    created: float
    landmarks: Landmarks | None = None


@dataclass
class Match:
    """One search hit: a stored face and its cosine similarity to the query."""

    record: FaceRecord
    similarity: float
