"""pack (aligned crops + 0095 teacher targets) and distill (the resumable student run),
end to end on five-celebrity with the real YuNet and the real teacher."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from indexer.align import ALIGN_0095
from indexer.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from indexer.embedder import load_embedder
from indexer.model import EmbeddingNet
from training.augment import to_input
from training.cli import main
from training.distill_data import DistillData
from training.distill_settings import DistillSettings
from training.pack import pack
from training.pack_files import FAILED, PackMeta, load_packs
from training.teacher_losses import cosine_loss, relational_loss

SHARED_MODELS = Path(__file__).resolve().parents[3] / "shared" / "models"
TEACHER = SHARED_MODELS / "face-reidentification-retail-0095.FP16.xml"
TINY = ("--arch", "resnet18", "--image-size", "40", "--sizes", "32:0.5,40:0.5",
        "--total-images", "96", "--batch-size", "16", "--ids-per-batch", "2",
        "--val-every", "48", "--val-share", "0.5", "--warmup-steps", "1",
        "--threads", "2")  # fmt: skip

pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory, shared_data: Path, yunet_model: Path) -> Path:
    out = tmp_path_factory.mktemp("pack")
    report = pack([shared_data / "five-celebrity"], out, yunet_model, TEACHER, workers=1)
    assert report.packed >= 90 and report.shards_made == 1
    return out


def test_pack_holds_aligned_crops_and_both_views(packed: Path) -> None:
    data = load_packs([packed])
    assert data.crops.shape[1:] == (128, 128, 3) and data.crops.dtype == np.uint8
    assert data.targets.shape == (len(data.crops), 2, 256)
    norms = np.linalg.norm(data.targets.astype(np.float32), axis=-1)
    assert np.allclose(norms, 1.0, atol=1e-2)
    assert PackMeta.load(packed).aligned == ALIGN_0095
    assert all(i.startswith("five-celebrity/") for i in data.identities)
    # the teacher knows these people: a crop's nearest other crop is mostly the same person
    vectors = data.targets[:, 0].astype(np.float32)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -1)
    assert (data.identities[sims.argmax(1)] == data.identities).mean() > 0.9
    # mirrored views are close to, but not, the same vector
    cos = (data.targets[:, 0].astype(np.float32) * data.targets[:, 1]).sum(1)
    assert 0.6 < cos.mean() < 0.999


def test_pack_resumes_without_redoing_shards(
    packed: Path, shared_data: Path, yunet_model: Path
) -> None:
    before = (packed / "shard-00000.npz").stat().st_mtime_ns
    report = pack([shared_data / "five-celebrity"], packed, yunet_model, TEACHER, workers=1)
    assert report.shards_made == 0
    assert (packed / "shard-00000.npz").stat().st_mtime_ns == before
    assert (packed / FAILED).is_file()


def test_pack_refuses_bad_sources(
    tmp_path: Path, shared_data: Path, yunet_model: Path, capsys
) -> None:
    missing = tmp_path / "nope"
    args = ["pack", str(missing), "--out", str(tmp_path / "p"), "--detector-model",
            str(yunet_model), "--teacher-model", str(TEACHER)]  # fmt: skip
    assert main(args) == 2
    assert "source folder not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    args[1] = str(tmp_path / "empty")
    assert main(args) == 2
    assert "no images in" in capsys.readouterr().err
    args[1] = str(shared_data / "five-celebrity")
    args[args.index("--teacher-model") + 1] = str(tmp_path / "teacher.xml")
    assert main(args) == 2
    assert "teacher model not found" in capsys.readouterr().err


def test_batches_are_a_function_of_the_step(packed: Path) -> None:
    data = DistillData(load_packs([packed]), 0.5, seed=3)
    one, again = data.batch(7, 16, 2, 3), data.batch(7, 16, 2, 3)
    assert torch.equal(one.index, again.index) and torch.equal(one.mirrored, again.mirrored)
    assert not torch.equal(one.index, data.batch(8, 16, 2, 3).index)
    assert set(one.index.tolist()) <= set(data.train.tolist())
    assert not set(data.train) & set(data.val)
    labelled = one.labels >= 0
    pairs = min(2, len(data.groups))
    assert labelled.sum() == 2 * pairs and len(set(one.labels[labelled].tolist())) == pairs
    targets = data.targets.numpy()
    assert np.allclose(np.linalg.norm(targets, axis=-1), 1.0, atol=1e-4)


def test_losses_against_brute_force() -> None:
    torch.manual_seed(0)
    s = torch.nn.functional.normalize(torch.randn(6, 8), dim=1)
    t = torch.nn.functional.normalize(torch.randn(6, 8), dim=1)
    brute_cos = sum(1 - float(torch.dot(s[i], t[i])) for i in range(6)) / 6
    assert cosine_loss(s, t).item() == pytest.approx(brute_cos, abs=1e-6)
    pairs = [(i, j) for i in range(6) for j in range(6) if i != j]
    brute_rel = sum((float(s[i] @ s[j]) - float(t[i] @ t[j])) ** 2 for i, j in pairs) / len(pairs)
    assert relational_loss(s, t).item() == pytest.approx(brute_rel, abs=1e-6)
    assert relational_loss(s, s).item() == pytest.approx(0.0, abs=1e-7)


def test_distill_writes_a_calibrated_aligned_checkpoint_and_resumes(
    packed: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    assert main(["distill", "--pack", str(packed), "--out", str(out), *TINY,
                 "--max-steps", "4"]) == 0  # fmt: skip
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["progress"]["step"] == 4 and state["progress"]["images"] == 64
    assert (out / "metrics.csv").is_file() and (out / "curve.png").is_file()
    assert main(["distill", "--pack", str(packed), "--out", str(out), "--resume"]) == 0
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["progress"]["step"] == 6  # 96 images of 16: the schedule's end
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,images,minutes,size") and len(rows) >= 3
    _, info = load_checkpoint(out / "best.pt")
    assert info.alignment == ALIGN_0095 and info.input_size == 40
    assert info.crop_size == 128  # the pack's: serving cuts faces there and shrinks them
    assert set(info.thresholds) == {"0.01", "0.001"}
    assert -1.0 <= info.thresholds["0.01"] <= info.thresholds["0.001"] <= 1.0
    assert info.training["images_seen"] > 0
    config = json.loads((out / "config.json").read_text())
    assert config["total_images"] == 96


def test_calibrate_measures_the_model_again_as_it_embeds(
    packed: Path, tmp_path: Path, model_path: Path, capsys
) -> None:
    """A run's best.pt mirror-averages by default; calibrating it as it is gives back the
    run's own figures, and turning mirror averaging off measures new thresholds."""
    out = tmp_path / "run"
    assert main(["distill", "--pack", str(packed), "--out", str(out), *TINY,
                 "--max-steps", "3"]) == 0  # fmt: skip
    _, run = load_checkpoint(out / "best.pt")
    assert run.flip_average and run.training["settings"]["flip_average"]
    assert main(["export", str(out / "best.pt"), str(tmp_path / "shipped.pt")]) == 0
    assert load_checkpoint(tmp_path / "shipped.pt")[1].flip_average  # export keeps it
    again = tmp_path / "again.pt"
    assert main(["calibrate", str(out / "best.pt"), "--pack", str(packed), "--out", str(again),
                 "--device", "cpu"]) == 0  # fmt: skip
    assert "with mirror averaging" in capsys.readouterr().out
    _, same = load_checkpoint(again)
    assert same.crop_size == 128 and load_checkpoint(tmp_path / "shipped.pt")[1].crop_size == 128
    assert same.flip_average and same.metrics["mAP"] == pytest.approx(run.metrics["mAP"], abs=1e-6)
    for far, value in run.thresholds.items():
        assert same.thresholds[far] == pytest.approx(value, abs=1e-5)
    assert main(["calibrate", str(again), "--pack", str(packed), "--no-flip-average"]) == 0
    assert "without mirror averaging" in capsys.readouterr().out
    _, plain = load_checkpoint(again)
    assert not plain.flip_average and plain.training["held_out_faces"] > 0
    assert plain.thresholds["0.01"] != pytest.approx(run.thresholds["0.01"], abs=1e-6)
    assert main(["calibrate", str(model_path), "--pack", str(packed)]) == 2
    assert "does not record which people its run held out" in capsys.readouterr().err
    assert main(["calibrate", str(tmp_path / "none.pt"), "--pack", str(packed)]) == 2
    assert "none.pt" in capsys.readouterr().err


