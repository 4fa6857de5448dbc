"""``python -m training travel PACK... --out FILE.npz``: a pack small enough to travel.

A GPU run gets a copy of the repository of at most 64 MiB, so a pack (3 GB of raw crops)
goes as one file of JPEG crops at a smaller size and teacher targets as 8-bit integers (one
part in 127 of a unit vector's component: far below what a student learns to), with as many
faces as fit the budget, drawn evenly with a fixed seed. ``distill --pack FILE.npz`` reads it
like a pack folder. At quality 70 a 96 px crop costs about as much as an 80 px one at 80 (2.5
kB): about 18,000 faces in 44 MiB at the size the model serves.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from indexer.atomic import atomic_write_bytes
from indexer.errors import ConfigError, FacefindError
from training.distill_settings import DistillSettings
from training.pack_files import Pack, PackMeta, load_packs

TARGET_SCALE = 127.0
MAX_MIB = 48.0
"""The budget that leaves room for the code in a 64 MiB copy of the repository."""
SIZE: int = DistillSettings.model_fields["image_size"].default
"""The size distill serves at by default, so a GPU run trains at it."""
QUALITY = 70


def write_travel(
    packs: list[Path],
    out: Path,
    max_mib: float = MAX_MIB,
    size: int = SIZE,
    quality: int = QUALITY,
    seed: int = 0,
) -> str:
    if not 1 <= quality <= 100:
        raise ConfigError(f"JPEG quality must be 1 to 100, not {quality}")
    if size < 16:
        raise ConfigError(f"crop size must be at least 16 px, not {size}")
    pack = load_packs(packs)
    order = np.random.default_rng(seed).permutation(len(pack.crops))
    budget = int(max_mib * 2**20)
    jpegs: list[bytes] = []
    kept: list[int] = []
    used = 8192  # the zip's and the arrays' headers, and the metadata
    per_face = pack.targets.shape[1] * pack.targets.shape[2] + pack.identities.dtype.itemsize + 8
    for i in order:
        small = cv2.resize(pack.crops[i], (size, size), interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, quality])  # fmt: skip
        if not ok:
            raise FacefindError(f"could not encode crop {pack.paths[i]}")
        cost = len(data) + per_face
        if used + cost > budget:
            break
        used += cost
        jpegs.append(data.tobytes())
        kept.append(int(i))
    keep = np.array(sorted(kept), dtype=np.int64)
    by_index = dict(zip(kept, jpegs, strict=True))
    blob = np.frombuffer(b"".join(by_index[i] for i in keep), dtype=np.uint8)
    ends = np.cumsum([len(by_index[i]) for i in keep]).astype(np.int64)
    targets = np.round(pack.targets[keep].astype(np.float32) * TARGET_SCALE).astype(np.int8)
    meta = asdict(pack.meta) | {"size": size, "images": len(keep), "travel": True}
    buffer = io.BytesIO()
    np.savez(buffer, jpeg=blob, ends=ends, targets=targets, identities=pack.identities[keep],
             meta=np.array(json.dumps(meta)))  # fmt: skip
    atomic_write_bytes(out, buffer.getvalue())
    return (f"{len(keep)} of {len(pack.crops)} faces at {size} px in {out} "
            f"({out.stat().st_size / 2**20:.1f} MiB)")  # fmt: skip


def load_travel(path: Path) -> Pack:
    with np.load(path, allow_pickle=False) as data:
        meta = PackMeta(**{k: v for k, v in json.loads(str(data["meta"])).items()
                           if k in PackMeta.__dataclass_fields__})  # fmt: skip
        blob, ends = data["jpeg"], data["ends"]
        starts = np.concatenate([[0], ends[:-1]])
        crops = np.stack([_decode_crop(blob[a:b], path, i)
                          for i, (a, b) in enumerate(zip(starts, ends, strict=True))])  # fmt: skip
        targets = data["targets"].astype(np.float32) / TARGET_SCALE
        targets /= np.maximum(np.linalg.norm(targets, axis=-1, keepdims=True), 1e-6)
        identities = data["identities"]
    paths = np.array([f"{path.name}#{i}" for i in range(len(crops))])
    return Pack(meta, crops, targets.astype(np.float16), identities, paths)


def _decode_crop(jpeg: np.ndarray, path: Path, number: int) -> np.ndarray:
    """One RGB crop; a damaged file says which face, not OpenCV's assertion on an empty image."""
    bgr = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    if bgr is None:
        raise FacefindError(f"{path}: face {number} is not a readable JPEG (a damaged file?)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
