"""Prepared crops as a labelled dataset, with augmentation suited to faces.

Augmentation stays mild: faces are centred by the detector, so large crops or rotations
would teach the network views that serving never shows it.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from indexer.errors import FacefindError, UnreadableImage
from indexer.model import IMAGENET_MEAN, IMAGENET_STD
from training.prepare import CROPS_CSV, IMAGE_SUFFIXES


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
    if not root.is_dir():
        raise FacefindError(f"training data folder not found: {root}")
    listing = root / CROPS_CSV
    if listing.is_file():
        with listing.open(newline="") as fh:
            samples = [Sample(root / r["crop"], r["identity"]) for r in csv.DictReader(fh)]
    else:
        samples = [
            Sample(path, person.name)
            for person in sorted(p for p in root.iterdir() if p.is_dir())
            for path in sorted(person.iterdir())
            if path.suffix.lower() in IMAGE_SUFFIXES
        ]
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


class CropDataset(Dataset):
    """(image tensor, integer label); labels index ``classes``, sorted identity names, and
    are -1 for unlabelled crops."""

    def __init__(self, samples: Sequence[Sample], transform: v2.Transform) -> None:
        self.samples = list(samples)
        self.classes = sorted({s.identity for s in self.samples if s.identity})
        index = {name: i for i, name in enumerate(self.classes)}
        self.labels = np.array([index.get(s.identity, -1) for s in self.samples], dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image = torch.from_numpy(load_rgb(self.samples[i].path)).permute(2, 0, 1)
        return self.transform(image), int(self.labels[i])
