"""Which identities train and which validate: disjoint, and fixed by a seed."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from indexer.errors import FacefindError
from training.data import Sample

MAX_PER_IDENTITY = 40
"""PROTOCOL.md: at most 40 images of an identity; image i is a query when i % 4 == 0."""


def by_identity(samples: Sequence[Sample]) -> dict[str, list[Sample]]:
    """Labelled samples by identity (unlabelled ones have none)."""
    groups: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        if sample.identity:
            groups[sample.identity].append(sample)
    return {k: sorted(v, key=lambda s: s.path) for k, v in sorted(groups.items())}


def keep_frequent(samples: Sequence[Sample], min_images: int) -> list[Sample]:
    """Identities with at least ``min_images`` crops: only they give real positive pairs."""
    kept = [s for group in by_identity(samples).values() if len(group) >= min_images for s in group]
    if len({s.identity for s in kept}) < 2:
        raise FacefindError(
            f"training needs at least 2 identities with {min_images}+ face crops each; "
            f"the data has {len({s.identity for s in kept})}"
        )
    return kept


def split_identities(
    samples: Sequence[Sample], val_fraction: float, seed: int
) -> tuple[list[Sample], list[tuple[Sample, str]]]:
    """(training samples, validation samples with their protocol role).

    Validation takes a seeded share of the identities with 2+ images (they can be queried);
    everything else trains. Roles follow PROTOCOL.md so figures compare with the benchmarks.
    """
    groups = by_identity(samples)
    queryable = [name for name, group in groups.items() if len(group) >= 2]
    count = round(len(queryable) * val_fraction)
    if count < 2 or len(groups) - count < 2:
        raise FacefindError(
            f"too few identities ({len(queryable)} with 2+ images) for a validation split of "
            f"{val_fraction:.0%}; pass --val-manifest with a separate validation set"
        )
    val_names = set(random.Random(seed).sample(queryable, count))
    train = [s for name, group in groups.items() if name not in val_names for s in group]
    train += [s for s in samples if not s.identity]
    val = [
        (sample, "query" if i % 4 == 0 else "gallery")
        for name in sorted(val_names)
        for i, sample in enumerate(groups[name][:MAX_PER_IDENTITY])
    ]
    return train, val
