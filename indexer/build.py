"""``python -m indexer build``: index a folder of photos, incrementally.

A file is known by its absolute path, size and modification time: unchanged files are
skipped without being read, changed ones re-embedded, deleted ones removed. Files that cannot
be read are reported and never stop the build, and are tried again on the next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from indexer.batch import ImageResult, process_images
from indexer.decode import IMAGE_SUFFIXES
from indexer.embedder import Embedder
from indexer.faceflow import FlowSpec, crops_of, new_faces
from indexer.store import GalleryStore

log = logging.getLogger(__name__)


@dataclass
class BuildReport:
    images: int = 0
    indexed: int = 0
    faces: int = 0
    unchanged: int = 0
    removed: int = 0
    no_face: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"images found: {self.images}; indexed now: {self.indexed} ({self.faces} faces); "
            f"unchanged: {self.unchanged}; removed (deleted or changed): {self.removed}",
            f"images without a detected face (whole image indexed): {len(self.no_face)}",
            *(f"  {p}" for p in self.no_face[:20]),
            *([f"  ... and {len(self.no_face) - 20} more"] if len(self.no_face) > 20 else []),
            f"files that could not be read: {len(self.unreadable)}",
            *(f"  {p}: {why}" for p, why in self.unreadable),
        ]
        return "\n".join(lines)


def find_images(root: Path) -> list[Path]:
    """Every image file below ``root`` (by suffix), sorted, hidden folders skipped."""
    return sorted(
        p.resolve()
        for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def label_for(path: Path, root: Path) -> str | None:
    """The person's folder name when images sit in one sub-folder per person."""
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 1 else None


class _Batch:
    """Faces waiting for the embedder; flushed into the store in one transaction."""

    def __init__(self, store: GalleryStore, embedder: Embedder, root: Path, size: int) -> None:
        self.store, self.embedder, self.root, self.size = store, embedder, root, size
        self.results: list[ImageResult] = []
        self.n_faces = 0

    def push(self, result: ImageResult) -> None:
        self.results.append(result)
        self.n_faces += len(result.faces.faces) if result.faces else 0
        if self.n_faces >= self.size:
            self.flush()

    def flush(self) -> None:
        if not self.results:
            return
        images = [r.faces for r in self.results if r.faces is not None]
        sources = [r for r in self.results if r.faces is not None]
        vectors = self.embedder.embed(crops_of(images), batch_size=self.size)
        rows, start = [], 0
        for result, image in zip(sources, images, strict=True):
            count = len(image.faces)
            rows += new_faces(image, vectors[start : start + count], str(result.path),
                              label_for(result.path, self.root))  # fmt: skip
            start += count
        files = [(str(r.path), r.size, r.mtime_ns, r.content_hash) for r in self.results]
        self.store.add(rows, files=files)
        self.results, self.n_faces = [], 0


def build_gallery(
    root: Path,
    store: GalleryStore,
    embedder: Embedder,
    spec: FlowSpec,
    batch_size: int = 32,
    workers: int = 0,
    progress: bool = True,
) -> BuildReport:
    root = root.resolve()
    report = BuildReport()
    images = find_images(root)
    report.images = len(images)
    states = store.file_states()
    present = {str(p) for p in images}
    prefix = f"{root}/"
    deleted = [p for p in states if p.startswith(prefix) and p not in present]
    report.removed += store.remove_sources(deleted) if deleted else 0

    todo: list[Path] = []
    for path in images:
        state = states.get(str(path))
        stat = path.stat()
        if state is not None and state[:2] == (stat.st_size, stat.st_mtime_ns):
            report.unchanged += 1
        else:
            todo.append(path)
    known = {p: states[str(p)][2] for p in todo if str(p) in states}

    batch = _Batch(store, embedder, root, batch_size)
    results = process_images(todo, spec, workers, known)
    for result in tqdm(results, total=len(todo), desc="indexing", unit="img", disable=not progress):
        _account(result, report, store, states, batch)
    batch.flush()
    store.optimize()
    store.save_index()
    return report


def _account(
    result: ImageResult,
    report: BuildReport,
    store: GalleryStore,
    states: dict[str, tuple[int, int, str]],
    batch: _Batch,
) -> None:
    key = str(result.path)
    if result.error is not None:
        report.unreadable.append((key, result.error))
        return
    if result.faces is None:
        # Same bytes, new timestamp (a copy or a touch): remember the new stat only.
        report.unchanged += 1
        batch.push(result)
        return
    if key in states:
        batch.flush()
        report.removed += store.remove_sources([key])
    report.indexed += 1
    report.faces += len(result.faces.faces)
    if not result.faces.face_found:
        report.no_face.append(key)
    batch.push(result)
