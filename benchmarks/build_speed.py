"""Indexing speed: ``python -m indexer build`` against face_recognition on the same images.

facefind is timed as users run it, one command from start to finish (model loading included);
face_recognition encodes the same files with one process per core. Neither writes anything the
other needs, so the two timings compare the work of turning photos into searchable vectors.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks import peer_face_recognition as peer
from benchmarks.common import YUNET, python_cmd, shown
from indexer.build import find_images

TARGET_IMAGES_PER_S = 30.0


def subset_gallery(source: Path, count: int, target: Path) -> Path:
    """The first ``count`` images of ``source`` copied with their person folders (labels)."""
    for path in find_images(source)[:count]:
        dest = target / path.relative_to(source.resolve())
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)
    return target


def facefind_build(gallery: Path, index: Path, model: str, detector: str) -> dict[str, Any]:
    """Time one ``python -m indexer build`` into a fresh store."""
    cmd = python_cmd("indexer", "build", str(gallery), "--index", str(index), "--model", model)
    cmd += ["--detector", detector]
    if detector == "yunet":
        cmd += ["--detector-model", str(YUNET)]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    images = len(find_images(gallery))
    faces = re.search(r"gallery: (\d+) faces", done.stdout)
    return {
        "command": shown(cmd),
        "detector": detector,
        "images": images,
        "faces": int(faces.group(1)) if faces else None,
        "seconds": seconds,
        "images_per_s": images / seconds,
        "summary": done.stdout.strip().splitlines()[:2],
    }


def peer_encode(gallery: Path, workers: int = 0) -> dict[str, Any]:
    missing = peer.available()
    if missing:
        return {"skipped": missing}
    paths = find_images(gallery)
    start = time.perf_counter()
    _, found = peer.encode_paths(paths, workers)
    seconds = time.perf_counter() - start
    return {
        **peer.describe(),
        "images": len(paths),
        "face_found": sum(found) / max(len(found), 1),
        "workers": workers or peer_workers(),
        "seconds": seconds,
        "images_per_s": len(paths) / seconds,
    }


def run(
    gallery: Path, index: Path, model: str, detector: str, with_peer: bool = True
) -> dict[str, Any]:
    facefind = facefind_build(gallery, index, model, detector)
    result: dict[str, Any] = {"gallery": str(gallery), "facefind": facefind}
    result["face_recognition"] = peer_encode(gallery) if with_peer else {"skipped": "--no-peer"}
    other = result["face_recognition"]
    if "images_per_s" in other:
        result["speedup_vs_face_recognition"] = facefind["images_per_s"] / other["images_per_s"]
    result["target_images_per_s"] = TARGET_IMAGES_PER_S
    result["target_met"] = facefind["images_per_s"] >= TARGET_IMAGES_PER_S
    return result


def peer_workers() -> int:
    return os.cpu_count() or 1
