"""``python -m training pack SRC... --out PACK``: aligned crops and teacher targets, once.

Every image goes through the indexer's own face flow (YuNet, largest face, five-point
alignment to the teacher's template), so training sees the pixels serving sees; the teacher
encodes each crop as it is and mirrored. Labelled sources are folders of identity folders;
a flat folder of images (FairFace) is unlabelled and teaches through the teacher only.
Resumable: finished shards are kept, so a stopped run redoes at most one shard.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer.align import ALIGN_0095
from indexer.decode import IMAGE_SUFFIXES
from indexer.errors import FacefindError
from indexer.faceflow import FlowSpec
from training.faces import CropResult, crop_faces
from training.pack_files import FAILED, SHARD_SIZE, PackMeta, Shard, shard_name
from training.reid_teacher import REID_DIM, REID_SIZE, ReidTeacher, teacher_views

log = logging.getLogger(__name__)

TEACHER_NAME = "face-reidentification-retail-0095"


@dataclass
class PackReport:
    images: int
    packed: int
    failed: int
    shards_made: int
    seconds: float

    def summary(self) -> str:
        return (
            f"{self.packed} of {self.images} images packed with teacher targets "
            f"({self.shards_made} shards made now, {self.seconds:.0f} s); {self.failed} without "
            f"a usable face are listed in {FAILED}"
        )


def list_images(sources: list[Path]) -> list[tuple[Path, str]]:
    """(image, identity) in a fixed order; identities prefixed by their source's name."""
    pairs: list[tuple[Path, str]] = []
    for src in sources:
        if not src.is_dir():
            raise FacefindError(f"source folder not found: {src}")
        people = sorted(p for p in src.iterdir() if p.is_dir())
        if people:
            pairs += [
                (p, f"{src.name}/{person.name}") for person in people for p in _images(person)
            ]
        else:
            pairs += [(p, "") for p in _images(src)]
    if not pairs:
        raise FacefindError(f"no images in {', '.join(map(str, sources))}")
    return pairs


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def pack(
    sources: list[Path],
    out: Path,
    detector_model: Path,
    teacher_model: Path,
    size: int = REID_SIZE,
    workers: int = 0,
    threads: int = 1,
) -> PackReport:
    if size != REID_SIZE:
        raise FacefindError(f"the 0095 teacher needs {REID_SIZE} px crops, not {size}")
    started = time.monotonic()
    pairs = list_images(sources)
    teacher = ReidTeacher(teacher_model, threads=threads)
    out.mkdir(parents=True, exist_ok=True)
    meta = PackMeta(size, ALIGN_0095.to_dict(), TEACHER_NAME, ["as-is", "mirrored"],
                    [str(s) for s in sources], len(pairs))  # fmt: skip
    meta.save(out)
    spec = FlowSpec("yunet", detector_model, size, ALIGN_0095)
    shards = [(n, pairs[start : start + SHARD_SIZE])
              for n, start in enumerate(range(0, len(pairs), SHARD_SIZE))]  # fmt: skip
    todo = [(n, chunk) for n, chunk in shards if not (out / shard_name(n)).is_file()]
    # One pool for the whole run: workers start once, not once per shard.
    results = crop_faces([p for _, chunk in todo for p, _ in chunk], spec, workers, "packing")
    for number, chunk in todo:
        done = [next(results) for _ in chunk]
        _shard(done, chunk, teacher).save(out / shard_name(number))
        _record_failures(out, number, done)
    made = len(todo)
    failed = _count_failures(out)
    return PackReport(len(pairs), len(pairs) - failed, failed, made, time.monotonic() - started)


def _shard(results: list[CropResult], chunk: list[tuple[Path, str]], teacher: ReidTeacher) -> Shard:
    kept = [(i, r.crop) for i, r in enumerate(results) if r.crop is not None and r.face_found]
    keep = [i for i, _ in kept]
    crops = np.stack([crop for _, crop in kept]) if kept else np.zeros((0, 128, 128, 3), np.uint8)
    views = [teacher.encode(v) if len(v) else np.zeros((0, REID_DIM), np.float32)
             for v in teacher_views(crops)]  # fmt: skip
    return Shard(
        crops.astype(np.uint8),
        np.stack(views, axis=1).astype(np.float16),
        np.array([chunk[i][1] for i in keep], dtype=str),
        np.array([str(chunk[i][0]) for i in keep], dtype=str),
    )


def _record_failures(out: Path, number: int, results: list[CropResult]) -> None:
    lines = [f"{r.path}\t{r.error or 'no face found'}" for r in results
             if r.crop is None or not r.face_found]  # fmt: skip
    (out / f"failed-{number:05d}.txt").write_text("".join(line + "\n" for line in lines))


def _count_failures(out: Path) -> int:
    parts = sorted(out.glob("failed-*.txt"))
    lines = [line for p in parts for line in p.read_text().splitlines() if line]
    (out / FAILED).write_text("".join(line + "\n" for line in lines))
    return len(lines)
