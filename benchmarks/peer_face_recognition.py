"""The peer system under facefind's protocol: face_recognition (dlib HOG + ResNet encoder).

What most users reach for. Its protocol, as in ``../shared/benchmarks/PROTOCOL.md``: load the
image with ``face_recognition.load_image_file``, HOG detector with one upsampling, keep the
largest face, 5-point alignment (``model="small"``), 128-d encoding; where no face is found the
whole image is encoded. face_recognition is imported lazily, in worker processes only, so that
facefind's benchmarks run without it (install: ``benchmarks/requirements-peer.txt``).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import multiprocessing
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import ModuleType

import numpy as np

NAME = "face_recognition"
DIM = 128


def available() -> str | None:
    """None when face_recognition can be used, else why not (a sentence for the reader)."""
    if importlib.util.find_spec("face_recognition") is None:
        return (
            "face_recognition is not installed: pip install -r benchmarks/requirements-peer.txt "
            "&& pip install --no-deps face_recognition"
        )
    try:
        _load()
    except Exception as exc:
        return f"face_recognition cannot be imported: {type(exc).__name__}: {exc}"
    return None


def describe() -> dict[str, str]:
    versions = {}
    for package in ("face_recognition", "dlib-bin", "face_recognition_models"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "system": NAME,
        "detection": "dlib HOG, 1 upsampling, largest face",
        "encoder": "dlib ResNet 128-d, 5-point alignment (model='small'), 1 jitter",
        **versions,
    }


def encode_paths(paths: Sequence[Path], workers: int = 0) -> tuple[np.ndarray, list[bool]]:
    """One 128-d encoding per image (largest face or whole image) and face-found flags.

    ``workers`` processes encode in parallel (0: one per core); each runs dlib on one thread,
    as face_recognition's own batch tool does.
    """
    workers = workers or os.cpu_count() or 1
    paths = list(paths)
    if workers == 1 or len(paths) < 2 * workers:
        _init_worker()
        results = [_encode(p) for p in paths]
    else:
        context = multiprocessing.get_context("spawn")
        chunk = max(1, min(16, len(paths) // (workers * 8)))
        with ProcessPoolExecutor(workers, context, initializer=_init_worker) as pool:
            results = list(pool.map(_encode, paths, chunksize=chunk))
    if not results:
        return np.zeros((0, DIM), dtype=np.float32), []
    vectors = np.stack([r[0] for r in results]).astype(np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors, [r[1] for r in results]


def _load() -> ModuleType:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # face_recognition_models' pkg_resources warning
        import face_recognition

    return face_recognition


def _init_worker() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _load()


def _encode(path: Path) -> tuple[np.ndarray, bool]:
    """Largest HOG face, else the whole image: (top, right, bottom, left) as dlib wants."""
    fr = _load()
    image = fr.load_image_file(str(path))
    boxes = fr.face_locations(image, number_of_times_to_upsample=1, model="hog")
    found = bool(boxes)
    if found:
        box = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
    else:
        box = (0, image.shape[1], image.shape[0], 0)
    encoding = fr.face_encodings(image, known_face_locations=[box], model="small")[0]
    return np.asarray(encoding, dtype=np.float32), found
