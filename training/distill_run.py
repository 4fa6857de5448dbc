"""``python -m training distill --pack PACK... --out RUN``: a ResNet50 taught by the teacher's
vectors on every packed face, resumable at any step, on the CPU or one GPU.

Each step: a batch drawn by (seed, step) (``distill_data``), augmented on its device
(``augment``), at the size the progressive plan gives; loss = 1 - cos to the teacher's view
+ the relational loss on in-batch similarities + a triplet loss on the labelled pairs. An EMA
of the weights is validated on held-out identities every ``val_every`` images, and the best
is written as a facefind checkpoint with its alignment and calibrated thresholds.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from pytorch_metric_learning import losses, miners
from torch import Tensor
from torch.optim.swa_utils import AveragedModel

from indexer.atomic import atomic_path
from indexer.checkpoint import load_checkpoint
from indexer.embedder import resolve_device, resolve_precision
from indexer.errors import ConfigError, FacefindError
from indexer.model import EmbeddingNet
from training.augment import augment
from training.distill_data import DistillData
from training.distill_files import DistillFiles
from training.distill_settings import DistillSettings
from training.distill_validate import validate
from training.network import WarmupCosine, lr_factor
from training.pack import TEACHER_NAME
from training.pack_files import load_packs
from training.reid_teacher import REID_DIM
from training.teacher_losses import cosine_loss, relational_loss

log = logging.getLogger(__name__)


@dataclass
class Progress:
    step: int = 0
    images: int = 0
    minutes: float = 0.0
    """Training minutes over every invocation (what the learning curve is plotted against)."""
    best_map: float = -1.0
    last_val: int = 0
    schedule_minutes: float = 0.0
    """A time schedule's length: the run's first --time-limit, so a resumed run goes on along
    the same cosine cycle instead of starting a new one at the peak rate."""
    schedule_spent: float = 0.0
    """Minutes of that schedule spent by earlier invocations (wall clock, validations too)."""


class Run:
    def __init__(self, s: DistillSettings) -> None:
        if not s.pack or s.out is None:
            raise FacefindError("distill needs --pack PACK... and --out RUN_FOLDER")
        self.s = s
        self.files = DistillFiles(s.out)
        self.files.start(s.model_dump(mode="json"), s.resume)
        if s.threads:
            torch.set_num_threads(s.threads)
        self.device = resolve_device(s.device)
        self.dtype = resolve_precision(s.precision, self.device)
        pack = load_packs(list(s.pack))
        self.alignment = pack.meta.aligned
        self.crop_size = pack.meta.size
        self.sources = [str(src) for src in pack.meta.sources]
        self.data = DistillData(pack, s.val_share, s.seed).to(self.device)
        log.info("%d training crops (%d labelled identities with pairs), %d held out; "
                 "training on %s in %s", len(self.data.train), len(self.data.groups),
                 len(self.data.val), self.device, str(self.dtype).removeprefix("torch."))  # fmt: skip
        self.model = EmbeddingNet(s.arch, REID_DIM).to(self.device)
        if s.init and not s.resume:
            self._start_from(s.init)
        self.model = self.model.to(memory_format=torch.channels_last)
        self.ema = AveragedModel(self.model, avg_fn=ema_with_warmup(s.ema), use_buffers=True)
        # fused: one kernel over all parameters, a tenth of the step's time on 2 CPU cores
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=s.lr,
                                           weight_decay=s.weight_decay, fused=True)  # fmt: skip
        self.total_steps = math.ceil(s.total_images / s.batch_size)
        self.schedule = WarmupCosine(s.warmup_steps, self.total_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.schedule)
        self.forward = torch.compile(self.model) if s.compile else self.model
        self.triplet = losses.TripletMarginLoss(margin=s.margin)
        self.miner = miners.TripletMarginMiner(margin=s.margin, type_of_triplets="all")
        self.progress = Progress()
        self.started = time.monotonic()
        if s.resume:
            self._restore()
        if s.schedule == "time" and not self.progress.schedule_minutes:
            self.progress.schedule_minutes = float(s.time_limit or 0.0)
        self.spent_before = self.progress.schedule_spent

    def run(self) -> str:
        s, started = self.s, self.started
        last_save, steps_now = started, 0
        reason = "schedule done"
        tick = time.monotonic()
        while self.progress.step < self.total_steps or s.schedule == "time":
            parts = self._step()
            steps_now += 1
            now = time.monotonic()
            self.progress.minutes += (now - tick) / 60.0
            tick = now
            if self.progress.step % 50 == 0:
                log.info("step %d, %d images, %.0f min, size %d: loss %.4f (cos %.4f rel %.4f "
                         "tri %.4f)", self.progress.step, self.progress.images,
                         self.progress.minutes, s.size_at(self._fraction()), *parts)  # fmt: skip
            if self.progress.images - self.progress.last_val >= s.val_every:
                self._validate(parts)
                tick = time.monotonic()
            if s.time_limit and now - started >= s.time_limit * 60.0:
                reason = f"time limit of {s.time_limit:g} minutes reached"
                break
            if s.schedule == "time" and self._fraction() >= 1.0:
                break
            if s.max_steps and steps_now >= s.max_steps:
                reason = f"{s.max_steps} steps done"
                break
            if now - last_save >= s.save_minutes * 60.0:
                self._save_last()
                last_save = now
        if self.progress.images > self.progress.last_val:
            self._validate(parts)
        self._save_last()
        return (f"{reason} after {self.progress.images} images ({self.progress.minutes:.0f} "
                f"training minutes); best held-out mAP {self.progress.best_map:.3f}; "
                f"checkpoints in {s.out}")  # fmt: skip

    def _fraction(self) -> float:
        """How much of the schedule is done: by images seen, or by its minutes spent (resumes too)."""
        s = self.s
        if s.schedule == "time":
            return min(1.0, self._schedule_spent() / self.progress.schedule_minutes)
        return min(1.0, self.progress.images / s.total_images)

    def _schedule_spent(self) -> float:
        """Wall minutes of the run's schedule spent, by earlier invocations and this one."""
        return self.spent_before + (time.monotonic() - self.started) / 60.0

    def _step(self) -> tuple[float, float, float, float]:
        s, data = self.s, self.data
        fraction = self._fraction()
        size = s.size_at(fraction)
        batch = data.batch(self.progress.step, s.batch_size, s.ids_per_batch, s.seed)
        generator = torch.Generator().manual_seed(s.seed * 1_000_003 + self.progress.step)
        index = batch.index.to(self.device)
        mirrored = batch.mirrored.to(self.device)
        images = augment(data.crops[index], mirrored, size, generator, s.augment)
        targets = data.targets[index, mirrored.long()]
        self.model.train()
        with torch.autocast(self.device.type, dtype=self.dtype,
                            enabled=self.dtype != torch.float32):  # fmt: skip
            embeddings = self.forward(images)
        embeddings = embeddings.float()
        cos = cosine_loss(embeddings, targets)
        rel = relational_loss(embeddings, targets)
        labels = batch.labels.to(self.device)
        labelled = labels >= 0
        tri = embeddings.new_zeros(())
        if s.triplet_weight and labelled.any():
            mined = self.miner(embeddings[labelled], labels[labelled])
            tri = self.triplet(embeddings[labelled], labels[labelled], mined)
        loss = cos + s.relational_weight * rel + s.triplet_weight * tri
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if s.schedule == "time":
            for group in self.optimizer.param_groups:
                group["lr"] = s.lr * lr_factor(self.progress.step, s.warmup_steps, fraction)
        else:
            self.scheduler.step()
        self.ema.update_parameters(self.model)
        self.progress.step += 1
        self.progress.images += len(index)
        return float(loss.detach()), float(cos.detach()), float(rel.detach()), float(tri.detach())

    def _validate(self, parts: tuple[float, float, float, float]) -> None:
        model = self.ema.module
        assert isinstance(model, EmbeddingNet)  # AveragedModel holds a deep copy of self.model
        metrics = validate(model, self.data, self.s.image_size, self.device, self.dtype,
                           self.s.flip_average)  # fmt: skip
        self.progress.last_val = self.progress.images
        log.info("validation at %d images: top-1 %.3f top-5 %.3f mAP %.3f; same person at "
                 "FAR 1%% %.3f, 0.1%% %.3f", self.progress.images, metrics["top1"],
                 metrics["top5"], metrics["mAP"], metrics["threshold_far_0.01"],
                 metrics["threshold_far_0.001"])  # fmt: skip
        self.files.append_metrics({"step": self.progress.step, "images": self.progress.images,
                                   "minutes": round(self.progress.minutes, 2),
                                   "size": self.s.size_at(self._fraction()),
                                   "lr": float(self.optimizer.param_groups[0]["lr"]), "loss": parts[0],
                                   "cos": parts[1], "rel": parts[2], "tri": parts[3],
                                   **metrics})  # fmt: skip
        self.files.plot()
        if metrics["mAP"] > self.progress.best_map:
            self.progress.best_map = metrics["mAP"]
            self.files.save_best(model, self.s.image_size, self.crop_size, self.alignment, metrics,
                                 self._training_record(), self.s.flip_average)  # fmt: skip

    def _training_record(self) -> dict[str, Any]:
        return {"settings": self.s.model_dump(mode="json"), "data": self.sources,
                "teacher": TEACHER_NAME, "images_seen": self.progress.images,
                "minutes": round(self.progress.minutes, 1),
                "teacher_mean_norm": float(self.data.mean.dot(self.data.mean) ** 0.5)}  # fmt: skip

    def _save_last(self) -> None:
        self.progress.schedule_spent = self._schedule_spent()
        state = {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "progress": asdict(self.progress),
        }
        with atomic_path(self.files.last) as tmp:
            torch.save(state, tmp)

    def _start_from(self, path: Path) -> None:
        """Copy a checkpoint's weights into the fresh network; the EMA is copied from it next."""
        model, info = load_checkpoint(path)
        if info.arch != self.s.arch or info.embedding_dim != REID_DIM:
            raise ConfigError(f"--init {path} is a {info.arch} with {info.embedding_dim}-d "
                              f"vectors; this run trains a {self.s.arch} with {REID_DIM}-d")  # fmt: skip
        if info.alignment != self.alignment:
            raise ConfigError(f"--init {path} was trained on faces aligned unlike the pack's")
        self.model.load_state_dict(model.state_dict())
        log.info("starting from the weights of %s (%s)", path, info.fingerprint)

    def _restore(self) -> None:
        state = torch.load(self.files.last, map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.progress = Progress(**state["progress"])
        # A resumed run keeps its schedule unless --total-images was changed on purpose.
        self.schedule.total = self.total_steps  # load_state_dict updated it in place
        log.info("resumed at step %d (%d images, %.0f training minutes)", self.progress.step,
                 self.progress.images, self.progress.minutes)  # fmt: skip


def ema_with_warmup(decay: float) -> Callable[[Tensor, Tensor, Tensor | int], Tensor]:
    """An exponential average whose decay grows as (1 + n) / (10 + n) up to ``decay``: with
    the fixed 0.999 from the first step, the random initial weights still made up 29% of the
    average after 1,200 steps, and its vectors all pointed one way (held-out mAP 0.07
    against the raw weights' 0.13)."""

    def update(averaged: Tensor, current: Tensor, count: Tensor | int) -> Tensor:
        n = float(count)
        rate = min(decay, (1.0 + n) / (10.0 + n))
        return averaged + (current - averaged) * (1.0 - rate)

    return update


def distill(s: DistillSettings) -> str:
    return Run(s).run()
