"""The GPU path's tests: marked ``gpu``, skipped (with the reason) where there is no CUDA GPU.

``scripts/gpu-check.sh`` runs them on a machine with one. ``GPU_CHECK_DEVICE=cpu``, which
``scripts/gpu-check.sh --cpu`` sets, runs them on the CPU instead, so that CI proves the tests
themselves work; the FAISS GPU tests still skip there, FAISS having no GPU to use.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

DEVICE = os.environ.get("GPU_CHECK_DEVICE", "cuda")
NO_CUDA = "no CUDA GPU here: the gpu tests run where there is one (scripts/gpu-check.sh)"


@pytest.fixture(scope="session")
def device() -> str:
    """Where the GPU path runs: cuda, or cpu in ``scripts/gpu-check.sh --cpu``'s dry run."""
    if DEVICE.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip(NO_CUDA)
    return DEVICE


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six distinct photos in three person folders, made here: the GPU machine has no
    ../shared, and the tests use ``--detector none`` (detection runs on the CPU anyway)."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(7)
    for i in range(6):
        folder = root / f"person{i // 2}"
        folder.mkdir(exist_ok=True)
        image = cv2.GaussianBlur(rng.integers(0, 256, (120, 100, 3), dtype=np.uint8), (7, 7), 2)
        cv2.imwrite(str(folder / f"photo{i}.jpg"), image)
    return root
