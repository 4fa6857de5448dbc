"""``python -m training train``: the whole run, from crops to best.pt, resumable."""

from __future__ import annotations

import logging
import math
import random
import time

import numpy as np
import torch

from indexer.errors import FacefindError
from training import distributed
from training.loop import train_epoch
from training.run_files import BEST, LAST
from training.session import Session, build_session
from training.settings import TrainSettings
from training.teacher import TEACHER_DIM
from training.validate import validate

log = logging.getLogger(__name__)


def train(s: TrainSettings) -> str:
    """Returns a one-line summary of how the run ended."""
    if not s.data or s.out is None:
        raise FacefindError("train needs --data CROPS and --out RUN_FOLDER")
    if s.teacher and s.embedding_dim != TEACHER_DIM:
        raise FacefindError(
            f"--embedding-dim must be {TEACHER_DIM}, the teacher's, with --teacher "
            f"(got {s.embedding_dim})"
        )
    started = time.monotonic()
    if s.threads:
        torch.set_num_threads(s.threads)
    ctx = distributed.setup(s.device)
    try:
        _seed(s.seed, ctx.rank, 0)
        session = build_session(s, ctx)
        reason = _epochs(session, started)
    finally:
        ctx.close()
    best = session.progress
    return f"{reason}: best validation top-1 {best.best_top1:.3f} at epoch {best.best_epoch}; " \
           f"checkpoints in {s.out}"  # fmt: skip


def _epochs(session: Session, started: float) -> str:
    s, ctx, progress = session.settings, session.ctx, session.progress
    if progress.epoch >= s.epochs:
        return "epochs done"
    seconds: list[float] = []
    while True:
        epoch_start, reason = time.monotonic(), ""
        progress.epoch += 1
        _seed(s.seed, ctx.rank, progress.epoch)
        stats = train_epoch(
            session.net, session.loader, session.loss_fn, session.miner, session.optimizer,
            session.scheduler, ctx.device, session.dtype, session.scaler, session.steps,
            f"epoch {progress.epoch}", ctx.main, s.distill_weight if s.teacher else 0.0,
        )  # fmt: skip
        if ctx.main:
            assert session.valset is not None
            metrics = validate(session.model, session.valset, s.image_size, str(ctx.device),
                               s.precision)  # fmt: skip
            row = {"epoch": progress.epoch, "lr": float(session.scheduler.get_last_lr()[-1]),
                   "loss": stats.loss, "distill": stats.distill, "triplets": stats.triplets,
                   "img_per_s": stats.images_per_second, "seconds": stats.seconds,
                   **metrics}  # fmt: skip
            reason = _record(session, row)
            seconds.append(time.monotonic() - epoch_start)
            if s.time_limit and not reason:
                reason = _fit_time(session, seconds, started, s.time_limit)
        session.schedule.total = ctx.share(session.schedule.total)
        if ctx.agree(bool(reason)):
            return reason or "stopped by the main process"


def _record(session: Session, row: dict[str, float]) -> str:
    """Write metrics, curves and checkpoints; returns why to stop ('' to go on)."""
    s, progress, files = session.settings, session.progress, session.files
    log.info("epoch %d: loss %.4f (distill %.4f), %.1f img/s, top-1 %.3f top-5 %.3f top-10 %.3f "
             "mAP %.3f", progress.epoch, row["loss"], row["distill"], row["img_per_s"],
             row["top1"], row["top5"], row["top10"], row["mAP"])  # fmt: skip
    files.append_metrics(row)
    files.plot()
    improved = row["top1"] > progress.best_top1
    if improved:
        progress.best_top1, progress.best_epoch, progress.stale = row["top1"], progress.epoch, 0
    else:
        progress.stale += 1
    state = {"optimizer": session.optimizer.state_dict(),
             "scheduler": session.scheduler.state_dict(), **vars(progress)}  # fmt: skip
    metrics = {k: row[k] for k in ("top1", "top5", "top10", "mAP")} | {"epoch": progress.epoch}
    for name in (BEST, LAST) if improved else (LAST,):
        files.save(name, session.model, s.image_size, metrics, session.config, state)
    if progress.epoch >= s.epochs:
        return "epochs done"
    if progress.stale >= s.patience:
        return f"no better validation top-1 for {s.patience} epochs (early stop)"
    return ""


def _fit_time(session: Session, seconds: list[float], started: float, minutes: float) -> str:
    """Stop when another epoch would overrun the ``minutes`` of the run; else shrink the LR
    schedule to what fits."""
    left = minutes * 60.0 - (time.monotonic() - started)
    per_epoch = float(np.mean(seconds))
    if left < per_epoch:
        return f"time limit of {minutes:g} minutes reached"
    fits = min(session.settings.epochs, session.progress.epoch + math.floor(left / per_epoch))
    session.schedule.total = min(session.schedule.total, fits * session.steps)
    return ""


def _seed(seed: int, rank: int, epoch: int) -> None:
    """Per rank and epoch, so ranks draw different batches and a resumed run new ones."""
    value = seed + 1000 * epoch + rank
    random.seed(value)
    np.random.seed(value % 2**32)
    torch.manual_seed(value)
