"""The packed training set: aligned face crops and their teacher targets as arrays in shards.

Layout of a pack folder::

    meta.json            size, alignment, teacher, views, the sources and their image counts
    shard-00000.npz      crops (n, S, S, 3) uint8 RGB, targets (n, V, D) float16 (V views:
                         as is, mirrored), identity and path per crop (identity "" unlabelled)
    failed.txt           images without a usable face, one "path<TAB>reason" per line

A shard is written whole or not at all (atomically), so an interrupted ``pack`` redoes at most
one shard. Loaded whole, a pack is a few tensors: what a GPU run keeps in device memory.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from indexer.align import Alignment
from indexer.atomic import atomic_open, atomic_write_bytes
from indexer.errors import FacefindError

META, FAILED = "meta.json", "failed.txt"
SHARD_SIZE = 2048


def shard_name(number: int) -> str:
    return f"shard-{number:05d}.npz"


@dataclass
class PackMeta:
    size: int
    alignment: dict[str, object]
    teacher: str
    views: list[str]
    sources: list[str] = field(default_factory=list)
    images: int = 0

    def save(self, folder: Path) -> None:
        atomic_write_bytes(folder / META, json.dumps(asdict(self), indent=2).encode())

    @classmethod
    def load(cls, folder: Path) -> PackMeta:
        path = Path(folder) / META
        if not path.is_file():
            raise FacefindError(f"{folder} is not a pack (no {META}); make one with `pack`")
        return cls(**json.loads(path.read_text()))

    @property
    def aligned(self) -> Alignment:
        return Alignment.from_dict(self.alignment)


@dataclass
class Shard:
    crops: np.ndarray
    targets: np.ndarray
    identities: np.ndarray
    paths: np.ndarray

    def save(self, path: Path) -> None:
        with atomic_open(path) as fh:
            np.savez(fh, crops=self.crops, targets=self.targets,
                     identities=self.identities, paths=self.paths)  # fmt: skip

    @classmethod
    def load(cls, path: Path) -> Shard:
        with np.load(path, allow_pickle=False) as data:
            return cls(data["crops"], data["targets"], data["identities"], data["paths"])


@dataclass
class Pack:
    """Every shard of one or more packs, concatenated; identities prefixed per pack."""

    meta: PackMeta
    crops: np.ndarray
    targets: np.ndarray
    identities: np.ndarray
    paths: np.ndarray


def load_packs(folders: list[Path]) -> Pack:
    """Pack folders, or one travel file (``python -m training travel``)."""
    if len(folders) == 1 and Path(folders[0]).is_file():
        from training.travel import load_travel

        return load_travel(Path(folders[0]))
    metas = [PackMeta.load(f) for f in folders]
    first = metas[0]
    for folder, meta in zip(folders[1:], metas[1:], strict=True):
        if (meta.size, meta.alignment, meta.teacher) != (
            first.size,
            first.alignment,
            first.teacher,
        ):
            raise FacefindError(f"{folder} was packed differently from {folders[0]}")
    shards = [Shard.load(p) for f in folders for p in sorted(Path(f).glob("shard-*.npz"))]
    if not shards:
        raise FacefindError(f"no shards in {', '.join(map(str, folders))}; run `pack` first")
    return Pack(
        first,
        np.concatenate([s.crops for s in shards]),
        np.concatenate([s.targets for s in shards]),
        np.concatenate([s.identities for s in shards]),
        np.concatenate([s.paths for s in shards]),
    )
