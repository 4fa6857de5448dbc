"""``python -m benchmarks.accuracy --peer-from``: face_recognition's rows of an earlier run
are carried into every set, also when the earlier file is the one being rewritten."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
SETS = ("five-celebrity", "yale")
PEER = "face_recognition"


def _row(system: str, top1: float, **extra: str) -> dict[str, object]:
    """A row as the benchmark writes it."""
    figures = {"top1": top1, "top5": 1.0, "top10": 1.0, "mAP": 0.9, "face_found": 1.0,
               "seconds_per_image": 0.05}  # fmt: skip
    return {"system": system, "detector": "hog", **figures, **extra}


def test_the_peer_rows_of_every_set_survive_a_rerun_into_the_same_file(
    tmp_path: Path, model_path: Path
) -> None:
    out = tmp_path / "accuracy.json"
    earlier = {
        "created": "2026-11-30T06:29:00Z",
        "sets": {
            "five-celebrity": {"systems": [_row(PEER, 1.0, carried_from="2026-11-29T03:05:51Z")]},
            "yale": {"systems": [_row("facefind", 0.1), _row(PEER, 0.98)]},
        },
    }
    out.write_text(json.dumps(earlier))
    cmd = [sys.executable, "-m", "benchmarks.accuracy", "--systems", "facefind", "--sets", *SETS,
           "--detectors", "yunet", "--max-images", "12", "--model", str(model_path),
           "--peer-from", str(out), "--out", str(out)]  # fmt: skip
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    sets = json.loads(out.read_text())["sets"]
    peers = {name: [r for r in sets[name]["systems"] if r["system"] == PEER]
             for name in SETS}  # fmt: skip
    assert [r["top1"] for r in peers["five-celebrity"]] == [1.0]
    assert peers["five-celebrity"][0]["carried_from"] == "2026-11-29T03:05:51Z"
    assert [r["top1"] for r in peers["yale"]] == [0.98]
    assert peers["yale"][0]["carried_from"] == "2026-11-30T06:29:00Z"
    # this run's own facefind row, once per set; the earlier file's facefind row is not carried
    assert [sum(r["system"] == "facefind" for r in sets[name]["systems"]) for name in SETS] == [
        1,
        1,
    ]
