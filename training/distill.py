"""Learning from a teacher: its targets matched to the crops, mixed batches, the loss.

Every batch holds P identities x K images (for the triplet loss, as without a teacher) and a
few images drawn from the crops the triplet loss cannot use: singletons and unlabelled
crops. All of them that have a target also learn to point where the teacher points.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from pytorch_metric_learning.samplers import MPerClassSampler
from torch.nn import functional as F
from torch.utils.data import DataLoader, Sampler
from torchvision.transforms import v2

from indexer.errors import FacefindError
from training.data import LabelledCrops, Sample
from training.teacher import TEACHER_DIM


def match_targets(samples: Sequence[Sample], found: dict[Path, np.ndarray]) -> np.ndarray:
    """(N, 128) centred unit targets in sample order, NaN rows where the teacher has none.

    dlib's vectors fill a narrow cone (on LFW two people's cosine is 0.84 +- 0.04, one
    person's 0.95), so a student 0.15 away in cosine is lost among strangers. Less their mean,
    the same faces spread over the sphere (0.00 +- 0.17 and 0.71): the cosine loss then
    weighs what tells people apart, and the student's vectors use all their directions.
    """
    targets = np.full((len(samples), TEACHER_DIM), np.nan, dtype=np.float32)
    for i, sample in enumerate(samples):
        vector = found.get(sample.path.resolve())
        if vector is not None:
            targets[i] = vector
    taught = ~np.isnan(targets[:, 0])
    if not taught.any():
        raise FacefindError(
            "no training crop has a teacher target: --teacher must be made from the --data folders"
        )
    centred = targets[taught] - targets[taught].mean(axis=0)
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    targets[taught] = centred / np.maximum(norms, 1e-6)
    return targets


class TaughtDataset(LabelledCrops[tuple[torch.Tensor, int, torch.Tensor, bool]]):
    """(image, label, target, has target): a zero target where the teacher has none."""

    def __init__(
        self, samples: Sequence[Sample], transform: v2.Transform, targets: np.ndarray
    ) -> None:
        super().__init__(samples, transform)
        self.has_target = ~np.isnan(targets[:, 0])
        self.targets = torch.from_numpy(np.nan_to_num(targets))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, torch.Tensor, bool]:
        return self.image(i), int(self.labels[i]), self.targets[i], bool(self.has_target[i])


class MixedBatches(Sampler[list[int]]):
    """P x K indices from ``pool`` (the first ``pool`` dataset items), then ``extra`` indices
    cycling through the taught items after them in a fresh random order."""

    def __init__(
        self, dataset: TaughtDataset, pool: int, k: int, p: int, extra: int, batches: int
    ) -> None:
        self.others = np.flatnonzero(dataset.has_target[pool:]) + pool
        self.pk, self.batches = p * k, batches
        self.extra = extra if len(self.others) else 0
        self.labelled = MPerClassSampler(dataset.labels[:pool], k, self.pk, batches * self.pk)

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[list[int]]:
        flat = [int(i) for i in self.labelled]
        order = np.random.permutation(self.others) if self.extra else self.others
        cursor = 0
        for b in range(self.batches):
            batch = flat[b * self.pk : (b + 1) * self.pk]
            if self.extra:
                picks = np.take(order, range(cursor, cursor + self.extra), mode="wrap")
                cursor += self.extra
                batch = batch + picks.tolist()
            yield batch


def make_taught_loader(
    pool: Sequence[Sample], others: Sequence[Sample], transform: v2.Transform,
    targets: np.ndarray, p: int, k: int, extra: int, world: int, workers: int,
) -> tuple[TaughtDataset, DataLoader]:  # fmt: skip
    """``targets`` are in the order of ``pool`` then ``others``."""
    dataset = TaughtDataset([*pool, *others], transform, targets)
    batches = max(1, len(pool) // world // (p * k))
    sampler = MixedBatches(dataset, len(pool), k, p, extra, batches)
    loader = DataLoader(
        dataset, batch_sampler=sampler, num_workers=workers, persistent_workers=workers > 0
    )
    return dataset, loader


def distill_loss(
    embeddings: torch.Tensor, targets: torch.Tensor, has_target: torch.Tensor
) -> torch.Tensor:
    """Mean of 1 - cos(student, teacher) over the images with a target (0 if none has)."""
    if not bool(has_target.any()):
        return embeddings.sum() * 0.0
    student = F.normalize(embeddings[has_target], dim=1)
    return (1.0 - (student * targets[has_target]).sum(dim=1)).mean()
