"""Face alignment: five landmarks mapped onto one template by a similarity transform.

Training, indexing, searching and the service all call ``align_face``, so the embedder sees
the same pixels wherever a face comes from. The transform is fitted by least squares on all
five points (a robust fit that drops points, such as OpenCV's RANSAC default, throws away the
nose in most faces and costs accuracy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

Landmarks = tuple[tuple[float, float], ...]
"""Five (x, y) points in image pixels, in YuNet's order: right eye, left eye, nose tip,
right mouth corner, left mouth corner (the person's right, so the image's left first)."""

TEMPLATE_0095: tuple[tuple[float, float], ...] = (
    (0.31556875, 0.4615741071),
    (0.6826229167, 0.4615741071),
    (0.5002625, 0.6405053571),
    (0.349471875, 0.8246919643),
    (0.6534364583, 0.8246919643),
)
"""Where the five landmarks land, as fractions of the square crop: the template of Intel's
face-reidentification-retail-0095 (the distillation teacher), so teacher and student see
the same crop."""

BORDER_VALUE = 0
"""Pixels outside the photo are filled with a constant, not by replicating the border: tight
chips replicated into the forehead area give the teacher a shared direction a student learns
as a shortcut."""


@dataclass(frozen=True)
class Alignment:
    """How a checkpoint's input crops were made; recorded in the checkpoint and the gallery.

    ``kind`` is ``template`` (five landmarks onto ``template``) or ``box`` (a square box crop
    with a margin, for detectors without landmarks and for older checkpoints).
    """

    kind: str = "box"
    template: tuple[tuple[float, float], ...] = ()

    def describe(self, size: int) -> str:
        """A short, stable name: galleries compare it to refuse vectors of other crops."""
        if self.kind == "box":
            return f"box@{size}"
        points = ",".join(f"{x:.4f}:{y:.4f}" for x, y in self.template)
        return f"template[{points}]@{size}"

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "template": [list(p) for p in self.template]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Alignment:
        """From ``to_dict``'s JSON, as a checkpoint or a pack's meta.json holds it."""
        if not data:
            return cls()
        template = tuple((float(x), float(y)) for x, y in data.get("template", []))
        return cls(str(data.get("kind", "box")), template)


ALIGN_0095 = Alignment("template", TEMPLATE_0095)
BOX = Alignment()


def similarity_transform(
    landmarks: Sequence[Sequence[float]], size: int, template: Sequence[Sequence[float]]
) -> np.ndarray:
    """The 2x3 matrix of the rotation, uniform scale and shift that maps the landmarks onto
    the template scaled to ``size`` with the least squared error over all points."""
    src = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(template, dtype=np.float64).reshape(-1, 2) * size
    if src.shape != dst.shape or len(src) < 2:
        raise ValueError(f"need {len(dst)} landmarks, got {len(src)}")
    # x' = a x - b y + tx ; y' = b x + a y + ty : linear in (a, b, tx, ty).
    rows = np.zeros((2 * len(src), 4))
    rows[0::2] = np.column_stack([src[:, 0], -src[:, 1], np.ones(len(src)), np.zeros(len(src))])
    rows[1::2] = np.column_stack([src[:, 1], src[:, 0], np.zeros(len(src)), np.ones(len(src))])
    (a, b, tx, ty), *_ = np.linalg.lstsq(rows, dst.reshape(-1), rcond=None)
    return np.array([[a, -b, tx], [b, a, ty]])


def align_face(
    image: np.ndarray,
    landmarks: Sequence[Sequence[float]],
    size: int,
    template: Sequence[Sequence[float]] = TEMPLATE_0095,
) -> np.ndarray:
    """The ``size`` x ``size`` aligned crop of an RGB (or grey) image.

    A face much larger than the crop is first shrunk with area averaging around the face, so
    the warp does not alias (a bilinear warp at 1/4 scale skips three pixels in four).
    """
    matrix = similarity_transform(landmarks, size, template)
    scale = float(np.hypot(matrix[0, 0], matrix[1, 0]))
    if scale < 0.5:
        image, matrix = _shrink_around(image, matrix, size, scale)
    crop = cv2.warpAffine(
        image,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(BORDER_VALUE,) * 3,
    )
    return np.ascontiguousarray(crop)


def _shrink_around(
    image: np.ndarray, matrix: np.ndarray, size: int, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cut the source region the crop covers, shrink it by ``scale`` and fix the matrix."""
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64)
    source = corners @ inverse.T
    height, width = image.shape[:2]
    x0 = int(np.clip(np.floor(source[:, 0].min()) - 2, 0, width))
    y0 = int(np.clip(np.floor(source[:, 1].min()) - 2, 0, height))
    x1 = int(np.clip(np.ceil(source[:, 0].max()) + 2, 0, width))
    y1 = int(np.clip(np.ceil(source[:, 1].max()) + 2, 0, height))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return image, matrix
    region = image[y0:y1, x0:x1]
    out_w, out_h = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
    small = cv2.resize(region, (out_w, out_h), interpolation=cv2.INTER_AREA)
    fx, fy = out_w / (x1 - x0), out_h / (y1 - y0)
    # cv2.resize maps pixel centres: small = (p - origin + 0.5) * f - 0.5.
    to_small = np.array(
        [[fx, 0.0, (0.5 - x0) * fx - 0.5], [0.0, fy, (0.5 - y0) * fy - 0.5], [0.0, 0.0, 1.0]]
    )
    adjusted = matrix @ np.linalg.inv(to_small)
    return small, adjusted[:2]
