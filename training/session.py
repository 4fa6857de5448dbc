"""Everything a run needs, built from its settings: data, network, optimiser, run folder."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from pytorch_metric_learning.samplers import MPerClassSampler
from torch.utils.data import DataLoader

from indexer.embedder import resolve_precision
from indexer.errors import FacefindError
from indexer.model import EmbeddingNet
from training.data import CropDataset, Sample, read_all_crops, train_transform
from training.distill import TaughtDataset, make_taught_loader, match_targets
from training.distributed import Dist
from training.loop import make_loss
from training.network import WarmupCosine, build_model, make_optimizer
from training.run_files import LAST, RunFiles
from training.settings import TrainSettings
from training.split import keep_frequent, split_identities
from training.target_files import read_targets
from training.validate import ValidationSet, from_manifest, from_samples

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """What survives a restart, saved in every checkpoint."""

    epoch: int = 0
    best_top1: float = -1.0
    best_epoch: int = 0
    stale: int = 0


@dataclass
class Session:
    settings: TrainSettings
    ctx: Dist
    files: RunFiles
    model: EmbeddingNet
    net: torch.nn.Module
    """The model as trained: wrapped in DDP when there are several processes."""
    loader: DataLoader
    steps: int
    valset: ValidationSet | None
    optimizer: torch.optim.Optimizer
    schedule: WarmupCosine
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    loss_fn: torch.nn.Module
    miner: torch.nn.Module
    dtype: torch.dtype
    config: dict[str, Any]
    progress: Progress = field(default_factory=Progress)


def build_session(s: TrainSettings, ctx: Dist) -> Session:
    if s.out is None:
        raise FacefindError("train needs --out RUN_FOLDER")
    dtype = resolve_precision(s.precision, ctx.device)
    model, pretrained = build_model(s)
    samples, valset = load_data(s, ctx.main)
    dataset, loader = make_training_data(samples, s, ctx.world)
    steps = min(len(loader), s.max_steps_per_epoch or len(loader))
    model = model.to(ctx.device).to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, s, pretrained)
    schedule = WarmupCosine(min(s.warmup_steps, s.epochs * steps // 10), s.epochs * steps)
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=dtype == torch.float16)
    loss_fn, miner = make_loss(s.margin, s.mining)
    taught = int(dataset.has_target.sum()) if isinstance(dataset, TaughtDataset) else 0
    config = s.model_dump(mode="json") | {
        "world_size": ctx.world,
        "device_used": str(ctx.device),
        "precision_used": str(dtype).removeprefix("torch."),
        "pretrained_backbone": pretrained,
        "train_images": len(dataset),
        "train_identities": len(dataset.classes),
        "train_data": " ".join(str(p) for p in s.data),  # one string, easy to search
        "train_images_with_teacher_targets": taught,
        "val_images": len(valset) if valset else 0,
        "val_face_found": valset.face_found if valset else None,
        "torch": torch.__version__,
    }
    session = Session(
        s, ctx, RunFiles(s.out), model, ctx.wrap(model), loader, steps, valset,
        optimizer, schedule, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule), scaler,
        loss_fn, miner, dtype, config,
    )  # fmt: skip
    if ctx.main:
        session.files.start(config, s.resume)
    if s.resume:
        restore(session)
    log.info("training %s on %d crops of %d identities, %d steps/epoch, %s on %s", s.arch,
             len(dataset), len(dataset.classes), steps, dtype, ctx.device)  # fmt: skip
    return session


def load_data(s: TrainSettings, main: bool) -> tuple[list[Sample], ValidationSet | None]:
    """Training crops, and (on the main process) the validation set, cropped once."""
    samples = read_all_crops(s.data)
    if s.val_manifest is not None:
        root = s.val_root or s.val_manifest.parent
        train_samples, valset = samples, None
        if main:
            valset = from_manifest(
                s.val_manifest, root, s.image_size, s.detector, s.detector_model, s.workers
            )
    else:
        train_samples, val_samples = split_identities(samples, s.val_fraction, s.seed)
        valset = from_samples(val_samples, s.image_size) if main else None
    return train_samples, valset


def make_training_data(
    samples: list[Sample], s: TrainSettings, world: int
) -> tuple[CropDataset | TaughtDataset, DataLoader]:
    """Identities with ``min_images`` crops for P x K batches; with a teacher, the other
    crops that have a target join every batch too."""
    pool = keep_frequent(samples, s.min_images)
    if not s.teacher:
        dataset = CropDataset(pool, train_transform(s.image_size))
        return dataset, make_loader(dataset, s, world)
    kept = set(pool)
    others = [x for x in samples if x not in kept]
    targets = match_targets([*pool, *others], read_targets(s.teacher))
    p = min(s.classes_per_batch, len({x.identity for x in pool}))
    return make_taught_loader(
        pool, others, train_transform(s.image_size), targets, p, s.images_per_class,
        s.teacher_only_per_batch, world, s.workers,
    )  # fmt: skip


def make_loader(dataset: CropDataset, s: TrainSettings, world: int) -> DataLoader:
    """P identities x K images per batch; each process draws its share of an epoch."""
    classes = min(s.classes_per_batch, len(dataset.classes))
    if classes < s.classes_per_batch:
        log.warning("only %d identities: batches of %d x %d", classes, classes, s.images_per_class)
    batch = classes * s.images_per_class
    length = max(batch, len(dataset) // world)
    sampler = MPerClassSampler(dataset.labels, s.images_per_class, batch, length)
    return DataLoader(
        dataset, batch_size=batch, sampler=sampler, num_workers=s.workers, drop_last=True,
        persistent_workers=s.workers > 0,
    )  # fmt: skip


def restore(session: Session) -> None:
    """Weights, optimiser, LR schedule and progress from ``last.pt``."""
    payload = session.files.load_last()
    try:
        session.model.load_state_dict(payload["state_dict"])
        session.optimizer.load_state_dict(payload["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise FacefindError(
            f"{session.files.out / LAST} does not match this configuration ({exc})"
        ) from exc
    session.scheduler.load_state_dict(payload["scheduler"])
    fields = Progress.__dataclass_fields__
    session.progress = Progress(**{k: payload[k] for k in fields if k in payload})
    steps, epochs = session.steps, session.settings.epochs
    session.schedule.total = max(epochs * steps, session.progress.epoch * steps)
