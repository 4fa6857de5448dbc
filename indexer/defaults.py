"""Where facefind looks for its models when none is given."""

from __future__ import annotations

from pathlib import Path

from indexer.errors import ModelNotFound

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = PROJECT_ROOT / "models" / "facefind-resnet50.pt"
"""The trained model that ships with facefind (see models/README.md)."""


def resolve_model(model: Path | str | None) -> Path | str:
    """The given model, else the shipped default; a missing one says how to get one."""
    if model is not None and str(model) != "":
        return model
    if DEFAULT_MODEL.is_file():
        return DEFAULT_MODEL
    raise ModelNotFound(
        f"no model given and the default model is not installed ({DEFAULT_MODEL}). "
        "Pass --model PATH (or set FACEFIND_MODEL) to a checkpoint made by "
        "`python -m training train`, or use --model imagenet where torchvision can download "
        "its ImageNet weights."
    )


DEFAULT_DETECTOR_MODEL = PROJECT_ROOT / "models" / "face_detection_yunet.onnx"
"""Where ``make setup`` puts YuNet (OpenCV model zoo, MIT); any copy can be named instead."""
FETCH_DETECTOR = (
    "python -m indexer fetch-detector (or set FACEFIND_DETECTOR_MODEL to a copy of the .onnx file)"
)
