"""Decode, detect and crop many images in parallel worker processes.

Workers never import torch: they only run OpenCV and Pillow, while the parent process embeds
finished crops in batches. Results come back in input order.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2

from indexer.decode import read_image_bytes
from indexer.errors import FacefindError
from indexer.faceflow import FlowSpec
from indexer.pipeline import FaceMode, FacePipeline, ImageFaces, content_hash


@dataclass
class ImageResult:
    path: Path
    size: int = 0
    mtime_ns: int = 0
    content_hash: str = ""
    faces: ImageFaces | None = None
    error: str | None = None


_worker_pipeline: FacePipeline | None = None
_worker_mode: FaceMode = "largest"


def _init_worker(spec: FlowSpec, parent: int | None = None) -> None:
    global _worker_pipeline, _worker_mode
    cv2.setNumThreads(1)
    _worker_pipeline, _worker_mode = spec.pipeline(), spec.mode
    if parent is not None:
        threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int, poll_s: float = 1.0) -> None:
    """End this worker once the process that started it is gone.

    A parent killed outright (SIGKILL, or SIGTERM with Python's default handler) never shuts
    its pool down, and spawned workers hold both ends of their queues' pipes, so they would
    wait for work forever.
    """
    while os.getppid() == parent:
        time.sleep(poll_s)
    os._exit(1)


def _process(path: Path, known_hash: str | None = None) -> ImageResult:
    """One image; ``known_hash`` skips detection when the bytes did not change."""
    assert _worker_pipeline is not None
    result = ImageResult(path)
    try:
        stat = path.stat()
        data = read_image_bytes(path)
        result.size, result.mtime_ns, result.content_hash = (
            stat.st_size,
            stat.st_mtime_ns,
            content_hash(data),
        )
        if result.content_hash != known_hash:
            result.faces = _worker_pipeline.from_bytes(data, name=str(path), mode=_worker_mode)
    except (FacefindError, OSError) as exc:
        result.error = str(exc)
    except Exception as exc:  # a decoder or detector fault on one file must not end the build
        result.error = f"{type(exc).__name__}: {exc}"
    return result


def process_images(
    paths: Iterable[Path],
    spec: FlowSpec,
    workers: int = 0,
    known_hashes: dict[Path, str] | None = None,
) -> Iterator[ImageResult]:
    """Results in input order; ``workers`` 0 means one process per core, 1 runs in-process."""
    paths = list(paths)
    known = known_hashes or {}
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(paths) < 8:
        _init_worker(spec)
        yield from (_process(p, known.get(p)) for p in paths)
        return
    context = multiprocessing.get_context("spawn")
    init = (spec, os.getpid())
    with ProcessPoolExecutor(workers, context, initializer=_init_worker, initargs=init) as pool:
        chunk = max(1, min(32, len(paths) // (workers * 8)))
        yield from pool.map(_process, paths, [known.get(p) for p in paths], chunksize=chunk)
