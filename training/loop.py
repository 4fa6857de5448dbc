"""One training epoch: P x K batches, mined triplets (and a teacher's targets where given),
mixed precision, channels-last."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from pytorch_metric_learning import losses, miners
from torch.utils.data import DataLoader
from tqdm import tqdm

from training.distill import distill_loss


def make_loss(margin: float, mining: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Triplet loss and its in-batch miner.

    ``all`` keeps every triplet that violates the margin (hard and semi-hard ones), ``semihard``
    and ``hard`` only those kinds, ``batch-hard`` the hardest positive and negative per anchor.
    """
    loss = losses.TripletMarginLoss(margin=margin)
    if mining == "batch-hard":
        return loss, miners.BatchHardMiner()
    return loss, miners.TripletMarginMiner(margin=margin, type_of_triplets=mining)


@dataclass
class EpochStats:
    loss: float
    triplets: float
    images: int
    seconds: float
    distill: float = 0.0
    """Mean 1 - cos(student, teacher); 0 without a teacher."""

    @property
    def images_per_second(self) -> float:
        return self.images / max(self.seconds, 1e-9)


def train_epoch(
    model: torch.nn.Module,
    loader: DataLoader,
    loss_fn: torch.nn.Module,
    miner: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    device: torch.device,
    dtype: torch.dtype,
    scaler: torch.amp.GradScaler,
    max_steps: int | None = None,
    desc: str = "train",
    show: bool = True,
    distill_weight: float = 0.0,
) -> EpochStats:
    """Batches are (images, labels) or, with a teacher, (images, labels, targets, has_target);
    label -1 marks an unlabelled image, which only the teacher's loss uses."""
    model.train()
    total_loss, total_distill, total_triplets, images, steps = 0.0, 0.0, 0.0, 0, 0
    start = time.perf_counter()
    total = min(len(loader), max_steps or len(loader))
    bar = tqdm(loader, total=total, desc=desc, unit="batch", mininterval=10.0, disable=not show)
    for batch, labels, *taught in bar:
        batch = batch.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        labels = labels.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            embeddings = model(batch)
        embeddings = embeddings.float()
        labelled = labels >= 0
        triplets = miner(embeddings[labelled], labels[labelled])
        loss = loss_fn(embeddings[labelled], labels[labelled], triplets)
        if taught:
            targets, has_target = (t.to(device, non_blocking=True) for t in taught)
            distill = distill_loss(embeddings, targets, has_target)
            loss = loss + distill_weight * distill
            total_distill += float(distill.detach())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        steps += 1
        images += len(batch)
        total_loss += float(loss.detach())
        total_triplets += len(triplets[0])
        bar.set_postfix(loss=f"{total_loss / steps:.4f}", refresh=False)
        if steps >= total:
            break
    bar.close()
    return EpochStats(
        total_loss / max(steps, 1),
        total_triplets / max(steps, 1),
        images,
        time.perf_counter() - start,
        total_distill / max(steps, 1),
    )
