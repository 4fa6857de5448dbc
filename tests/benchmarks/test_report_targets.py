"""benchmarks.report's targets table judges the accuracy targets on the default pipeline."""

from __future__ import annotations

from typing import Any

from benchmarks.report import targets_table


def _accuracy(yunet: tuple[float, float], haar: tuple[float, float]) -> dict[str, Any]:
    def row(system: str, detector: str, top1: float, mean_ap: float) -> dict[str, Any]:
        return {"system": system, "detector": detector, "top1": top1, "mAP": mean_ap}

    systems = [
        row("facefind", "haar", *haar),
        row("facefind", "yunet", *yunet),
        row("face_recognition", "hog", 0.919, 0.843),
    ]
    return {"sets": {"celeba-wild": {"systems": systems}}}


def _verdict(table: str, target: str) -> str:
    line = next(line for line in table.splitlines() if target in line)
    return line.rsplit("|", 2)[-2].strip()


def test_the_accuracy_issue_needs_both_top1_and_map_on_yunet() -> None:
    short_on_map = targets_table(_accuracy(yunet=(0.852, 0.643), haar=(0.5, 0.2)), None)
    assert "top-1 0.852, mAP 0.643 (YuNet)" in short_on_map
    assert _verdict(short_on_map, "accuracy issue") == "**not met**"
    both = targets_table(_accuracy(yunet=(0.86, 0.71), haar=(0.5, 0.2)), None)
    assert _verdict(both, "accuracy issue") == "**met**"


def test_another_detector_does_not_meet_it_for_the_default_pipeline() -> None:
    table = targets_table(_accuracy(yunet=(0.80, 0.60), haar=(0.90, 0.75)), None)
    assert "top-1 0.800, mAP 0.600 (YuNet)" in table
    assert _verdict(table, "accuracy issue") == "**not met**"
