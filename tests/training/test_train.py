from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pytorch_metric_learning import losses, reducers

from indexer.checkpoint import load_checkpoint, read_checkpoint
from indexer.detect import make_detector
from indexer.embedder import load_embedder
from indexer.errors import FacefindError
from indexer.model import EmbeddingNet
from indexer.pipeline import FacePipeline
from indexer.records import NewFace
from indexer.store import GalleryStore
from training.cli import main
from training.data import CropDataset, read_crops, train_transform
from training.loop import make_loss, train_epoch
from training.network import WarmupCosine, build_model, make_optimizer
from training.session import load_data
from training.settings import TrainSettings
from training.validate import validate


def metrics_rows(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_training_steps_lower_the_triplet_loss(crops_dir: Path) -> None:
    torch.manual_seed(0)
    data = CropDataset(read_crops(crops_dir), train_transform(40))
    picks = [i for c in range(3) for i in np.flatnonzero(data.labels == c)[:4]]
    batch = torch.stack([data[i][0] for i in picks])
    labels = torch.tensor([data.labels[i] for i in picks])
    model = EmbeddingNet("resnet18", 32)
    settings = TrainSettings(lr=1e-3)
    optimizer = make_optimizer(model, settings, pretrained=False)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(0, 100))
    loss_fn, miner = make_loss(0.2, "all")
    every_triplet = losses.TripletMarginLoss(margin=0.2, reducer=reducers.MeanReducer())

    def loss_now() -> float:
        with torch.no_grad():
            return float(every_triplet(model(batch), labels))

    before = loss_now()
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    cpu = torch.device("cpu")
    for _ in range(8):
        train_epoch(model, [(batch, labels)], loss_fn, miner, optimizer, scheduler, cpu,
                    torch.bfloat16, scaler, show=False)  # fmt: skip
    assert loss_now() < 0.5 * before


def test_a_tiny_run_writes_every_run_file(tiny_run: Path) -> None:
    assert {p.name for p in tiny_run.iterdir()} >= {
        "best.pt", "last.pt", "metrics.csv", "config.json", "curves.png"
    }  # fmt: skip
    rows = metrics_rows(tiny_run)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert all(0.0 <= float(r["top1"]) <= 1.0 and float(r["mAP"]) > 0 for r in rows)
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["arch"] == "resnet18" and config["image_size"] == 40
    assert config["train_identities"] == 3


def test_the_checkpoint_loads_in_the_indexer_and_searches(
    tiny_run: Path, tmp_path: Path, shared_data: Path
) -> None:
    embedder = load_embedder(tiny_run / "best.pt", device="cpu")
    assert (embedder.input_size, embedder.embedding_dim) == (40, 32)
    pipeline = FacePipeline(make_detector("haar"), embedder.input_size)
    photos = sorted((shared_data / "five-celebrity" / "madonna").iterdir())[:3]
    faces = [pipeline.from_path(p).faces[0] for p in photos]
    vectors = embedder.embed([f.crop for f in faces])
    with GalleryStore(tmp_path / "store", embedder.fingerprint, embedder.embedding_dim) as store:
        store.add([
            NewFace(v, str(p), str(i), f.box, f.score, f.detected, label="madonna")
            for i, (v, p, f) in enumerate(zip(vectors, photos, faces, strict=True))
        ])  # fmt: skip
        matches = store.search(vectors[:1], k=3)[0]
    assert len(matches) == 3
    assert matches[0].record.source == str(photos[0])
    assert matches[0].similarity == pytest.approx(1.0, abs=1e-3)


