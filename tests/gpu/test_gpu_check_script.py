"""CI's proof that the GPU check works: ``scripts/gpu-check.sh --cpu``, its JSON, the report.

Not marked ``gpu``: the dry run takes the same steps as on a GPU, at tiny sizes on the CPU,
and runs the tests marked ``gpu`` there too (``GPU_CHECK_DEVICE=cpu``). The figures mean
nothing; the shape of the results and what the report makes of them are what is checked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from benchmarks.gpu_check import SHIPPED_SHAPE
from indexer.defaults import DEFAULT_MODEL

REPO = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gpu-check")
    done = subprocess.run(
        ["bash", "scripts/gpu-check.sh", str(out), "--cpu"],
        cwd=REPO,
        env=os.environ | {"PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=1300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    return out


def _results(out: Path) -> dict[str, Any]:
    return json.loads((out / "gpu.json").read_text())


def test_the_dry_run_says_it_is_one(dry_run: Path) -> None:
    results = _results(dry_run)
    assert results["dry_run"] is True and results["device"] == "cpu"
    assert results["errors"] == {}
    assert set(results["parts"]) == {"tests", "embed", "build", "search"}
    model = results["model"]
    assert model["random_weights"] is True
    assert (model["arch"], model["embedding_dim"]) == SHIPPED_SHAPE[:2]
    assert (dry_run / "gpu-check.log").stat().st_size > 0


def test_the_dry_run_runs_the_gpu_tests_on_the_cpu(dry_run: Path) -> None:
    tests = _results(dry_run)["tests"]
    outcomes = {c["name"].rsplit("::", 1)[-1]: c for c in tests["cases"]}
    assert tests["failed"] == tests["errors"] == 0 and tests["exit_status"] == 0
    for name in (
        "test_embedder_on_the_device_gives_the_cpus_vectors[fp16]",
        "test_embedder_on_the_device_gives_the_cpus_vectors[bf16]",
        "test_indexer_build_on_the_device_stores_the_cpus_vectors",
        "test_service_on_the_device_answers_a_query",
    ):
        assert outcomes[name]["outcome"] == "passed", name
    faiss_gpu = [c for n, c in outcomes.items() if "faiss" in c["name"]]
    assert len(faiss_gpu) == 2
    assert all(c["outcome"] == "skipped" and "FAISS has no GPU" in c["message"] for c in faiss_gpu)


def test_the_dry_run_measures_every_part(dry_run: Path) -> None:
    results = _results(dry_run)
    embed = results["embed"]
    variants = {(r["variant"], r["batch"]) for r in embed["runs"]}
    assert variants == {(v, b) for v in ("facefind", "facefind-compiled") for b in (1, 2)}
    assert all(r["images_per_s"] > 0 for r in embed["runs"])
    assert embed["target"]["met"] is False  # never on a CPU, whatever the figure
    (build,) = results["build"]["runs"]
    assert build["device"] == "cpu" and build["images"] == 6 and build["images_per_s"] > 0
    search = results["search"]
    rows = {(r["backend"], r["index"], r["setting"]): r for r in search["rows"]}
    assert rows[("torch", "exact", "float32")]["recall10"] == 1.0
    assert rows[("faiss-cpu", "Flat", "exact")]["recall10"] >= 0.99
    ivf = [r for r in search["rows"] if r["index"].startswith("IVF")]
    assert ivf and all(0 < r["recall10"] <= 1 for r in ivf)
    assert "faiss-gpu" in search["skipped"]
    assert search["target"]["measured_on_gpu"] is False and search["target"]["met"] is False


def _report(tmp_path: Path, gpu_json: Path) -> str:
    doc = tmp_path / "benchmarks.md"
    shutil.copy(REPO / "docs" / "benchmarks.md", doc)
    cmd = [sys.executable, "-m", "benchmarks.report", "--gpu", str(gpu_json)]
    cmd += ["--doc", str(doc), "--img", str(tmp_path / "img")]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    text = doc.read_text()
    start = text.index("<!-- BEGIN generated:gpu -->")
    return text[start : text.index("<!-- END generated:gpu -->")]


def test_the_report_never_shows_a_dry_run_as_gpu_figures(dry_run: Path, tmp_path: Path) -> None:
    block = _report(tmp_path, dry_run / "gpu.json")
    assert "Not yet measured on a GPU" in block and "dry run on the CPU" in block
    assert "faces/s" not in block and "|" not in block


def test_the_report_shows_a_gpu_run(dry_run: Path, tmp_path: Path) -> None:
    # The dry run's file relabelled as if a GPU had made it: only the rendering is checked.
    results = _results(dry_run)
    results.update(dry_run=False, device="cuda")
    results["gpu"] = {"name": "NVIDIA H200", "memory_gib": 139.8, "capability": "9.0",
                      "cuda": "13.0", "torch": "2.11.0"}  # fmt: skip
    fake = tmp_path / "gpu.json"
    fake.write_text(json.dumps(results))
    block = _report(tmp_path, fake)
    assert "Not yet measured" not in block and "NVIDIA H200" in block
    assert (
        "| embedder >= 3,000 faces/s |" in block and "| batch | eager | compiled | CPU |" in block
    )
    assert "| 20,000 vectors < 1.0 ms/query at recall@10 >= 0.95 |" in block
    assert "faiss-gpu not measured: FAISS has no GPU support" in block


@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="the shipped model is not installed")
def test_the_stand_in_has_the_shipped_models_shape() -> None:
    payload = torch.load(DEFAULT_MODEL, map_location="cpu", weights_only=True)
    assert (payload["arch"], payload["embedding_dim"], payload["input_size"]) == SHIPPED_SHAPE


def test_the_script_refuses_a_call_without_a_folder() -> None:
    done = subprocess.run(
        ["bash", "scripts/gpu-check.sh"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 2 and "usage" in done.stderr
