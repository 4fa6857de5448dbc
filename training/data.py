"""Prepared crops as a labelled dataset, with augmentation suited to faces.

Augmentation stays mild: faces are centred by the detector, so large crops or rotations
would teach the network views that serving never shows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from indexer.errors import FacefindError, UnreadableImage
from indexer.model import IMAGENET_MEAN, IMAGENET_STD
from training.crop_files import list_crops


@dataclass(frozen=True)
class Sample:
    path: Path
    identity: str
    """Empty for an unlabelled crop: it can only learn from a teacher."""


def read_all_crops(roots: Sequence[Path]) -> list[Sample]:
    """The crops of several folders; identities get the folder's name as a prefix so that
    two sets' people never merge (ORL's ``s1`` and another set's ``s1`` are not one person)."""
    if len(roots) == 1:
        return read_crops(roots[0])
    names = [root.name for root in roots]
    prefixes = [n if names.count(n) == 1 else f"{n}{i}" for i, n in enumerate(names)]
    return [
        Sample(s.path, f"{prefix}/{s.identity}" if s.identity else "")
        for root, prefix in zip(roots, prefixes, strict=True)
        for s in read_crops(root)
    ]


def read_crops(root: Path) -> list[Sample]:
    """The crops of a ``prepare`` output (its crops.csv), or any folder-per-identity tree."""
    samples = [Sample(root / r.crop, r.identity) for r in list_crops(root)]
    if not samples:
        raise FacefindError(f"no face crops in {root}; make them with `python -m training prepare`")
    return samples


def train_transform(size: int) -> v2.Transform:
    return v2.Compose(
        [
            v2.RandomResizedCrop(size, scale=(0.7, 1.0), ratio=(0.9, 1.1), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.RandomRotation(10)], p=0.3),
            v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.2, hue=0.02),
            v2.RandomGrayscale(p=0.1),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def eval_transform(size: int) -> v2.Transform:
    """Resize the whole crop, as serving crops a face straight to the input size."""
    return v2.Compose(
        [
            v2.Resize((size, size), antialias=True),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def load_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UnreadableImage(f"cannot read the crop {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


_Item = TypeVar("_Item")


class LabelledCrops(Dataset[_Item]):
    """Crops and their labels: labels index ``classes``, sorted identity names, and are -1
    for unlabelled crops. Generic in what one item is, so a dataset that adds teacher targets
    to each item is one of these, not a ``CropDataset`` whose items changed shape."""

    def __init__(self, samples: Sequence[Sample], transform: v2.Transform) -> None:
        self.samples = list(samples)
        self.classes = sorted({s.identity for s in self.samples if s.identity})
        index = {name: i for i, name in enumerate(self.classes)}
        self.labels = np.array([index.get(s.identity, -1) for s in self.samples], dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def image(self, i: int) -> torch.Tensor:
        """The i-th crop, read and augmented: (C, H, W)."""
        image = torch.from_numpy(load_rgb(self.samples[i].path)).permute(2, 0, 1)
        return self.transform(image)


class CropDataset(LabelledCrops[tuple[torch.Tensor, int]]):
    """(image tensor, integer label)."""

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.image(i), int(self.labels[i])