def test_resume_continues_from_last(tiny_run: Path, crops_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "resumed"
    shutil.copytree(tiny_run, run)
    assert (
        main(["train", "--data", str(crops_dir), "--out", str(run), "--epochs", "3", "--resume"])
        == 0
    )
    assert [r["epoch"] for r in metrics_rows(run)] == ["1", "2", "3"]
    last = read_checkpoint(run / "last.pt")
    assert last["epoch"] == 3 and last["scheduler"]["last_epoch"] == 9
    assert last["arch"] == "resnet18", "the saved configuration is reused"


def test_export_is_half_precision_without_resume_state(tiny_run: Path, tmp_path: Path) -> None:
    dest = tmp_path / "models" / "tiny.pt"
    assert main(["export", str(tiny_run / "best.pt"), str(dest)]) == 0
    payload = read_checkpoint(dest)
    assert "optimizer" not in payload and "scheduler" not in payload
    assert {v.dtype for v in payload["state_dict"].values() if v.is_floating_point()} == {
        torch.float16
    }
    assert dest.stat().st_size < (tiny_run / "best.pt").stat().st_size / 2
    _, info = load_checkpoint(dest)
    assert info.input_size == 40 and info.metrics["top1"] >= 0


def test_time_limit_stops_after_the_epoch_it_runs_out_in(
    crops_dir: Path, tmp_path: Path, tiny_args: tuple[str, ...]
) -> None:
    run = tmp_path / "timed"
    args = ["train", "--data", str(crops_dir), "--out", str(run), "--epochs", "5", *tiny_args]
    assert main([*args, "--time-limit", "0.01"]) == 0
    assert len(metrics_rows(run)) == 1


def test_starting_over_an_existing_run_or_resuming_nothing_is_refused(
    tiny_run: Path,
    crops_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tiny_args: tuple[str, ...],
) -> None:
    assert main(["train", "--data", str(crops_dir), "--out", str(tiny_run), *tiny_args]) == 2
    assert "--resume" in capsys.readouterr().err
    args = [
        "train",
        "--data",
        str(crops_dir),
        "--out",
        str(tmp_path / "new"),
        "--resume",
        *tiny_args,
    ]
    assert main(args) == 2
    assert "nothing to resume" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--data", "/no/such/crops"), "not found"),
        (("--arch", "no_such_net"), "unknown architecture"),
        (("--epochs", "0"), "--epochs"),
    ],
)
def test_bad_training_input_is_a_one_line_error(
    crops_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tiny_args: tuple[str, ...],
    extra: tuple[str, ...],
    message: str,
) -> None:
    args = ["train", "--data", str(crops_dir), "--out", str(tmp_path / "run"), *tiny_args, *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err


def test_imagenet_weights_that_cannot_be_downloaded_are_a_clear_error(
    crops_dir: Path, tmp_path: Path, tiny_args: tuple[str, ...]
) -> None:
    closed = "http://127.0.0.1:9"
    env = os.environ | {
        "https_proxy": closed, "http_proxy": closed, "HTTPS_PROXY": closed, "HTTP_PROXY": closed,
        "TORCH_HOME": str(tmp_path / "torch"),
    }  # fmt: skip
    args = ["--data", str(crops_dir), "--out", str(tmp_path / "run"), *tiny_args]
    done = subprocess.run(
        [sys.executable, "-m", "training", "train", *args, "--pretrained", "imagenet"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert (
        last.startswith("error: ") and "ImageNet weights" in last and "Traceback" not in done.stderr
    )


def test_environment_settings_apply_and_flags_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEFIND_TRAIN_EPOCHS", "7")
    monkeypatch.setenv("FACEFIND_TRAIN_ARCH", "resnet18")
    settings = TrainSettings(arch="efficientnet_b0")
    assert (settings.epochs, settings.arch) == (7, "efficientnet_b0")


def test_training_can_start_from_a_checkpoint(tiny_run: Path, tmp_path: Path) -> None:
    start, _ = load_checkpoint(tiny_run / "best.pt")
    settings = TrainSettings(
        arch="resnet18", embedding_dim=32, pretrained=str(tiny_run / "best.pt")
    )
    model, pretrained = build_model(settings)
    assert pretrained
    for name, value in start.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name
    wrong = settings.model_copy(update={"arch": "resnet50"})
    with pytest.raises(FacefindError, match="resnet18"):
        build_model(wrong)


def test_a_validation_manifest_is_cropped_from_its_raw_photos(
    crops_dir: Path, tmp_path: Path, shared_data: Path
) -> None:
    """--val-manifest: the benchmark's own photos, cropped as serving crops them, validate."""
    root = shared_data / "five-celebrity"
    people = sorted(p.name for p in root.iterdir())[:3]
    manifest = tmp_path / "val.csv"
    with manifest.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "identity", "role"])
        for person in people:
            for n, photo in enumerate(sorted((root / person).iterdir())[:3]):
                writer.writerow(
                    [f"{person}/{photo.name}", person, "query" if n == 0 else "gallery"]
                )
    settings = TrainSettings(
        data=[crops_dir], val_manifest=manifest, val_root=root, image_size=40, workers=1
    )
    samples, valset = load_data(settings, main=True)
    assert len(samples) == len(read_crops(crops_dir))  # all of them train
    assert valset is not None and len(valset) == 9 and int(valset.is_query.sum()) == 3
    assert all(crop.shape == (40, 40, 3) for crop in valset.crops)
    assert 0.0 < valset.face_found <= 1.0
    metrics = validate(EmbeddingNet("resnet18", 32), valset, 40, "cpu", "fp32")
    assert 0.0 <= metrics["top1"] <= 1.0 and metrics["mAP"] > 0