def test_a_time_schedule_records_the_rate_it_trains_at(packed: Path, tmp_path: Path) -> None:
    """--schedule time sets the rate itself; metrics.csv must show that rate, not the idle
    scheduler's warm-up value (half the peak here, with one warm-up step)."""
    out = tmp_path / "run"
    assert main(["distill", "--pack", str(packed), "--out", str(out), *TINY, "--lr", "0.002",
                 "--schedule", "time", "--time-limit", "30", "--max-steps", "4"]) == 0  # fmt: skip
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert rows and all(0.0019 < float(row["lr"]) <= 0.002 for row in rows)
    off = tmp_path / "plain"  # a setting that is on by default has its --no- flag
    assert main(["distill", "--pack", str(packed), "--out", str(off), *TINY,
                 "--no-flip-average", "--max-steps", "1"]) == 0  # fmt: skip
    assert not load_checkpoint(off / "best.pt")[1].flip_average


def test_a_resumed_time_schedule_goes_on_along_its_cycle(packed: Path, tmp_path: Path) -> None:
    """--resume after a time schedule keeps the first --time-limit as the cycle's length: a
    cycle already spent stops at once, at the floor rate, instead of restarting at the peak."""
    out = tmp_path / "run"
    assert main(["distill", "--pack", str(packed), "--out", str(out), *TINY, "--lr", "0.002",
                 "--schedule", "time", "--time-limit", "0.01"]) == 0  # fmt: skip
    first = torch.load(out / "last.pt", weights_only=True)["progress"]
    assert first["schedule_minutes"] == 0.01 and first["schedule_spent"] >= 0.01
    assert main(["distill", "--pack", str(packed), "--out", str(out), "--resume",
                 "--time-limit", "30", "--max-steps", "5"]) == 0  # fmt: skip
    again = torch.load(out / "last.pt", weights_only=True)["progress"]
    assert again["step"] == first["step"] + 1 and again["schedule_minutes"] == 0.01
    assert again["schedule_spent"] > first["schedule_spent"]
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert float(rows[-1]["lr"]) == pytest.approx(0.002 * 0.01)


