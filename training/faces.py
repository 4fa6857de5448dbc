"""Crop many photos with the indexer's own face flow and process pool.

Training must see the crops serving sees, so this goes through ``indexer.batch`` with a
``FlowSpec`` (largest face, whole-image fallback), exactly like ``python -m indexer build``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from indexer.batch import process_images
from indexer.faceflow import FlowSpec


@dataclass
class CropResult:
    """One photo's largest face; ``crop`` is None and ``error`` set when it is unreadable."""

    path: Path
    crop: np.ndarray | None
    face_found: bool
    box: tuple[int, int, int, int]
    error: str = ""


def crop_faces(
    paths: Sequence[Path], spec: FlowSpec, workers: int = 0, desc: str = "cropping"
) -> Iterator[CropResult]:
    """Results in the order of ``paths``; ``workers=0`` means one process per core."""
    spec.pipeline()  # a bad detector or missing model file fails here, once
    for result in tqdm(process_images(paths, spec, workers), total=len(paths), desc=desc,
                       unit="img", mininterval=5.0):  # fmt: skip
        if result.error is not None or result.faces is None:
            yield CropResult(result.path, None, False, (0, 0, 0, 0), result.error or "unread")
            continue
        face = result.faces.faces[0]
        yield CropResult(result.path, face.crop, face.detected, face.box)
