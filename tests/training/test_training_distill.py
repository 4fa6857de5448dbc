"""The teacher (dlib's encoder) and learning from it, on a handful of real face crops.

Tests that run dlib are skipped when it is not installed (it is the optional teacher extra,
``requirements-teacher.txt``); everything else runs without it.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from indexer.errors import FacefindError
from indexer.model import EmbeddingNet
from training.cli import main
from training.data import CropDataset, Sample, read_all_crops, read_crops, train_transform
from training.distill import distill_loss, match_targets
from training.loop import make_loss, train_epoch
from training.network import WarmupCosine, make_optimizer
from training.prepare import prepare
from training.settings import TrainSettings
from training.target_files import FAILED, TARGETS, load_targets
from training.teach import teach
from training.teacher import INSTALL, TEACHER_DIM, load_dlib, teacher_available

needs_teacher = pytest.mark.skipif(
    not teacher_available(), reason=f"the teacher extra is not installed: {INSTALL}"
)
LABELLED = ("ben_afflek", "elton_john", "madonna", "mindy_kaling")
UNLABELLED = "jerry_seinfeld"


@pytest.fixture(scope="module")
def crops(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """4 people x 2 crops, 2 crops without a label, a blank crop and an unreadable one."""
    src = tmp_path_factory.mktemp("photos")
    for person in (*LABELLED, UNLABELLED):
        (src / person).mkdir()
        for photo in sorted((shared_data / "five-celebrity" / person).iterdir())[:2]:
            shutil.copy(photo, src / person / photo.name)
    out = tmp_path_factory.mktemp("taught-crops")
    prepare(src, out, "haar", None, 128, workers=1)
    rows = list(csv.DictReader((out / "crops.csv").open()))
    for row in rows:
        row["identity"] = "" if row["identity"] == UNLABELLED else row["identity"]
    (out / "odd").mkdir()
    cv2.imwrite(str(out / "odd" / "blank.jpg"), np.full((128, 128, 3), 128, np.uint8))
    (out / "odd" / "broken.jpg").write_text("not a jpeg")
    for name in ("blank", "broken"):
        rows.append(dict(rows[0], crop=f"odd/{name}.jpg", identity="", face_found="0"))
    with (out / "crops.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out


@pytest.fixture(scope="module")
def targets(crops: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not teacher_available():
        pytest.skip(f"the teacher extra is not installed: {INSTALL}")
    out = tmp_path_factory.mktemp("targets")
    assert main(["teach", str(crops), "--out", str(out)]) == 0
    return out


@needs_teacher
def test_teach_encodes_every_face_and_lists_what_it_cannot(crops: Path, targets: Path) -> None:
    vectors, failed = load_targets(targets)
    assert set(failed) == {"odd/blank.jpg", "odd/broken.jpg"}
    assert "unreadable" in failed["odd/broken.jpg"]
    assert len(vectors) == 10
    matrix = np.stack(list(vectors.values()))
    assert matrix.shape == (10, TEACHER_DIM)
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    names = np.array([k.split("/")[0] for k in vectors])
    same = matrix @ matrix.T
    mates = (names[:, None] == names[None, :]) & ~np.eye(len(names), dtype=bool)
    assert same[mates].mean() > same[names[:, None] != names[None, :]].mean() + 0.1


@needs_teacher
def test_teach_is_paid_once_and_resumes(crops: Path, targets: Path, tmp_path: Path) -> None:
    again = tmp_path / "targets"
    shutil.copytree(targets, again)
    assert teach(crops, again).computed == 0, "a second run computes nothing"
    vectors, _ = load_targets(again)
    kept = dict(list(vectors.items())[:4])
    np.savez(again / TARGETS, paths=np.array(list(kept)), vectors=np.stack(list(kept.values())))
    report = teach(crops, again)
    assert (report.computed, report.failed_now) == (6, 0), "only what is missing is encoded"
    assert load_targets(again)[0].keys() == vectors.keys()
    assert (again / FAILED).read_text().count("\n") == 2


def test_a_missing_teacher_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)
    with pytest.raises(FacefindError, match="requirements-teacher.txt"):
        load_dlib()


def test_distillation_steps_pull_unlabelled_images_to_the_teacher(crops: Path) -> None:
    """Labels -1 only: no triplet can be formed, so all learning comes from the teacher."""
    torch.manual_seed(0)
    data = CropDataset(read_crops(crops)[:8], train_transform(40))
    batch = torch.stack([data[i][0] for i in range(len(data))])
    labels = torch.full((len(data),), -1)
    wanted = torch.nn.functional.normalize(torch.randn(len(data), TEACHER_DIM), dim=1)
    has = torch.ones(len(data), dtype=torch.bool)
    model = EmbeddingNet("resnet18", TEACHER_DIM)
    optimizer = make_optimizer(model, TrainSettings(lr=1e-3), pretrained=False)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(0, 100))
    loss_fn, miner = make_loss(0.2, "all")

    def loss_now() -> float:
        with torch.no_grad():
            return float(distill_loss(model(batch), wanted, has))

    before = loss_now()
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    for _ in range(8):
        stats = train_epoch(model, [(batch, labels, wanted, has)], loss_fn, miner, optimizer,
                            scheduler, torch.device("cpu"), torch.float32, scaler, show=False,
                            distill_weight=1.0)  # fmt: skip
    assert stats.triplets == 0 and stats.distill > 0
    assert loss_now() < 0.5 * before


def tiny_taught_args(tiny_args: tuple[str, ...]) -> list[str]:
    """The shared tiny run with the teacher's head size (it drops --embedding-dim 32)."""
    args = list(tiny_args)
    i = args.index("--embedding-dim")
    return args[:i] + args[i + 2 :] + ["--teacher-only-per-batch", "4"]


