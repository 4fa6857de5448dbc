"""Alignment: the least-squares similarity transform, the warp, and YuNet's landmarks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from indexer.align import (
    ALIGN_0095,
    BOX,
    TEMPLATE_0095,
    Alignment,
    align_face,
    similarity_transform,
)
from indexer.decode import decode_image, read_image_bytes
from indexer.detect import make_detector


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_transform_recovers_an_exact_similarity() -> None:
    angle, scale, shift = np.deg2rad(17.0), 0.37, np.array([11.0, -4.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    target = np.array(TEMPLATE_0095) * 112
    landmarks = (target - shift) @ np.linalg.inv(rotation).T
    matrix = similarity_transform(landmarks, 112, TEMPLATE_0095)
    assert np.allclose(matrix[:, :2], rotation, atol=1e-9)
    assert np.allclose(_apply(matrix, landmarks), target, atol=1e-9)


def test_transform_is_the_least_squares_fit_over_all_five_points() -> None:
    """With one point off, no point lands exactly, and the fit beats one that drops it."""
    rng = np.random.default_rng(0)
    landmarks = np.array(TEMPLATE_0095) * 300 + 40 + rng.normal(0, 3, (5, 2))
    landmarks[2] += (0, 25)  # the nose, which a RANSAC fit would throw away
    matrix = similarity_transform(landmarks, 128, TEMPLATE_0095)
    error = np.linalg.norm(_apply(matrix, landmarks) - np.array(TEMPLATE_0095) * 128, axis=1)
    without_nose = similarity_transform(np.delete(landmarks, 2, 0), 128,
                                        np.delete(np.array(TEMPLATE_0095), 2, 0))  # fmt: skip
    other = np.linalg.norm(_apply(without_nose, landmarks) - np.array(TEMPLATE_0095) * 128, axis=1)
    assert (error**2).sum() <= (other**2).sum()
    assert error.max() > 0.1


def test_wrong_number_of_landmarks_is_refused() -> None:
    with pytest.raises(ValueError, match="need 5 landmarks"):
        similarity_transform([(0, 0), (1, 1)], 96, TEMPLATE_0095)


@pytest.mark.parametrize("face_side", [60, 900])
def test_warp_puts_each_landmark_on_its_template_point(face_side: int) -> None:
    """Dots drawn at the landmarks end up at the template's points, for a face smaller
    than the crop and for one shrunk more than 4x (the area-averaged path)."""
    size = 96
    canvas = np.zeros((face_side * 2, face_side * 2, 3), np.uint8)
    landmarks = np.array(TEMPLATE_0095) * face_side + face_side / 2
    radius = max(2, face_side // 40)
    for x, y in landmarks:
        cv2.circle(canvas, (round(x), round(y)), radius, (255, 255, 255), -1)
    crop = align_face(canvas, landmarks, size)
    assert crop.shape == (size, size, 3)
    grey = crop[..., 0].astype(float)
    for tx, ty in np.array(TEMPLATE_0095) * size:
        x0, y0 = round(tx) - 4, round(ty) - 4
        window = grey[y0 : y0 + 9, x0 : x0 + 9]
        ys, xs = np.nonzero(window > 0)
        weights = window[ys, xs]
        centre = (np.average(xs, weights=weights) + x0, np.average(ys, weights=weights) + y0)
        assert np.hypot(centre[0] - tx, centre[1] - ty) < 1.0


def test_outside_the_photo_is_constant_not_replicated() -> None:
    image = np.full((50, 50, 3), 200, np.uint8)
    landmarks = np.array(TEMPLATE_0095) * 50 - 20  # the crop's top-left lies off the photo
    crop = align_face(image, landmarks, 64)
    assert (crop[0, 0] == 0).all() and (crop[-1, -1] == 200).all()


def test_alignment_round_trips_and_names_its_crops() -> None:
    assert Alignment.from_dict(ALIGN_0095.to_dict()) == ALIGN_0095
    assert Alignment.from_dict(None) == BOX
    assert BOX.describe(96) == "box@96"
    assert ALIGN_0095.describe(96).startswith("template[0.3156:0.4616")


def test_yunet_gives_five_landmarks_in_order(shared_data: Path, yunet_model: Path) -> None:
    detector = make_detector("yunet", yunet_model)
    photos = sorted((shared_data / "five-celebrity").rglob("*.jpg"))[:5]
    for photo in photos:
        faces = detector.detect(decode_image(read_image_bytes(photo)))
        assert faces, photo
        (rex, rey), (lex, ley), (nx, ny), (rmx, rmy), (lmx, lmy) = faces[0].landmarks
        assert rex < nx < lex and rmx < lmx  # the person's right is the image's left
        assert max(rey, ley) < ny < min(rmy, lmy)
        x, y, w, h = faces[0].box
        assert x <= nx <= x + w and y <= ny <= y + h


def test_yunet_finds_a_face_that_fills_the_photo(shared_data: Path, yunet_model: Path) -> None:
    """Tight aligned chips touch the borders; a miss is retried on a padded copy."""
    detector = make_detector("yunet", yunet_model)
    chips = sorted((shared_data / "celeba-aligned").rglob("*.jpg"))[:40]
    found = [bool(detector.detect(decode_image(read_image_bytes(p)))) for p in chips]
    assert sum(found) >= 38
    image = decode_image(read_image_bytes(chips[0]))
    for face in detector.detect(image):
        x, y, w, h = face.box
        assert x >= 0 and y >= 0 and x + w <= image.shape[1] and y + h <= image.shape[0]
