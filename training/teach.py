"""``python -m training teach CROPS --out TARGETS``: the teacher's embedding of every crop.

Paid once and resumable: the targets folder (``training.target_files``) is saved every few
hundred images, so an interrupted run resumes where it stopped; crops already encoded, or
already listed as failed, are never redone.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from indexer.errors import FacefindError
from training.crop_files import list_crops
from training.target_files import FAILED, load_targets, save_targets, write_meta
from training.teacher import TEACHER_DIM, Teacher, load_dlib

log = logging.getLogger(__name__)

SAVE_EVERY = 256

_teacher: Teacher | None = None


@dataclass
class TeachReport:
    total: int
    computed: int
    failed_now: int
    failed_total: int
    seconds: float

    def summary(self) -> str:
        done = self.computed + self.failed_now
        now = f"{done} encoded now, {self.seconds / done:.3f} s/image" if done else "all cached"
        return (
            f"{self.total - self.failed_total} of {self.total} crops have teacher targets "
            f"({now}); {self.failed_total} the teacher could not encode are listed in {FAILED}"
        )


def _init_worker() -> None:
    global _teacher
    cv2.setNumThreads(1)
    _teacher = Teacher()


def _encode(job: tuple[Path, str, bool]) -> tuple[str, np.ndarray | None, str]:
    assert _teacher is not None
    root, rel, centred = job
    image = cv2.imread(str(root / rel), cv2.IMREAD_COLOR)
    if image is None:
        return rel, None, "unreadable"
    vector = _teacher.encode(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), centred)
    return rel, vector, "" if vector is not None else "no face found by the teacher"


def _results(jobs: list[tuple[Path, str, bool]], workers: int) -> Iterator[tuple]:
    if workers == 1:
        _init_worker()
        yield from map(_encode, jobs)
        return
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
        yield from pool.imap(_encode, jobs, chunksize=8)


def teach(crops: Path, out: Path, workers: int = 1) -> TeachReport:
    """Encode every crop of ``crops`` not yet in ``out``; returns what was done."""
    load_dlib()  # a missing teacher fails here, before anything is written
    rows = list_crops(crops)
    if not rows:
        raise FacefindError(f"no face crops in {crops}")
    out.mkdir(parents=True, exist_ok=True)
    write_meta(out, crops, "dlib face_recognition_model_v1, 5-point")
    vectors, failed = load_targets(out)
    done = vectors.keys() | failed.keys()
    jobs = [(crops, r.crop, r.face_found) for r in rows if r.crop not in done]
    start, computed, failed_now = time.monotonic(), 0, 0
    bar = tqdm(total=len(jobs), desc="teacher", unit="img", mininterval=5.0)
    for rel, vector, why in _results(jobs, workers or os.cpu_count() or 1):
        if vector is None:
            failed[rel], failed_now = why, failed_now + 1
        else:
            vectors[rel], computed = vector, computed + 1
        bar.update()
        if (computed + failed_now) % SAVE_EVERY == 0:
            save_targets(out, vectors, failed, TEACHER_DIM)
    bar.close()
    save_targets(out, vectors, failed, TEACHER_DIM)
    for rel, why in sorted(failed.items())[:5]:
        log.warning("no teacher target for %s: %s", rel, why)
    total = len(rows)
    known = {r.crop for r in rows}
    return TeachReport(
        total, computed, failed_now, len(known & failed.keys()), time.monotonic() - start
    )
