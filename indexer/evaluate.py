"""The retrieval protocol of facefind's benchmarks (docs/benchmark-format.md).

A manifest is a CSV with columns ``path,identity,role``: ``query`` images search a gallery made
of the ``gallery`` and ``distractor`` images. Metrics: top-k (a query scores when at least one
image of its identity is among the first k results) and mAP over the whole ranking.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer.errors import FacefindError, UnreadableImage
from indexer.ranking import ranking_metrics
from indexer.vector_index import VectorIndex

ROLES = ("query", "gallery", "distractor")


@dataclass(frozen=True)
class ManifestRow:
    path: Path
    identity: str
    role: str


def read_manifest(manifest: Path | str, root: Path | str) -> list[ManifestRow]:
    """Rows with paths resolved against ``root``; a malformed manifest is a clear error."""
    manifest, root = Path(manifest), Path(root)
    try:
        with manifest.open(newline="") as fh:
            reader = csv.DictReader(fh)
            missing = {"path", "identity", "role"} - set(reader.fieldnames or ())
            if missing:
                raise FacefindError(f"{manifest}: missing column(s) {', '.join(sorted(missing))}")
            rows = [ManifestRow(root / r["path"], r["identity"], r["role"]) for r in reader]
    except OSError as exc:
        raise FacefindError(f"{manifest}: cannot be read ({exc.strerror or exc})") from exc
    bad = sorted({r.role for r in rows} - set(ROLES))
    if bad:
        raise FacefindError(f"{manifest}: unknown role(s) {', '.join(bad)}; use {', '.join(ROLES)}")
    if not any(r.role == "query" for r in rows) or not any(r.role != "query" for r in rows):
        raise FacefindError(f"{manifest}: needs at least one query and one gallery image")
    return rows


def retrieval_metrics(
    query_vectors: np.ndarray,
    query_identities: Sequence[str],
    gallery_vectors: np.ndarray,
    gallery_identities: Sequence[str],
) -> dict[str, float]:
    """top-1/5/10 and mAP of each query's ranking of the whole (indexed) gallery."""
    ids = np.arange(len(gallery_vectors), dtype=np.int64)
    index = VectorIndex.build(ids, gallery_vectors, gallery_vectors.shape[1], "Flat", use_gpu=False)
    _, order = index.search(query_vectors, len(gallery_vectors))
    return ranking_metrics(order, query_identities, gallery_identities)


def evaluate(
    rows: Sequence[ManifestRow],
    embed_paths: Callable[[Sequence[Path]], tuple[np.ndarray, list[bool]]],
) -> dict[str, float]:
    """Run the protocol with ``embed_paths`` (paths -> vectors, face-found flags)."""
    start = time.perf_counter()
    try:
        vectors, found = embed_paths([r.path for r in rows])
    except UnreadableImage as exc:
        raise FacefindError(f"a benchmark image could not be read: {exc}") from exc
    elapsed = time.perf_counter() - start
    is_query = np.array([r.role == "query" for r in rows])
    identities = np.array([r.identity for r in rows])
    metrics = retrieval_metrics(
        vectors[is_query], identities[is_query], vectors[~is_query], identities[~is_query]
    )
    metrics.update(
        queries=int(is_query.sum()),
        gallery=int((~is_query).sum()),
        face_found=float(np.mean(found)),
        seconds_per_image=elapsed / len(rows),
    )
    return metrics
