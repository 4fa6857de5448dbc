"""From an image to embeddable face crops: the one path every entry point shares.

Training (``python -m training prepare``), indexing, searching, evaluation and the service all
go through ``FacePipeline`` so that the embedder always sees crops made the same way.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from indexer.align import BOX, Alignment, Landmarks, align_face
from indexer.crop import DEFAULT_MARGIN, crop_face, whole_image_box
from indexer.decode import DEFAULT_MAX_PIXELS, decode_image, read_image_bytes
from indexer.detect import Face, FaceDetector, largest_face
from indexer.records import Box

FaceMode = Literal["largest", "all"]


@dataclass
class FaceCrop:
    """A face ready for the embedder; ``detected`` is False for the whole-image fallback."""

    box: Box
    score: float
    detected: bool
    crop: np.ndarray
    landmarks: Landmarks | None = None


@dataclass
class ImageFaces:
    faces: list[FaceCrop]
    width: int
    height: int
    content_hash: str
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def face_found(self) -> bool:
        return any(f.detected for f in self.faces)


class FacePipeline:
    def __init__(
        self,
        detector: FaceDetector,
        crop_size: int,
        margin: float = DEFAULT_MARGIN,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        alignment: Alignment = BOX,
    ) -> None:
        self.detector = detector
        self.crop_size = crop_size
        self.margin = margin
        self.max_pixels = max_pixels
        self.alignment = alignment

    def from_bytes(
        self, data: bytes, name: str = "image", mode: FaceMode = "largest", fallback: bool = True
    ) -> ImageFaces:
        """Decode, detect and crop. Raises UnreadableImage (naming ``name``) for bad bytes."""
        start = time.perf_counter()
        image = decode_image(data, name=name, max_pixels=self.max_pixels)
        decoded = time.perf_counter()
        faces = self.from_pixels(image, mode=mode, fallback=fallback)
        faces.content_hash = content_hash(data)
        faces.timings = {"decode": decoded - start, "detect": time.perf_counter() - decoded}
        return faces

    def from_path(
        self, path: Path | str, mode: FaceMode = "largest", fallback: bool = True
    ) -> ImageFaces:
        return self.from_bytes(read_image_bytes(path), name=str(path), mode=mode, fallback=fallback)

    def from_pixels(
        self, image: np.ndarray, mode: FaceMode = "largest", fallback: bool = True
    ) -> ImageFaces:
        """Faces of an RGB image; with ``fallback`` the whole image stands in when none is found."""
        found = self.detector.detect(image)
        if mode == "largest":
            best = largest_face(found)
            found = [best] if best is not None else []
        crops = [FaceCrop(f.box, f.score, True, self.crop(image, f), f.landmarks) for f in found]
        if not crops and fallback:
            box = whole_image_box(image)
            crops = [FaceCrop(box, 0.0, False, crop_face(image, box, self.crop_size, margin=0.0))]
        height, width = image.shape[:2]
        return ImageFaces(crops, width, height, content_hash="")

    def crop(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The embedder's input: aligned by the landmarks where the model was trained on
        aligned faces and the detector gives them, else a square box crop."""
        if self.alignment.kind == "template" and face.landmarks is not None:
            return align_face(image, face.landmarks, self.crop_size, self.alignment.template)
        return crop_face(image, face.box, self.crop_size, self.margin)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode_jpeg(crop: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ValueError("could not encode a face crop as JPEG")
    return buf.tobytes()
