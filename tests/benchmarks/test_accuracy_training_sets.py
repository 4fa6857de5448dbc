"""The accuracy benchmark must know which benchmark sets a model learnt from."""

from __future__ import annotations

from pathlib import Path

import torch

from benchmarks.accuracy import _lfw_exclusion, _trained_on
from indexer.checkpoint import save_checkpoint
from indexer.model import EmbeddingNet


def _checkpoint(path: Path, training: dict) -> str:
    torch.manual_seed(0)
    save_checkpoint(path, EmbeddingNet("resnet18", 16), 64, training=training)
    return str(path)


def test_sets_in_the_training_data_are_found_and_validation_is_not(tmp_path: Path) -> None:
    model = _checkpoint(
        tmp_path / "m.pt",
        {
            "data": ["runs/lfw-crops", "runs/extra-crops/orl", "runs/extra-crops/yale"],
            "val_manifest": "../shared/benchmarks/celeba-wild.csv",
            "epochs": 3,
        },
    )
    seen = _trained_on(model)
    assert set(seen) == {"lfw", "orl", "yale"}
    assert "runs/extra-crops/orl" in seen["orl"]
    assert "lfw" in _lfw_exclusion(seen.get("lfw"), "auto")
    assert _lfw_exclusion(seen.get("lfw"), "always") is None


def test_a_model_without_training_record_has_seen_nothing(tmp_path: Path) -> None:
    model = _checkpoint(tmp_path / "m.pt", {})
    assert _trained_on(model) == {}
    assert _lfw_exclusion(None, "auto") is None
