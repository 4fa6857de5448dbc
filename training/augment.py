"""Augmentation of a whole batch as tensor operations, on whatever device holds the batch.

Crops arrive aligned, so views stay close to what serving shows: the mirror (for which the
teacher has its own target), a few degrees, a few percent of scale and shift, light colour
changes and some grey images (old photos, ORL and Yale are grey).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from indexer.face_pixels import resize_faces
from indexer.model import IMAGENET_MEAN, IMAGENET_STD


def to_input(crops: torch.Tensor, size: int) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> normalised (B, 3, size, size) float, channels-last; no change
    to the content (validation, and the first step of every training batch)."""
    x = resize_faces(crops.permute(0, 3, 1, 2).float().div_(255.0), size)
    return _normalise(x).contiguous(memory_format=torch.channels_last)


def augment(
    crops: torch.Tensor,
    mirrored: torch.Tensor,
    size: int,
    generator: torch.Generator,
    strength: float = 1.0,
) -> torch.Tensor:
    """A training view of each crop: ``mirrored`` (B,) bool flips it (its teacher target is
    the mirrored view's), then a small random similarity warp and colour change whose ranges
    scale with ``strength`` (0: the mirror alone, as the pilot trained)."""
    x = crops.permute(0, 3, 1, 2).float().div_(255.0)
    x = torch.where(mirrored[:, None, None, None], x.flip(-1), x)
    x = resize_faces(x, size)
    if strength > 0:
        x = _warp(x, generator, strength)
        x = _colour(x, generator, strength)
    return _normalise(x).contiguous(memory_format=torch.channels_last)


def _uniform(
    n: int, low: float, high: float, like: torch.Tensor, g: torch.Generator
) -> torch.Tensor:
    return (torch.rand(n, generator=g) * (high - low) + low).to(like.device)


def _warp(x: torch.Tensor, g: torch.Generator, k: float) -> torch.Tensor:
    n = len(x)
    angle = _uniform(n, -6.0 * k, 6.0 * k, x, g) * (math.pi / 180.0)
    scale = _uniform(n, 1 - 0.07 * k, 1 + 0.07 * k, x, g)
    shift = torch.stack(
        [_uniform(n, -0.06 * k, 0.06 * k, x, g), _uniform(n, -0.06 * k, 0.06 * k, x, g)], 1
    )
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)  # fmt: skip
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _colour(x: torch.Tensor, g: torch.Generator, k: float) -> torch.Tensor:
    n = len(x)
    grey = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device)[:, None, None]).sum(
        1, keepdim=True
    )
    saturation = _uniform(n, 1 - 0.3 * k, 1 + 0.3 * k, x, g)[:, None, None, None]
    grey_share = 0.1 * k
    saturation = torch.where(
        _uniform(n, 0, 1, x, g)[:, None, None, None] < grey_share, 0.0, saturation
    )
    x = grey + (x - grey) * saturation
    contrast = _uniform(n, 1 - 0.2 * k, 1 + 0.2 * k, x, g)[:, None, None, None]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = mean + (x - mean) * contrast
    brightness = _uniform(n, 1 - 0.2 * k, 1 + 0.2 * k, x, g)[:, None, None, None]
    return (x * brightness).clamp_(0.0, 1.0)


def _normalise(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN, device=x.device)[:, None, None]
    std = torch.tensor(IMAGENET_STD, device=x.device)[:, None, None]
    return (x - mean) / std
