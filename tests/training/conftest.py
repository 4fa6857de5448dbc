"""Real crops of real faces, and one tiny real training run shared by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.cli import main
from training.prepare import prepare

CROP_SIZE = 48
TINY = (
    "--arch", "resnet18", "--image-size", "40", "--embedding-dim", "32",
    "--classes-per-batch", "3", "--images-per-class", "4", "--max-steps-per-epoch", "3",
    "--val-fraction", "0.4", "--warmup-steps", "1", "--workers", "0",
)  # fmt: skip


@pytest.fixture(scope="session")
def tiny_args() -> tuple[str, ...]:
    """Flags of a training run small enough for a test: seconds on two CPU cores."""
    return TINY


@pytest.fixture(scope="session")
def crops_dir(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """five-celebrity (5 people, 93 photos) cropped by the serving pipeline."""
    out = tmp_path_factory.mktemp("crops")
    prepare(shared_data / "five-celebrity", out, "haar", None, CROP_SIZE, workers=1)
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, crops_dir: Path) -> Path:
    """Two epochs of a small ResNet18 at 40 px: the whole train command, end to end."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(["train", "--data", str(crops_dir), "--out", str(out), "--epochs", "2", *TINY]) == 0
    return out
