"""The teacher-targets folder ``python -m training teach`` writes and ``train`` reads.

``targets.npz`` (``paths``, relative to the crops folder, and ``vectors``) grows as the
teacher goes and is replaced atomically, ``failed.txt`` lists the crops it could not encode
(``path<TAB>why``), and ``meta.json`` names the crops folder the paths belong to.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from indexer.atomic import atomic_open
from indexer.errors import FacefindError

TARGETS, FAILED, META = "targets.npz", "failed.txt", "meta.json"


def write_meta(out: Path, crops: Path, teacher: str) -> None:
    (out / META).write_text(json.dumps({"crops": str(crops.resolve()), "teacher": teacher},
                                       indent=2) + "\n")  # fmt: skip


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


def save_targets(
    out: Path, vectors: dict[str, np.ndarray], failed: dict[str, str], dim: int
) -> None:
    """Written beside and renamed over, so an interrupted save never loses what was done."""
    paths = np.array(sorted(vectors), dtype=str)
    matrix = np.stack([vectors[p] for p in paths]) if len(paths) else np.zeros((0, dim))
    with atomic_open(out / TARGETS) as fh:
        np.savez(fh, paths=paths, vectors=matrix.astype(np.float32))
    lines = "".join(f"{rel}\t{why}\n" for rel, why in sorted(failed.items()))
    (out / FAILED).write_text(lines)


def read_targets(folders: Sequence[Path]) -> dict[Path, np.ndarray]:
    """Absolute crop path -> teacher vector, over every targets folder given."""
    found: dict[Path, np.ndarray] = {}
    for folder in folders:
        if not (folder / TARGETS).is_file() or not (folder / META).is_file():
            raise FacefindError(
                f"--teacher {folder}: no {TARGETS} there; make it with "
                "`python -m training teach CROPS --out FOLDER`"
            )
        crops = Path(json.loads((folder / META).read_text())["crops"])
        vectors, _ = load_targets(folder)
        found.update({crops / rel: v for rel, v in vectors.items()})
    return found
