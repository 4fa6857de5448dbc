"""The network to train and its optimiser: where it starts from and how fast each part learns."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch

from indexer.checkpoint import load_checkpoint
from indexer.errors import ConfigError, FacefindError, WeightsUnavailable
from indexer.model import EmbeddingNet, build_backbone
from training.settings import TrainSettings

log = logging.getLogger(__name__)


def build_model(settings: TrainSettings) -> tuple[EmbeddingNet, bool]:
    """(network, whether its backbone is pretrained)."""
    source = settings.pretrained
    if source == "none":
        return EmbeddingNet(settings.arch, settings.embedding_dim), False
    if source == "imagenet":
        return EmbeddingNet(
            settings.arch, settings.embedding_dim, imagenet_backbone(settings.arch)
        ), True
    path = Path(source)
    if not path.is_file():
        raise FacefindError(
            f"--pretrained must be imagenet, none or a checkpoint file; {source} is none"
        )
    start, info = load_checkpoint(path)
    if info.arch != settings.arch:
        raise FacefindError(f"{path} is a {info.arch}, but --arch is {settings.arch}")
    model = EmbeddingNet(settings.arch, settings.embedding_dim)
    model.backbone.load_state_dict(start.backbone.state_dict())
    if info.embedding_dim == settings.embedding_dim:
        model.head.load_state_dict(start.head.state_dict())
    return model, True


def imagenet_backbone(arch: str) -> torch.nn.Module:
    try:
        return build_backbone(arch, weights="DEFAULT")
    except ConfigError:
        raise
    except Exception as exc:
        raise WeightsUnavailable(
            f"torchvision's ImageNet weights for {arch} are not on this machine and could not be "
            f"downloaded ({type(exc).__name__}); copy them into "
            f"{Path(torch.hub.get_dir()) / 'checkpoints'} or use --pretrained none"
        ) from exc


def make_optimizer(
    model: EmbeddingNet, settings: TrainSettings, pretrained: bool
) -> torch.optim.Optimizer:
    """AdamW; a pretrained backbone learns slower than the new head so it is not wrecked early."""
    backbone_lr = settings.lr * (settings.backbone_lr_scale if pretrained else 1.0)
    groups = [
        {"params": list(model.backbone.parameters()), "lr": backbone_lr},
        {"params": list(model.head.parameters()), "lr": settings.lr},
    ]
    return torch.optim.AdamW(groups, lr=settings.lr, weight_decay=settings.weight_decay)


class WarmupCosine:
    """LR factor per step: linear warm-up, then cosine to 1% over ``total`` steps.

    A plain object (not a lambda) so LambdaLR saves ``total`` with the scheduler's state, and
    ``total`` can shrink when a time limit turns out to allow fewer epochs than asked for.
    """

    def __init__(self, warmup: int, total: int) -> None:
        self.warmup = warmup
        self.total = total

    def __call__(self, step: int) -> float:
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return lr_factor(step, self.warmup, progress)


def lr_factor(step: int, warmup: int, progress: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine to 1% as ``progress`` goes 0 to 1."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, max(0.0, progress))))
