"""Face detectors behind one small interface, and the factory that names what it knows.

Images are scaled down to at most ``max_side`` pixels before detection: faces in user photos
are large enough at that size, and it keeps detection time flat for big uploads.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import cv2
import numpy as np
from cv2.data import haarcascades

from indexer.align import Landmarks
from indexer.errors import ConfigError
from indexer.settings import Detector

DETECTORS: tuple[str, ...] = get_args(Detector)


@dataclass(frozen=True)
class Face:
    """A detected face: box as (x, y, width, height) in image pixels, score in [0, 1], and
    five landmarks (eyes, nose tip, mouth corners; see ``indexer.align``) where the detector
    finds them."""

    box: tuple[int, int, int, int]
    score: float
    landmarks: Landmarks | None = None

    @property
    def area(self) -> int:
        return self.box[2] * self.box[3]


class FaceDetector(ABC):
    name: str = ""

    def __init__(self, max_side: int = 640) -> None:
        self.max_side = max_side

    def detect(self, image: np.ndarray) -> list[Face]:
        """Every face in an RGB image, best score first."""
        height, width = image.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        small = image
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        faces = [_rescale(face, 1.0 / scale, width, height) for face in self._detect(small)]
        return sorted((f for f in faces if f.box[2] > 0 and f.box[3] > 0), key=lambda f: -f.score)

    @abstractmethod
    def _detect(self, image: np.ndarray) -> list[Face]: ...


class HaarDetector(FaceDetector):
    """OpenCV's frontal-face Haar cascade: ships with OpenCV, so it needs no model file."""

    name = "haar"

    def __init__(self, max_side: int = 640, min_neighbors: int = 5) -> None:
        super().__init__(max_side)
        path = Path(haarcascades) / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise RuntimeError(f"OpenCV's Haar cascade could not be loaded from {path}")
        self._min_neighbors = min_neighbors

    def _detect(self, image: np.ndarray) -> list[Face]:
        grey = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        min_side = max(20, min(grey.shape) // 12)
        boxes, _, weights = self._cascade.detectMultiScale3(
            grey,
            scaleFactor=1.1,
            minNeighbors=self._min_neighbors,
            minSize=(min_side, min_side),
            outputRejectLevels=True,
        )
        # The cascade's level weight is unbounded; squash it into (0, 1) so scores compare.
        return [
            Face((int(x), int(y), int(bw), int(bh)), 1.0 / (1.0 + math.exp(-float(w) / 2.0)))
            for (x, y, bw, bh), w in zip(boxes, np.ravel(weights), strict=False)
        ]


class YuNetDetector(FaceDetector):
    """OpenCV's YuNet CNN detector: far fewer misses than Haar on real photos."""

    name = "yunet"

    def __init__(self, model_path: Path, max_side: int = 640, score_threshold: float = 0.7):
        super().__init__(max_side)
        if not Path(model_path).is_file():
            raise FileNotFoundError(f"YuNet model file not found: {model_path}")
        self._net = cv2.FaceDetectorYN.create(
            str(model_path), "", (320, 320), score_threshold, 0.3, 5000
        )

    MIN_SIDE = 8
    """No face fits in fewer pixels; YuNet is not even asked (it answers such lines with
    garbage, and can leave garbage for the next image it sees)."""

    PAD = 0.25
    """A face that fills the photo (a portrait crop, a face chip) touches its borders, where
    YuNet misses it; a miss is retried once on the photo padded by this share per side."""

    def _detect(self, image: np.ndarray) -> list[Face]:
        faces = self._detect_once(image)
        height, width = image.shape[:2]
        if faces or min(height, width) < self.MIN_SIDE:
            return faces
        pad = round(self.PAD * max(height, width))
        padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        return [_shift(face, -pad, width, height) for face in self._detect_once(padded)]

    def _detect_once(self, image: np.ndarray) -> list[Face]:
        height, width = image.shape[:2]
        if min(height, width) < self.MIN_SIDE:
            return []
        self._net.setInputSize((width, height))
        _, rows = self._net.detect(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if rows is None:
            return []
        rows = rows[np.isfinite(rows).all(axis=1)]  # thin or noisy inputs give infinite boxes
        return [
            Face(
                _clip_box(r[:4], width, height),
                float(r[14]),
                tuple((float(r[4 + 2 * i]), float(r[5 + 2 * i])) for i in range(5)),
            )
            for r in rows
        ]


class WholeImageDetector(FaceDetector):
    """For inputs that are already face crops: the whole image is the face."""

    name = "none"

    def _detect(self, image: np.ndarray) -> list[Face]:
        height, width = image.shape[:2]
        return [Face((0, 0, width, height), 1.0)]


def make_detector(name: str, model_path: Path | None = None) -> FaceDetector:
    """Build a detector by name; unknown names and missing model files are user errors."""
    if name == "haar":
        return HaarDetector()
    if name == "none":
        return WholeImageDetector()
    if name == "yunet":
        if model_path is None:
            raise ConfigError(
                "the yunet detector needs a model file: pass --detector-model PATH "
                "(face_detection_yunet.onnx from the OpenCV model zoo)"
            )
        return YuNetDetector(Path(model_path))
    raise ConfigError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")


def largest_face(faces: list[Face]) -> Face | None:
    return max(faces, key=lambda f: f.area, default=None)


def _clip_box(box: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0 = max(0, round(box[0])), max(0, round(box[1]))
    x1 = min(width, round(box[0] + box[2]))
    y1 = min(height, round(box[1] + box[3]))
    return (x0, y0, max(0, x1 - x0), max(0, y1 - y0))


def _shift(face: Face, offset: int, width: int, height: int) -> Face:
    """A face found in a padded photo, in the photo's own pixels."""
    x, y, w, h = face.box
    box = _clip_box(np.array([x + offset, y + offset, w, h], np.float64), width, height)
    landmarks = None
    if face.landmarks is not None:
        landmarks = tuple((px + offset, py + offset) for px, py in face.landmarks)
    return Face(box, face.score, landmarks)


def _rescale(face: Face, factor: float, width: int, height: int) -> Face:
    if factor == 1.0:
        return face
    box = np.array(face.box, dtype=np.float64) * factor
    landmarks = None
    if face.landmarks is not None:
        landmarks = tuple((x * factor, y * factor) for x, y in face.landmarks)
    return Face(_clip_box(box, width, height), face.score, landmarks)
