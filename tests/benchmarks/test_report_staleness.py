"""benchmarks.report's check that a results file still describes the shipped model."""

from __future__ import annotations

from typing import Any

from benchmarks.report import staleness

SHIPPED = {
    "fingerprint": "a" * 16,
    "arch": "resnet50",
    "embedding_dim": 256,
    "input_size": 96,
    "crop_size": 128,
    "flip_average": True,
    "random_weights": False,
}


def _results(kind: str, detector: str = "yunet", **model: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "command": f"python -m benchmarks.{kind}",
        "model": {**SHIPPED, **model},
        "build": {"facefind": {"detector": detector}} if kind == "speed" else None,
    }


def test_the_shipped_model_and_pipeline_are_current() -> None:
    assert staleness(_results("speed"), SHIPPED) is None
    assert staleness(_results("accuracy"), SHIPPED) is None


def test_speed_holds_across_weights_of_the_same_shape() -> None:
    assert staleness(_results("speed", fingerprint="b" * 16), SHIPPED) is None


def test_speed_of_another_shape_is_out_of_date() -> None:
    reason = staleness(_results("speed", embedding_dim=128, flip_average=False), SHIPPED)
    assert reason is not None
    assert "128-d" in reason and "256-d" in reason and "python -m benchmarks.speed" in reason


def test_speed_timed_with_haar_is_out_of_date() -> None:
    reason = staleness(_results("speed", detector="haar"), SHIPPED)
    assert reason is not None and "Haar" in reason


def test_accuracy_of_other_weights_is_out_of_date() -> None:
    reason = staleness(_results("accuracy", fingerprint="b" * 16), SHIPPED)
    assert reason is not None and "b" * 16 in reason


def test_random_weights_stand_in_for_speed_only() -> None:
    stand_in = {"fingerprint": "c" * 16, "random_weights": True}
    assert staleness(_results("speed", **stand_in), SHIPPED) is None
    assert staleness(_results("speed", **stand_in, input_size=112), SHIPPED) is not None
    assert staleness(_results("accuracy", **stand_in), SHIPPED) is not None


def test_results_without_a_model_are_never_marked() -> None:
    assert staleness({"kind": "scaling", "command": "x"}, SHIPPED) is None
