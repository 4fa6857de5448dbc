from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexer.crop import crop_face
from indexer.decode import read_image
from indexer.detect import largest_face, make_detector
from indexer.pipeline import FacePipeline


@pytest.fixture(scope="module")
def lfw_image(shared_data: Path) -> np.ndarray:
    return read_image(next((shared_data / "lfw" / "Aaron_Eckhart").glob("*.jpg")))


@pytest.mark.parametrize("name", ["haar", "yunet"])
def test_detectors_find_the_face_in_a_portrait(
    name: str, lfw_image: np.ndarray, yunet_model: Path
) -> None:
    faces = make_detector(name, yunet_model).detect(lfw_image)
    assert faces, f"{name} found no face"
    x, y, w, h = largest_face(faces).box
    # LFW's deep-funneled images have the face in the centre of the 250x250 frame.
    assert x < 125 < x + w and y < 125 < y + h
    assert 0.0 < faces[0].score <= 1.0


def test_detectors_find_no_face_in_a_blank_image(yunet_model: Path) -> None:
    blank = np.full((300, 400, 3), 127, dtype=np.uint8)
    for name in ("haar", "yunet"):
        assert make_detector(name, yunet_model).detect(blank) == []


def test_large_images_are_detected_at_reduced_size_with_boxes_in_full_size(
    lfw_image: np.ndarray, yunet_model: Path
) -> None:
    import cv2

    big = cv2.resize(lfw_image, (1500, 1500))
    box = largest_face(make_detector("yunet", yunet_model).detect(big)).box
    assert 300 < box[2] < 1200 and box[0] + box[2] <= 1500


def test_none_detector_uses_the_whole_image(lfw_image: np.ndarray) -> None:
    (face,) = make_detector("none").detect(lfw_image)
    assert face.box == (0, 0, 250, 250)


def test_unknown_detector_and_missing_model_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown detector 'mtcnn'"):
        make_detector("mtcnn")
    with pytest.raises(ValueError, match="--detector-model"):
        make_detector("yunet")
    with pytest.raises(FileNotFoundError):
        make_detector("yunet", tmp_path / "missing.onnx")


def test_crop_is_square_with_margin_and_pads_outside_the_image() -> None:
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    image[40:60, 40:60] = 255
    crop = crop_face(image, (40, 40, 20, 20), size=50, margin=0.5)
    assert crop.shape == (50, 50, 3)
    # The box fills the middle half of a crop grown by 50% per side.
    assert crop[25, 25].tolist() == [255, 255, 255] and crop[2, 2].tolist() == [0, 0, 0]
    corner = crop_face(image, (0, 0, 30, 60), size=32)
    assert corner.shape == (32, 32, 3)


def test_pipeline_falls_back_to_the_whole_image_and_says_so(yunet_model: Path) -> None:
    pipeline = FacePipeline(make_detector("yunet", yunet_model), crop_size=64)
    blank = np.full((120, 200, 3), 90, dtype=np.uint8)
    result = pipeline.from_pixels(blank)
    assert not result.face_found
    assert len(result.faces) == 1 and result.faces[0].crop.shape == (64, 64, 3)
    assert pipeline.from_pixels(blank, fallback=False).faces == []


def test_pipeline_reports_every_face_or_the_largest(shared_data: Path, yunet_model: Path) -> None:
    pipeline = FacePipeline(make_detector("yunet", yunet_model), crop_size=64)
    # A group photo: two LFW portraits side by side, one scaled down.
    import cv2

    a = read_image(next((shared_data / "lfw" / "Aaron_Eckhart").glob("*.jpg")))
    b = cv2.resize(read_image(next((shared_data / "lfw" / "AJ_Cook").glob("*.jpg"))), (170, 170))
    canvas = np.zeros((250, 450, 3), dtype=np.uint8)
    canvas[:, :250], canvas[40:210, 270:440] = a, b
    every = pipeline.from_pixels(canvas, mode="all")
    assert len(every.faces) == 2 and every.face_found
    (largest,) = pipeline.from_pixels(canvas).faces
    assert largest.box[0] < 250
