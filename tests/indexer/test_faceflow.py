"""The one face flow: which pipeline a model gets, what galleries accept, what is reported."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from indexer import detector_file, faceflow
from indexer.align import ALIGN_0095, BOX
from indexer.checkpoint import ModelInfo
from indexer.decode import read_image_bytes
from indexer.detector_file import YUNET_SHA256, install_detector
from indexer.errors import ModelMismatch, ModelNotFound
from indexer.faceflow import (
    FlowSpec,
    face_dict,
    flow_spec,
    match_dict,
    new_faces,
    threshold,
    vector_space,
)
from indexer.gallery_db import check_space
from indexer.records import FaceRecord, Match
from indexer.settings import Detector, FaceFlowSettings

ALIGNED = ModelInfo("resnet50", 256, 96, fingerprint="abc", alignment=ALIGN_0095,
                    thresholds={"0.01": 0.4, "0.001": 0.5})  # fmt: skip
BOXED = ModelInfo("resnet50", 256, 96, fingerprint="old")


def test_an_aligned_model_gets_aligned_crops_from_yunet(yunet_model: Path) -> None:
    spec = flow_spec(ALIGNED, _faces("yunet", yunet_model))
    assert spec.alignment == ALIGN_0095 and spec.crop_size == 96 and spec.crops == "aligned"
    assert vector_space(ALIGNED, spec) == "abc"
    haar = flow_spec(ALIGNED, _faces("haar"))
    assert haar.crops == "box" and vector_space(ALIGNED, haar) == "abc:box"
    assert vector_space(BOXED, flow_spec(BOXED, _faces("yunet", yunet_model))) == "old"


def test_faces_are_cut_at_the_crop_size_training_cut_them_at(yunet_model: Path) -> None:
    """A distilled model's pack was cut at 128 px and shrunk to 96: serving cuts there too."""
    cut_large = replace(ALIGNED, crop_size=128)
    assert flow_spec(cut_large, _faces("yunet", yunet_model)).crop_size == 128
    assert flow_spec(cut_large, _faces("haar")).crop_size == 128
    assert ALIGNED.crop_size == 96  # a checkpoint from before: cut at the input size


def test_aligned_crop_of_a_real_photo(shared_data: Path, yunet_model: Path) -> None:
    spec = flow_spec(ALIGNED, _faces("yunet", yunet_model))
    photo = sorted((shared_data / "five-celebrity").rglob("*.jpg"))[0]
    image = spec.pipeline().from_bytes(read_image_bytes(photo), mode="all")
    face = image.faces[0]
    assert face.detected and face.crop.shape == (96, 96, 3) and len(face.landmarks) == 5
    described = face_dict(image, 0)
    assert len(described["landmarks"]) == 5 and described["detected"] is True
    rows = new_faces(image, np.ones((len(image.faces), 4), np.float32), "a.jpg", "Ann", {"k": 1})
    assert rows[0].landmarks is not None and rows[0].crop_jpeg[:2] == b"\xff\xd8"
    assert rows[0].label == "Ann" and rows[0].metadata == {"k": 1}


def test_missing_yunet_falls_back_to_haar_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(faceflow, "DEFAULT_DETECTOR_MODEL", tmp_path / "none.onnx")
    faceflow._warn_no_yunet.cache_clear()
    with caplog.at_level(logging.WARNING):
        first = flow_spec(ALIGNED, _faces("yunet"))
        again = flow_spec(ALIGNED, _faces("yunet"))
    assert first.detector == again.detector == "haar"
    warnings = [r for r in caplog.records if "YuNet's model file is not installed" in r.message]
    assert len(warnings) == 1 and "python -m indexer fetch-detector" in warnings[0].message
    with pytest.raises(FileNotFoundError):  # a file named explicitly must exist
        flow_spec(ALIGNED, _faces("yunet", tmp_path / "missing.onnx"))


def test_gallery_of_other_crops_is_refused_with_a_sentence() -> None:
    check_space(None, "abc")
    check_space("abc", "abc")
    with pytest.raises(ModelMismatch, match="vectors of aligned faces and these would be of box"):
        check_space("abc", "abc:box")
    with pytest.raises(ModelMismatch, match="use the detector the gallery was built with"):
        check_space("abc:box", "abc")
    check_space("zzz", "abc")  # another model: the store's own refusal says that


def test_match_reports_same_person_by_the_calibrated_threshold() -> None:
    record = FaceRecord("id1", "Ann", "a.jpg", "h", (1, 2, 3, 4), 0.9, True, {}, "abc", 0.0,
                        [(1.0, 2.0)] * 5)  # fmt: skip
    assert threshold(ALIGNED) == 0.4 and threshold(BOXED) is None
    close = match_dict(Match(record, 0.45), threshold(ALIGNED))
    far = match_dict(Match(record, 0.35), threshold(ALIGNED))
    assert close["same_person"] is True and far["same_person"] is False
    assert match_dict(Match(record, 0.9), None)["same_person"] is None
    assert close["landmarks"] == [[1.0, 2.0]] * 5 and close["box"] == [1, 2, 3, 4]


def test_flow_spec_pickles_for_worker_processes(yunet_model: Path) -> None:
    import pickle

    spec = FlowSpec("yunet", yunet_model, 64, ALIGN_0095)
    assert pickle.loads(pickle.dumps(spec)) == spec
    assert FlowSpec("haar", None, 64, BOX).crops == "box"


def test_fetch_detector_checks_the_hash(tmp_path: Path, yunet_model: Path) -> None:
    dest = tmp_path / "models" / "yunet.onnx"
    assert "installed YuNet" in install_detector(yunet_model, dest)
    assert "already installed" in install_detector(yunet_model, dest)
    wrong = tmp_path / "wrong.onnx"
    wrong.write_bytes(b"not a model")
    with pytest.raises(ModelNotFound, match="not the pinned YuNet file"):
        install_detector(wrong, tmp_path / "other.onnx")
    assert not (tmp_path / "other.onnx").exists()
    assert len(YUNET_SHA256) == 64


def test_fetch_detector_without_network_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    with pytest.raises(ModelNotFound, match="could not download YuNet"):
        detector_file.install_detector(None, tmp_path / "y.onnx", timeout=5)
    assert not (tmp_path / "y.onnx").exists()


def _faces(detector: Detector, model: Path | None = None) -> FaceFlowSettings:
    return FaceFlowSettings(detector=detector, detector_model=model)
