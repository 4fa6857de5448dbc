"""Cut a face out of a photo the same way for training, indexing and querying."""

from __future__ import annotations

import cv2
import numpy as np

DEFAULT_MARGIN = 0.2


def crop_face(
    image: np.ndarray,
    box: tuple[int, int, int, int],
    size: int,
    margin: float = DEFAULT_MARGIN,
) -> np.ndarray:
    """A square crop centred on the box, grown by ``margin`` per side, resized to ``size``.

    Squaring keeps the face's aspect ratio; parts outside the photo are filled by replicating
    the border so the embedder never sees hard black edges.
    """
    x, y, w, h = box
    side = max(1, round(max(w, h) * (1.0 + 2.0 * margin)))
    cx, cy = x + w / 2.0, y + h / 2.0
    x0, y0 = round(cx - side / 2.0), round(cy - side / 2.0)
    x1, y1 = x0 + side, y0 + side
    height, width = image.shape[:2]
    pad = (max(0, -y0), max(0, y1 - height), max(0, -x0), max(0, x1 - width))
    patch = image[max(0, y0) : min(height, y1), max(0, x0) : min(width, x1)]
    if any(pad) and side > size and side * side > 4 * patch.shape[0] * patch.shape[1]:
        return _shrink_then_pad(patch, pad, side, size)
    if any(pad):
        patch = cv2.copyMakeBorder(patch, *pad, borderType=cv2.BORDER_REPLICATE)
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(patch, (size, size), interpolation=interpolation))


def _shrink_then_pad(
    patch: np.ndarray, pad: tuple[int, int, int, int], side: int, size: int
) -> np.ndarray:
    """The same square crop for a box that is mostly outside the photo (the whole of a
    1x30000 image, a panorama), made at the output size: padding first would allocate
    side**2 pixels, gigabytes for a tiny file."""
    scale = size / side
    h = min(size, max(1, round(patch.shape[0] * scale)))
    w = min(size, max(1, round(patch.shape[1] * scale)))
    small = cv2.resize(patch, (w, h), interpolation=cv2.INTER_AREA)
    top = min(round(pad[0] * scale), size - h)
    left = min(round(pad[2] * scale), size - w)
    border = (top, size - h - top, left, size - w - left)
    return np.ascontiguousarray(cv2.copyMakeBorder(small, *border, borderType=cv2.BORDER_REPLICATE))


def whole_image_box(image: np.ndarray) -> tuple[int, int, int, int]:
    height, width = image.shape[:2]
    return (0, 0, width, height)
