"""A pack as training tensors: the split, the centred targets and each step's batch.

Every batch is a pure function of (seed, step): a run stopped anywhere and resumed draws the
same batches it would have drawn, with nothing but the step number saved.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from training.pack_files import Pack

LABELLED_PER_ID = 2


@dataclass
class Batch:
    index: torch.Tensor
    """Rows of the training crops."""
    mirrored: torch.Tensor
    labels: torch.Tensor
    """Identity numbers for the triplet loss; -1 where an image only learns from the teacher."""


class DistillData:
    def __init__(self, pack: Pack, val_share: float, seed: int) -> None:
        identities = pack.identities.astype(str)
        held_out = np.array([_held_out(i, val_share, seed) for i in identities])
        self.val = np.flatnonzero(held_out)
        self.train = np.flatnonzero(~held_out)
        self.crops = torch.from_numpy(pack.crops)
        targets = pack.targets.astype(np.float32)
        # The mean over the training crops is the direction every face shares; less it, the
        # cosine loss weighs what tells faces apart (and no shortcut is left to learn).
        self.mean = targets[self.train].reshape(-1, targets.shape[-1]).mean(axis=0)
        centred = targets - self.mean
        centred /= np.maximum(np.linalg.norm(centred, axis=-1, keepdims=True), 1e-6)
        self.targets = torch.from_numpy(centred)
        self.identities = identities
        names, counts = np.unique(identities[self.train], return_counts=True)
        self.groups = [
            self.train[identities[self.train] == name]
            for name, count in zip(names, counts, strict=True)
            if name and count >= LABELLED_PER_ID
        ]

    def to(self, device: torch.device) -> DistillData:
        """Everything on one device: a GPU run never waits for the host."""
        self.crops = self.crops.to(device)
        self.targets = self.targets.to(device)
        return self

    def batch(self, step: int, size: int, ids_per_batch: int, seed: int) -> Batch:
        rng = np.random.default_rng([seed, step])
        labelled: list[np.ndarray] = []
        labels: list[int] = []
        if ids_per_batch and self.groups:
            picks = rng.choice(len(self.groups), size=min(ids_per_batch, len(self.groups)),
                               replace=False)  # fmt: skip
            for number, g in enumerate(picks):
                labelled.append(rng.choice(self.groups[g], LABELLED_PER_ID, replace=False))
                labels += [number] * LABELLED_PER_ID
        rest = size - len(labels)
        per_epoch = len(self.train)
        start = step * rest
        epoch, offset = divmod(start, per_epoch)
        order = np.concatenate([_permutation(per_epoch, seed, epoch),
                                _permutation(per_epoch, seed, epoch + 1)])  # fmt: skip
        others = self.train[order[offset : offset + rest]]
        index = np.concatenate([*labelled, others]).astype(np.int64)
        return Batch(
            torch.from_numpy(index),
            torch.from_numpy(rng.random(len(index)) < 0.5),
            torch.tensor(labels + [-1] * len(others)),
        )


def _permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, 1_000_003, epoch]).permutation(n)


def _held_out(identity: str, share: float, seed: int) -> bool:
    """A labelled identity's fate by hash, the same in every run and on every machine;
    unlabelled faces (one per person) never validate."""
    if not identity:
        return False
    digest = hashlib.sha256(f"{seed}:{identity}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share
