"""``python -m training prepare``: labelled photos in, one face crop per photo out.

Two layouts are read: one folder per identity (LFW), and CelebA's image folder with its
``identity_CelebA.txt`` (lines ``000001.jpg 2880``). The output is ``CROPS/<identity>/*.jpg``
plus ``crops.csv``, which records for every crop whether a face was detected or the whole
photo stood in (as serving does), so poor sources can be found and removed.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import cv2

from indexer.align import ALIGN_0095, BOX
from indexer.decode import IMAGE_SUFFIXES
from indexer.errors import FacefindError
from indexer.faceflow import FlowSpec
from training.crop_files import CropRow, write_listing
from training.faces import crop_faces

log = logging.getLogger(__name__)

CELEBA_LABELS = "identity_CelebA.txt"
CELEBA_IMAGE_DIRS = ("", "img_align_celeba", "img_celeba", "Img/img_align_celeba", "Img/img_celeba")


@dataclass
class PrepareReport:
    images: int
    faces_found: int
    unreadable: list[str]

    def summary(self) -> str:
        share = self.faces_found / max(1, self.images - len(self.unreadable))
        return (
            f"{self.images - len(self.unreadable)} crops written ({share:.1%} with a detected "
            f"face, the rest whole-image fallbacks); {len(self.unreadable)} unreadable skipped"
        )


def find_labelled_images(src: Path) -> list[tuple[Path, str]]:
    """(image, identity) pairs of either layout, sorted; an unusable source is a clear error."""
    if not src.is_dir():
        raise FacefindError(f"source folder not found: {src}")
    labels = next(
        (p for p in (src / CELEBA_LABELS, src / "Anno" / CELEBA_LABELS) if p.is_file()), None
    )
    pairs = _celeba_images(src, labels) if labels else _folder_images(src)
    if not pairs:
        raise FacefindError(
            f"no labelled images in {src}: expected one folder of images per identity, "
            f"or CelebA's layout (an image folder and {CELEBA_LABELS})"
        )
    return pairs


def _folder_images(src: Path) -> list[tuple[Path, str]]:
    return [
        (path, person.name)
        for person in sorted(p for p in src.iterdir() if p.is_dir())
        for path in sorted(person.iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
    ]


def _celeba_images(src: Path, labels: Path) -> list[tuple[Path, str]]:
    entries = []
    for number, line in enumerate(labels.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise FacefindError(f"{labels}:{number}: expected 'IMAGE IDENTITY', got {line!r}")
        entries.append((fields[0], fields[1]))
    if not entries:
        raise FacefindError(f"{labels} lists no images")
    folder = next((src / d for d in CELEBA_IMAGE_DIRS if (src / d / entries[0][0]).is_file()), None)
    if folder is None:
        raise FacefindError(
            f"{entries[0][0]} (first in {labels}) is not in {src} or its image folders"
        )
    missing = [name for name, _ in entries if not (folder / name).is_file()]
    if missing:
        log.warning("%d images listed in %s are missing, e.g. %s", len(missing), labels, missing[0])
    return sorted((folder / name, identity) for name, identity in entries if name not in missing)


def safe_name(name: str) -> str:
    """An identity as a folder name: no separators or leading dots."""
    cleaned = re.sub(r"[^\w.-]+", "_", name).lstrip(".")
    return cleaned or "_"


def prepare(
    src: Path,
    out: Path,
    detector: str = "haar",
    detector_model: Path | None = None,
    size: int = 128,
    workers: int = 0,
) -> PrepareReport:
    pairs = find_labelled_images(src)
    out.mkdir(parents=True, exist_ok=True)
    identity_of = dict(pairs)
    report = PrepareReport(len(pairs), 0, [])
    taken: set[Path] = set()
    with write_listing(out) as listing:
        paths = [p for p, _ in pairs]
        # YuNet's landmarks align each face to the teacher's template; Haar crops a box.
        alignment = ALIGN_0095 if detector == "yunet" else BOX
        spec = FlowSpec(detector, detector_model, size, alignment)
        for result in crop_faces(paths, spec, workers, "prepare"):
            if result.crop is None:
                report.unreadable.append(f"{result.path}: {result.error}")
                continue
            identity = identity_of[result.path]
            target = _unique(out / safe_name(identity) / f"{result.path.stem}.jpg", taken)
            target.parent.mkdir(exist_ok=True)
            bgr = cv2.cvtColor(result.crop, cv2.COLOR_RGB2BGR)
            if not cv2.imwrite(str(target), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95]):
                raise FacefindError(f"could not write {target}")
            report.faces_found += result.face_found
            rel = target.relative_to(out).as_posix()
            listing.add(
                CropRow(rel, identity, str(result.path), bool(result.face_found), result.box)
            )
    for line in report.unreadable:
        log.warning("skipped %s", line)
    return report


def _unique(path: Path, taken: set[Path]) -> Path:
    candidate, n = path, 1
    while candidate in taken:
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    taken.add(candidate)
    return candidate
