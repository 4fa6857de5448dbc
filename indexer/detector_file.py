"""Installing YuNet's model file: from the OpenCV model zoo, or from a copy, checked by hash.

The file is not in the repository (the zoo is its home) and nothing downloads it at run time:
``make setup`` (``python -m indexer fetch-detector``) and the Docker build fetch it once.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path

from indexer.atomic import atomic_write_bytes
from indexer.defaults import DEFAULT_DETECTOR_MODEL
from indexer.errors import ModelNotFound

YUNET_URL = (
    "https://media.githubusercontent.com/media/opencv/opencv_zoo/"
    "26cc381e4d2594bb9f47a26eb8fd96c94a13660d/models/face_detection_yunet/"
    "face_detection_yunet_2026may.onnx"
)
YUNET_SHA256 = "ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0"
"""The 2026may export (229,738 bytes), pinned by commit and by content."""


def install_detector(
    source: Path | None = None, dest: Path = DEFAULT_DETECTOR_MODEL, timeout: float = 30.0
) -> str:
    """Copy ``source``, or download the pinned file, to ``dest``; returns what was done."""
    if dest.is_file() and _sha256(dest.read_bytes()) == YUNET_SHA256:
        return f"YuNet is already installed: {dest}"
    if source is not None:
        if not source.is_file():
            raise ModelNotFound(f"no such file: {source}")
        data, origin = source.read_bytes(), str(source)
    else:
        data, origin = _download(timeout), YUNET_URL
    digest = _sha256(data)
    if digest != YUNET_SHA256:
        raise ModelNotFound(
            f"{origin} is not the pinned YuNet file (sha256 {digest[:16]}..., expected "
            f"{YUNET_SHA256[:16]}...); nothing was installed"
        )
    atomic_write_bytes(dest, data)
    return f"installed YuNet ({len(data):,} bytes, sha256 checked) from {origin} to {dest}"


def _download(timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(YUNET_URL, timeout=timeout) as response:
            return bytes(response.read())
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise ModelNotFound(
            f"could not download YuNet from the OpenCV model zoo ({exc}); copy "
            "face_detection_yunet.onnx onto this machine and run "
            "`python -m indexer fetch-detector --from FILE`, or point FACEFIND_DETECTOR_MODEL "
            "at it. Until then facefind detects with Haar."
        ) from exc


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
