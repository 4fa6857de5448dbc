"""CI's smoke run of ``python -m benchmarks.clustering --quick`` and of its report block.

The quick run indexes five-celebrity with the random-weight test model and clusters 2,000
synthetic faces; only the shape of the results is checked, and the scores' arithmetic on a
case worked by hand.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.clustering import score
from benchmarks.report import clustering_tables

REPO = Path(__file__).resolve().parent.parent.parent
HAS_PEER = importlib.util.find_spec("face_recognition") is not None


def test_scores_of_a_case_worked_by_hand() -> None:
    # truth: a a a b b; found: {0, 1} {2, 3}, face 4 unassigned
    figures = score(np.array([0, 0, 1, 1, -1]), ["a", "a", "a", "b", "b"])
    assert figures["pairwise_precision"] == pytest.approx(1 / 2)  # (0,1) right, (2,3) wrong
    assert figures["pairwise_recall"] == pytest.approx(1 / 4)  # of (0,1) (0,2) (1,2) (3,4)
    assert figures["bcubed_precision"] == pytest.approx((1 + 1 + 0.5 + 0.5 + 1) / 5)
    assert figures["bcubed_recall"] == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 / 2 + 1 / 2) / 5)
    assert (figures["persons"], figures["true_persons"]) == (2, 2)
    assert figures["unassigned_share"] == pytest.approx(0.2)


def test_quick_run_writes_results_the_report_reads(tmp_path: Path, model_path: Path) -> None:
    out = tmp_path / "clustering.json"
    cmd = [sys.executable, "-m", "benchmarks.clustering", "--quick", "--model", str(model_path)]
    cmd += ["--out", str(out), "--peer-workers", "1", *([] if HAS_PEER else ["--no-peer"])]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["quick"] is True and results["set"]["name"] == "five-celebrity"
    assert results["set"]["identities"] == 5 and results["model"]["random_weights"] is False
    methods = [(r["system"], r.get("method")) for r in results["systems"]]
    assert methods[:3] == [
        ("facefind", "whispers"),
        ("facefind", "components"),
        ("facefind", "whispers"),
    ]
    assert all(0 <= r["bcubed_f1"] <= 1 for r in results["systems"] if "skipped" not in r)
    if HAS_PEER:
        assert [r["system"] for r in results["systems"][3:]] == ["face_recognition"] * 2
    assert [r["faces"] for r in results["speed"]] == [2000, 2000]
    assert results["speed"][0]["bcubed_f1"] > 0.9  # well-separated synthetic persons
    block = clustering_tables(results, out)
    assert "QUICK SMOKE RUN" in block and "| 2,000 | facefind" in block
