"""Fixtures shared by every test package: real data, a real (random-weight) checkpoint."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from indexer.checkpoint import save_checkpoint
from indexer.model import EmbeddingNet

# Dozens of services start in these tests, each compiling its embedder would add half a
# minute to every start: they run eagerly, and the tests of compiling turn it back on.
os.environ.setdefault("FACEFIND_COMPILE", "false")

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
TEST_INPUT_SIZE = 64
TEST_EMBEDDING_DIM = 128


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` of the repository (CI has it beside the clone)."""
    path = SHARED / "data"
    assert path.is_dir(), f"the shared face data is missing: {path}"
    return path


@pytest.fixture(scope="session")
def yunet_model() -> Path:
    path = SHARED / "models" / "face_detection_yunet.onnx"
    assert path.is_file(), f"the YuNet model is missing: {path}"
    return path


@pytest.fixture(scope="session")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised ResNet50 embedder at a small input size, in the real format."""
    torch.manual_seed(0)
    net = EmbeddingNet("resnet50", TEST_EMBEDDING_DIM)
    path = tmp_path_factory.mktemp("model") / "random-resnet50.pt"
    save_checkpoint(path, net, TEST_INPUT_SIZE, metrics={"note": "random weights for tests"})
    return path


@pytest.fixture(scope="session")
def other_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second, different checkpoint: for model-mismatch tests."""
    torch.manual_seed(1)
    net = EmbeddingNet("resnet18", TEST_EMBEDDING_DIM)
    path = tmp_path_factory.mktemp("model2") / "random-resnet18.pt"
    save_checkpoint(path, net, TEST_INPUT_SIZE)
    return path


@pytest.fixture
def gallery_dir(tmp_path: Path, shared_data: Path) -> Path:
    """A small gallery: five-celebrity, one folder per person, copied so tests may edit it."""
    dest = tmp_path / "gallery"
    shutil.copytree(shared_data / "five-celebrity", dest)
    return dest
