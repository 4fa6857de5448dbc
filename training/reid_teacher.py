"""Intel's face-reidentification-retail-0095 as a distillation teacher, through OpenVINO.

A MobileNetV2 face embedder (Apache-2.0, 2.2 MB) that scores top-1 0.955 on celeba-wild with
five-point alignment, against dlib's 0.919, at a ninth of dlib's cost. It expects exactly the
crop ``indexer.align`` makes with ``TEMPLATE_0095``: 128 x 128, BGR, 0-255, no normalisation.
Training only (``pip install -r requirements-teacher.txt``); serving never imports OpenVINO.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from indexer.errors import FacefindError

REID_DIM = 256
REID_SIZE = 128
INSTALL = "pip install -r requirements-teacher.txt (openvino)"
MODEL_FILE = "face-reidentification-retail-0095.FP16.xml"
"""The Open Model Zoo's file name; its ``.bin`` weights lie beside it."""


def load_openvino() -> Any:
    try:
        import openvino
    except ImportError as exc:
        raise FacefindError(f"the 0095 teacher needs the OpenVINO runtime: {INSTALL}") from exc
    return openvino


class ReidTeacher:
    """Encodes aligned 128 x 128 RGB crops into L2-normalised 256-d vectors, in batches."""

    BATCH = 64
    """Crops per inference call: all of a shard at once holds gigabytes of activations."""

    def __init__(self, model_xml: Path, threads: int = 1) -> None:
        model_xml = Path(model_xml)
        if not model_xml.is_file() or not model_xml.with_suffix(".bin").is_file():
            raise FacefindError(
                f"teacher model not found: {model_xml} (and its .bin beside it); it is "
                f"{MODEL_FILE} from OpenVINO's Open Model Zoo (Apache-2.0)"
            )
        ov = load_openvino()
        core = ov.Core()
        model = core.read_model(str(model_xml))
        model.reshape([-1, 3, REID_SIZE, REID_SIZE])
        config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
        self._compiled = core.compile_model(model, "CPU", config)
        self._output = self._compiled.output(0)

    def encode(self, crops: np.ndarray) -> np.ndarray:
        """(N, 128, 128, 3) uint8 RGB -> (N, 256) float32, unit length."""
        if crops.ndim != 4 or crops.shape[1:] != (REID_SIZE, REID_SIZE, 3):
            raise ValueError(f"crops must be N x {REID_SIZE} x {REID_SIZE} x 3, got {crops.shape}")
        parts = [np.zeros((0, REID_DIM), np.float32)]
        for start in range(0, len(crops), self.BATCH):
            chunk = crops[start : start + self.BATCH, :, :, ::-1].transpose(0, 3, 1, 2)
            out = self._compiled(np.ascontiguousarray(chunk, dtype=np.float32))[self._output]
            parts.append(np.asarray(out, dtype=np.float32).reshape(len(chunk), -1))
        vectors = np.concatenate(parts)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def teacher_views(crops: np.ndarray) -> list[np.ndarray]:
    """The views every crop is taught in: as it is and mirrored (the template is symmetric,
    so a mirrored aligned face is still aligned)."""
    return [crops, np.ascontiguousarray(crops[:, :, ::-1])]


def resize_crops(crops: np.ndarray, size: int) -> np.ndarray:
    """Crops made at another size, resized for the teacher's 128 px input."""
    if crops.shape[1] == size:
        return crops
    return np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in crops])
