"""``python -m training teach CROPS --out TARGETS``: the teacher's embedding of every crop.

Paid once: ``TARGETS/targets.npz`` (``paths``, relative to CROPS, and ``vectors``) grows as
it goes and is saved every few hundred images, so an interrupted run resumes where it
stopped; crops already encoded, or already listed in ``failed.txt``, are never redone.
``meta.json`` records which crops folder the paths belong to, so training can match them.
"""

from __future__ import annotations

import csv
import json
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

from indexer.atomic import atomic_open
from indexer.errors import FacefindError
from training.data import read_crops
from training.prepare import CROPS_CSV
from training.teacher import TEACHER_DIM, Teacher, load_dlib

log = logging.getLogger(__name__)

TARGETS, FAILED, META = "targets.npz", "failed.txt", "meta.json"
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


def list_crops(root: Path) -> list[tuple[str, bool]]:
    """(path relative to ``root``, cut around a detected face) for every crop."""
    listing = root / CROPS_CSV
    if listing.is_file():
        with listing.open(newline="") as fh:
            return [(r["crop"], r.get("face_found", "1") != "0") for r in csv.DictReader(fh)]
    return [(s.path.relative_to(root).as_posix(), True) for s in read_crops(root)]


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


def load_targets(out: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(relative path -> unit vector, relative path -> why it failed) of a targets folder."""
    vectors: dict[str, np.ndarray] = {}
    if (out / TARGETS).is_file():
        with np.load(out / TARGETS) as saved:
            vectors = dict(zip(saved["paths"].tolist(), saved["vectors"], strict=True))
    failed: dict[str, str] = {}
    if (out / FAILED).is_file():
        for line in (out / FAILED).read_text().splitlines():
            rel, _, why = line.partition("\t")
            failed[rel] = why
    return vectors, failed


def _save(out: Path, vectors: dict[str, np.ndarray], failed: dict[str, str]) -> None:
    """Written beside and renamed over, so an interrupted save never loses what was done."""
    paths = np.array(sorted(vectors), dtype=str)
    matrix = np.stack([vectors[p] for p in paths]) if len(paths) else np.zeros((0, TEACHER_DIM))
    with atomic_open(out / TARGETS) as fh:
        np.savez(fh, paths=paths, vectors=matrix.astype(np.float32))
    lines = "".join(f"{rel}\t{why}\n" for rel, why in sorted(failed.items()))
    (out / FAILED).write_text(lines)


def teach(crops: Path, out: Path, workers: int = 1) -> TeachReport:
    """Encode every crop of ``crops`` not yet in ``out``; returns what was done."""
    load_dlib()  # a missing teacher fails here, before anything is written
    jobs_all = list_crops(crops)
    if not jobs_all:
        raise FacefindError(f"no face crops in {crops}")
    out.mkdir(parents=True, exist_ok=True)
    meta = {"crops": str(crops.resolve()), "teacher": "dlib face_recognition_model_v1, 5-point"}
    (out / META).write_text(json.dumps(meta, indent=2) + "\n")
    vectors, failed = load_targets(out)
    jobs = [(crops, rel, c) for rel, c in jobs_all if rel not in vectors and rel not in failed]
    start, computed, failed_now = time.monotonic(), 0, 0
    bar = tqdm(total=len(jobs), desc="teacher", unit="img", mininterval=5.0)
    for rel, vector, why in _results(jobs, workers or os.cpu_count() or 1):
        if vector is None:
            failed[rel], failed_now = why, failed_now + 1
        else:
            vectors[rel], computed = vector, computed + 1
        bar.update()
        if (computed + failed_now) % SAVE_EVERY == 0:
            _save(out, vectors, failed)
    bar.close()
    _save(out, vectors, failed)
    for rel, why in sorted(failed.items())[:5]:
        log.warning("no teacher target for %s: %s", rel, why)
    total = len(jobs_all)
    known = {rel for rel, _ in jobs_all}
    return TeachReport(
        total, computed, failed_now, len(known & failed.keys()), time.monotonic() - start
    )
