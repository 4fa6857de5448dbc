"""The one checkpoint format: everything needed to rebuild and use an embedder.

A checkpoint is a plain dict of tensors, strings and numbers so it loads with
``torch.load(weights_only=True)``: no pickled code from a file can run.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from indexer.align import Alignment
from indexer.atomic import atomic_open
from indexer.errors import ModelNotFound
from indexer.model import IMAGENET_MEAN, IMAGENET_STD, EmbeddingNet

FORMAT = "facefind-embedder"
FORMAT_VERSION = 1


@dataclass
class ModelInfo:
    """What a checkpoint says about its model, besides the weights."""

    arch: str
    embedding_dim: int
    input_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    fingerprint: str = ""
    name: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    alignment: Alignment = field(default_factory=Alignment)
    """How input crops are made; checkpoints from before alignment are box crops."""
    thresholds: dict[str, float] = field(default_factory=dict)
    """Calibrated "same person" cosine similarity per false-accept rate (``"0.01"``,
    ``"0.001"``), measured on labelled faces the model did not train on; empty if unknown."""
    flip_average: bool = False
    """Each face is embedded with its mirror image and the two vectors summed: a steadier
    vector for twice the network time. Part of the model (its thresholds were measured so)."""
    crop_size: int = 0
    """The side faces are cut at, then shrunk to ``input_size`` by ``resize_faces`` as in
    training (a distilled model's pack is cut at 128 px); 0 in older checkpoints: the input
    size, no resize."""

    def __post_init__(self) -> None:
        if not self.crop_size:
            self.crop_size = self.input_size


def save_checkpoint(
    path: Path | str,
    model: EmbeddingNet,
    input_size: int,
    *,
    crop_size: int | None = None,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    metrics: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    half: bool = False,
    extra: dict[str, Any] | None = None,
) -> str:
    """Write atomically (temp file + rename); returns the new file's fingerprint.
    ``crop_size``: the side the training crops were cut at (default: ``input_size``)."""
    state = {
        k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone()
        for k, v in model.state_dict().items()
    }
    payload: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": model.arch,
        "embedding_dim": model.embedding_dim
        if not isinstance(model.head, torch.nn.Identity)
        else 0,
        "input_size": int(input_size),
        "crop_size": int(crop_size or input_size),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "state_dict": state,
        "metrics": dict(metrics or {}),
        "training": dict(training or {}),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra or {}),
    }
    return write_checkpoint(path, payload)


def write_checkpoint(path: Path | str, payload: dict[str, Any]) -> str:
    """A checkpoint's dict, written atomically (temp file + rename); returns its fingerprint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as fh:
        torch.save(payload, fh)
    return fingerprint(path)


def fingerprint(path: Path | str) -> str:
    """A short hash of the file: the same bytes, the same model."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def read_checkpoint(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ModelNotFound(f"model checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelNotFound(_unloadable(path, exc)) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelNotFound(f"{path} is not a facefind checkpoint (no '{FORMAT}' header)")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise ModelNotFound(f"{path} was written by a newer facefind; upgrade to load it")
    return payload


def _unloadable(path: Path, exc: Exception) -> str:
    """One line: torch's own message spans paragraphs and suggests ``weights_only=False``,
    the very thing never to do with a file that smuggles code."""
    smuggled = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
    if smuggled:
        return (
            f"{path} holds a Python object ({smuggled.group(1)}) besides tensors: refused, "
            "since loading it could run code. A facefind checkpoint holds only tensors, "
            "strings and numbers."
        )
    lines = str(exc).strip().splitlines()
    why = lines[0] if lines else type(exc).__name__
    return f"{path} is not a loadable facefind checkpoint ({why})"


def load_checkpoint(path: Path | str) -> tuple[EmbeddingNet, ModelInfo]:
    """Rebuild the network from a checkpoint file, weights in fp32, in eval mode."""
    payload = read_checkpoint(path)
    model = EmbeddingNet(payload["arch"], int(payload["embedding_dim"]))
    state = {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelNotFound(f"{path}: weights do not match {payload['arch']} ({exc})") from exc
    model.eval()
    info = ModelInfo(
        arch=payload["arch"],
        embedding_dim=model.embedding_dim,
        input_size=int(payload["input_size"]),
        mean=tuple(payload["mean"]),
        std=tuple(payload["std"]),
        fingerprint=fingerprint(path),
        name=Path(path).name,
        metrics=dict(payload.get("metrics", {})),
        training=dict(payload.get("training", {})),
        alignment=Alignment.from_dict(payload.get("alignment")),
        thresholds={str(k): float(v) for k, v in dict(payload.get("thresholds", {})).items()},
        flip_average=bool(payload.get("flip_average", False)),
        crop_size=int(payload.get("crop_size", 0)),
    )
    return model, info