def test_distill_bad_input_is_one_line(packed: Path, tmp_path: Path, capsys) -> None:
    assert main(["distill", "--pack", str(packed), "--out", str(tmp_path / "r"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert main(["distill", "--pack", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "is not a pack" in capsys.readouterr().err
    args = ["distill", "--pack", str(packed), "--out", str(tmp_path / "r2"), "--sizes", "32:1"]
    assert main(args) == 2
    assert "--sizes must end at --image-size" in capsys.readouterr().err


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FACEFIND_DISTILL_TOTAL_IMAGES", "1234")
    monkeypatch.setenv("FACEFIND_DISTILL_PACK", f"{tmp_path}/a,{tmp_path}/b")
    s = DistillSettings()
    assert s.total_images == 1234 and s.pack == [tmp_path / "a", tmp_path / "b"]
    assert s.size_at(0.0) == 64 and s.size_at(0.99) == 96


def test_travel_file_fits_its_budget_and_trains(packed: Path, tmp_path: Path) -> None:
    """The GPU recipe's data: one small file, read by distill like a pack folder."""
    travel = tmp_path / "travel.npz"
    assert main(["travel", str(packed), "--out", str(travel), "--max-mib", "0.15",
                 "--size", "64"]) == 0  # fmt: skip
    assert travel.stat().st_size <= 0.15 * 2**20
    small, full = load_packs([travel]), load_packs([packed])
    assert small.crops.shape[1:] == (64, 64, 3) and 20 < len(small.crops) < len(full.crops)
    assert PackMeta.load(packed).aligned == small.meta.aligned
    by_identity = {}
    for i, identity in enumerate(full.identities):
        by_identity.setdefault(str(identity), []).append(full.targets[i].astype(np.float32))
    for i in range(5):  # each travelling target is one of its identity's, to 8 bits
        best = max(float((t * small.targets[i].astype(np.float32)).sum(-1).min())
                   for t in by_identity[str(small.identities[i])])  # fmt: skip
        assert best > 0.995
    out = tmp_path / "run"
    assert main(["distill", "--pack", str(travel), "--out", str(out), *TINY,
                 "--max-steps", "2", "--device", "cpu"]) == 0  # fmt: skip
    assert (out / "last.pt").is_file()


def test_gpu_recipe_runs_on_the_cpu_at_tiny_size(packed: Path, tmp_path: Path) -> None:
    """scripts/gpu-train.sh --cpu: travel pack in, a model in parts of <= 15 MiB out."""
    import os
    import subprocess
    import sys

    travel = tmp_path / "travel.npz"
    assert main(["travel", str(packed), "--out", str(travel), "--size", "48"]) == 0
    out = tmp_path / "out"
    env = os.environ | {"FACEFIND_GPU_PACK": str(travel), "PYTHON": sys.executable,
                        "TMPDIR": str(tmp_path)}  # fmt: skip
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(["bash", str(repo / "scripts" / "gpu-train.sh"), str(out), "--cpu"],
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    parts = sorted(out.glob("model.pt.part-*"))
    assert parts and all(p.stat().st_size <= 15 * 2**20 for p in parts)
    model = tmp_path / "model.pt"
    model.write_bytes(b"".join(p.read_bytes() for p in parts))
    _, info = load_checkpoint(model)
    assert info.alignment == ALIGN_0095 and set(info.thresholds) == {"0.01", "0.001"}
    assert (out / "metrics.csv").is_file() and (out / "SHA256SUMS").is_file()


def test_distill_init_starts_from_a_checkpoints_weights(
    packed: Path, tmp_path: Path, capsys
) -> None:
    """A warm restart from a shipped model: the fresh run's weights are the checkpoint's."""
    first = tmp_path / "first"
    assert main(["distill", "--pack", str(packed), "--out", str(first), *TINY,
                 "--max-steps", "6"]) == 0  # fmt: skip
    source, _ = load_checkpoint(first / "best.pt")
    expected = {k: v.detach() for k, v in source.named_parameters()}  # not BN statistics

    def drift(run: Path) -> float:
        weights = torch.load(run / "last.pt", weights_only=True)["ema"]
        return max(float((weights[f"module.{k}"].float() - v).abs().max())
                   for k, v in expected.items())  # fmt: skip

    args = ["distill", "--pack", str(packed), *TINY, "--max-steps", "1", "--lr", "1e-9",
            "--seed", "1"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "warm"), "--init", str(first / "best.pt")]) == 0
    assert main([*args, "--out", str(tmp_path / "cold")]) == 0
    assert drift(tmp_path / "warm") < 1e-3 < drift(tmp_path / "cold")
    assert json.loads((tmp_path / "warm" / "config.json").read_text())["init"].endswith("best.pt")
    wrong = [*args, "--out", str(tmp_path / "r"), "--arch", "resnet34"]
    assert main([*wrong, "--init", str(first / "best.pt")]) == 2
    assert "is a resnet18 with 256-d vectors" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "r2"), "--init", str(tmp_path / "none.pt")]) == 2
    assert "none.pt" in capsys.readouterr().err


def test_crops_cut_larger_are_shrunk_as_training_shrinks_them(tmp_path: Path) -> None:
    """A model taught on 128 px pack crops shrunk to its input sees the same pixels served:
    the embedder's vectors are training's ``to_input`` through the network; a checkpoint
    from before ``crop_size`` is cut at its input size and not resized."""
    torch.manual_seed(6)
    net = EmbeddingNet("resnet18", 16).eval()
    save_checkpoint(tmp_path / "cut128.pt", net, 64, crop_size=128)
    embedder = load_embedder(tmp_path / "cut128.pt", device="cpu", precision="fp32")
    assert (embedder.crop_size, embedder.input_size) == (128, 64)
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (3, 128, 128, 3), dtype=np.uint8)
    with torch.no_grad():
        expected = net(to_input(torch.from_numpy(big), 64)).numpy()
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(embedder.embed(list(big)), expected, atol=1e-4)
    payload = read_checkpoint(tmp_path / "cut128.pt")
    del payload["crop_size"]
    torch.save(payload, tmp_path / "old.pt")
    old = load_embedder(tmp_path / "old.pt", device="cpu", precision="fp32")
    assert old.crop_size == old.input_size == 64