@needs_teacher
def test_training_with_a_teacher_runs_and_records_the_distillation_loss(
    crops: Path, targets: Path, tmp_path: Path, tiny_args: tuple[str, ...]
) -> None:
    run = tmp_path / "taught"
    args = ["train", "--data", str(crops), "--out", str(run), "--teacher", str(targets)]
    assert main([*args, "--epochs", "2", *tiny_taught_args(tiny_args)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["embedding_dim"] == TEACHER_DIM
    assert config["train_images_with_teacher_targets"] == 6, "4 labelled + 2 unlabelled"
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert len(rows) == 2 and all(0.0 < float(r["distill"]) < 2.0 for r in rows)


@needs_teacher
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--teacher", "/no/such/targets"), "no targets.npz"),
        (("--embedding-dim", "64"), "--embedding-dim must be 128"),
    ],
)
def test_bad_teacher_input_is_a_one_line_error(
    crops: Path,
    targets: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tiny_args: tuple[str, ...],
    extra: tuple[str, ...],
    message: str,
) -> None:
    args = ["train", "--data", str(crops), "--out", str(tmp_path / "run"), "--teacher"]
    args += [str(targets), *tiny_taught_args(tiny_args), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err


def test_teacher_targets_of_other_crops_are_refused(
    crops: Path, crops_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other-targets"
    other.mkdir()
    (other / "meta.json").write_text(json.dumps({"crops": str(crops_dir.resolve())}))
    np.savez(other / TARGETS, paths=np.array(["x/y.jpg"]), vectors=np.ones((1, TEACHER_DIM)))
    args = ["train", "--data", str(crops), "--out", str(tmp_path / "run"), "--teacher", str(other)]
    assert main([*args, "--val-fraction", "0.4", "--classes-per-batch", "2"]) == 2
    assert "no training crop has a teacher target" in capsys.readouterr().err


def test_several_crop_folders_train_together_without_merging_people(
    crops: Path, crops_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = read_all_crops([crops, crops_dir])
    names = {s.identity for s in samples}
    assert f"{crops.name}/madonna" in names and f"{crops_dir.name}/madonna" in names
    assert "" in names, "unlabelled crops stay unlabelled"
    assert len(samples) == len(read_crops(crops)) + len(read_crops(crops_dir))
    monkeypatch.setenv("FACEFIND_TRAIN_DATA", f"{crops}{os.pathsep}{crops_dir}")
    assert TrainSettings().data == [crops, crops_dir]


def test_teacher_targets_are_centred_out_of_their_narrow_cone(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    common = rng.normal(size=TEACHER_DIM)
    raw = common + 0.3 * rng.normal(size=(4, TEACHER_DIM))
    raw /= np.linalg.norm(raw, axis=1, keepdims=True)
    samples = [Sample(tmp_path / f"{i}.jpg", "x") for i in range(5)]
    found = {s.path.resolve(): v.astype(np.float32) for s, v in zip(samples, raw, strict=False)}
    targets = match_targets(samples, found)
    assert np.isnan(targets[4]).all(), "no target for the fifth crop"
    np.testing.assert_allclose(np.linalg.norm(targets[:4], axis=1), 1.0, atol=1e-5)
    off = ~np.eye(4, dtype=bool)
    assert (raw @ raw.T)[off].min() > 0.8 and (targets[:4] @ targets[:4].T)[off].max() < 0.2
