"""Crop many photos with the indexer's own pipeline, on every core.

Training must see the crops serving sees, so this goes through ``FacePipeline`` with the
largest face and the whole-image fallback, exactly like ``python -m indexer build``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from indexer.detect import make_detector
from indexer.errors import FacefindError
from indexer.pipeline import FacePipeline

log = logging.getLogger(__name__)

_pipeline: FacePipeline | None = None


@dataclass
class CropResult:
    """One photo's largest face; ``crop`` is None and ``error`` set when it is unreadable."""

    path: Path
    crop: np.ndarray | None
    face_found: bool
    box: tuple[int, int, int, int]
    error: str = ""


def _init_worker(detector: str, detector_model: Path | None, size: int) -> None:
    global _pipeline
    cv2.setNumThreads(1)
    _pipeline = FacePipeline(make_detector(detector, detector_model), size)


def _crop_one(path: Path) -> CropResult:
    assert _pipeline is not None
    try:
        face = _pipeline.from_path(path).faces[0]
    except FacefindError as exc:
        return CropResult(path, None, False, (0, 0, 0, 0), str(exc))
    return CropResult(path, face.crop, face.detected, face.box)


def crop_faces(
    paths: Sequence[Path],
    detector: str,
    detector_model: Path | None,
    size: int,
    workers: int = 0,
    desc: str = "cropping",
) -> Iterator[CropResult]:
    """Results in the order of ``paths``; ``workers=0`` means one process per core."""
    make_detector(detector, detector_model)  # a bad name or missing model fails here, once
    workers = workers or os.cpu_count() or 1
    args = (detector, detector_model, size)
    bar = tqdm(total=len(paths), desc=desc, unit="img", mininterval=5.0)
    if workers == 1:
        _init_worker(*args)
        for path in paths:
            yield _crop_one(path)
            bar.update()
    else:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(workers, initializer=_init_worker, initargs=args) as pool:
            for result in pool.imap(_crop_one, paths, chunksize=16):
                yield result
                bar.update()
    bar.close()
