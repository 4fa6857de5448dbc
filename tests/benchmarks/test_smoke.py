"""CI's smoke run of every benchmark script at tiny sizes, so that none of them can rot.

Each script runs as users run it (``python -m benchmarks.<script> --quick``) in a subprocess;
the tests check the exit status and the shape of the results JSON, never the figures, which
on a shared CI machine mean nothing. face_recognition's parts are skipped, with the reason,
where it is not installed (it is not one of facefind's dependencies).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
HAS_PEER = importlib.util.find_spec("face_recognition") is not None
NO_PEER = "face_recognition is not installed (pip install -r benchmarks/requirements-peer.txt)"


def _run(*args: str, timeout: int = 600) -> None:
    done = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def speed(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> tuple[Path, Any]:
    out = tmp_path_factory.mktemp("speed") / "speed.json"
    args = ["benchmarks.speed", "all", "--quick", "--model", str(model_path), "--out", str(out)]
    args += ["--build-images", "12", "--sizes", "4000"]
    _run(*args, *([] if HAS_PEER else ["--no-peer"]))
    return out, json.loads(out.read_text())


@pytest.fixture(scope="module")
def accuracy(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> tuple[Path, Any]:
    out = tmp_path_factory.mktemp("accuracy") / "accuracy.json"
    args = ["benchmarks.accuracy", "--quick", "--model", str(model_path), "--out", str(out)]
    args += ["--max-images", "12", "--peer-workers", "1"]
    _run(*args, *([] if HAS_PEER else ["--systems", "facefind"]))
    return out, json.loads(out.read_text())


def test_speed_records_the_machine(speed: tuple[Path, Any]) -> None:
    results = speed[1]
    assert results["quick"] is True
    assert {"cpu", "versions", "load_average"} <= set(results["machine"])
    assert results["model"]["random_weights"] is False


def test_embed_compares_plain_and_facefind(speed: tuple[Path, Any]) -> None:
    embed = speed[1]["embed"]
    variants = {r["variant"] for r in embed["runs"]}
    assert {"plain-fp32", "facefind"} <= variants
    assert all(r["images_per_s"] > 0 and r["gflops"] > 0 for r in embed["runs"])
    assert {s["variant"] for s in embed["speedups"]} >= {"facefind"}
    assert embed["peak"]["fp32_gflops"] > 0


def test_build_times_facefind(speed: tuple[Path, Any]) -> None:
    build = speed[1]["build"]
    assert build["facefind"]["images"] == 12
    assert build["facefind"]["images_per_s"] > 0
    assert build["facefind"]["detector"] == "yunet"  # the default pipeline's
    assert "target_met" in build


@pytest.mark.skipif(not HAS_PEER, reason=NO_PEER)
def test_build_times_face_recognition(speed: tuple[Path, Any]) -> None:
    build = speed[1]["build"]
    assert build["face_recognition"]["images"] == 12
    assert build["speedup_vs_face_recognition"] > 0


def test_http_measures_latency_and_concurrency(speed: tuple[Path, Any]) -> None:
    http = speed[1]["http"]
    single = http["single_client"]
    assert single["requests"] > 0 and single["p50_ms"] > 0
    assert {"decode", "detect", "embed", "search", "http_and_queueing"} <= set(
        single["stages_median_ms"]
    )
    assert [c["clients"] for c in http["concurrency"]] == [1, 4, 16]
    assert http["server"]["gallery_size"] == 12
    assert http["server"]["detector"] == "yunet"
    assert "--detector-model" in http["server"]["command"]


def test_search_measures_recall_of_each_index(speed: tuple[Path, Any]) -> None:
    search = speed[1]["search"]
    rows = search["datasets"][0]["indexes"]
    exact = [r for r in rows if r["factory"] == "Flat"]
    assert exact and exact[0]["recall10"] == 1.0
    assert {r["kind"] for r in rows} == {"flat", "ivf", "hnsw"}
    assert all(0 <= r["recall10"] <= 1 and r["bytes_per_vector"] > 0 for r in rows)
    assert "met" in search["target"]


def test_accuracy_follows_the_protocol(accuracy: tuple[Path, Any]) -> None:
    entry = accuracy[1]["sets"]["five-celebrity"]
    ours = [r for r in entry["systems"] if r["system"] == "facefind"]
    assert [r["detector"] for r in ours] == ["haar", "yunet"]
    for row in ours:
        assert {"top1", "top5", "top10", "mAP", "face_found", "seconds_per_image"} <= set(row)


@pytest.mark.skipif(not HAS_PEER, reason=NO_PEER)
def test_accuracy_runs_face_recognition(accuracy: tuple[Path, Any]) -> None:
    entry = accuracy[1]["sets"]["five-celebrity"]
    (peer,) = [r for r in entry["systems"] if r["system"] == "face_recognition"]
    assert 0 <= peer["top1"] <= 1 and peer["face_found"] > 0


def test_report_fills_the_document(
    tmp_path: Path, speed: tuple[Path, Any], accuracy: tuple[Path, Any]
) -> None:
    doc = tmp_path / "benchmarks.md"
    shutil.copy(REPO / "docs" / "benchmarks.md", doc)
    args = ["--accuracy", str(accuracy[0]), "--speed", str(speed[0])]
    _run("benchmarks.report", *args, "--doc", str(doc), "--img", str(tmp_path / "img"))
    text = doc.read_text()
    assert "QUICK SMOKE RUN" in text and "Not measured yet" not in text
    for png in (
        "embed-throughput-vs-batch",
        "http-latency-vs-concurrency",
        "search-recall-vs-latency",
    ):
        assert (tmp_path / "img" / f"{png}.png").stat().st_size > 1000


def test_report_marks_figures_of_another_model_out_of_date(
    tmp_path: Path,
    speed: tuple[Path, Any],
    accuracy: tuple[Path, Any],
    model_path: Path,
    other_model_path: Path,
) -> None:
    args = ["--accuracy", str(accuracy[0]), "--speed", str(speed[0])]
    args += ["--clustering", str(tmp_path / "not-measured.json")]  # the repo's: another model
    texts = {}
    for name, model in (("same", model_path), ("other", other_model_path)):
        doc = tmp_path / f"{name}.md"
        shutil.copy(REPO / "docs" / "benchmarks.md", doc)
        _run(
            "benchmarks.report",
            *args,
            "--model",
            str(model),
            "--doc",
            str(doc),
            "--img",
            str(tmp_path / "img"),
        )
        texts[name] = doc.read_text()
    assert "rows are out of date" not in texts["same"] and "Out of date" not in texts["same"]
    assert "The speed rows are out of date" in texts["other"]
    assert "The accuracy rows are out of date" in texts["other"]
    assert "benchmarks.speed all --quick" in texts["other"]  # the command that refreshes them
