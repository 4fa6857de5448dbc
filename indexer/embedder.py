"""Batched, fast inference: face crops in, L2-normalised vectors out."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import numpy as np
import torch

from indexer.checkpoint import ModelInfo, load_checkpoint
from indexer.errors import ConfigError, WeightsUnavailable
from indexer.face_pixels import resize_faces
from indexer.model import IMAGENET_MEAN, IMAGENET_STD, EmbeddingNet, build_backbone

log = logging.getLogger(__name__)

IMAGENET_MODEL = "imagenet"

COMPILED_BATCHES = (1, 2, 4, 8, 16, 32)
"""Batch sizes a compiled embedder has a graph for; others are padded up to the next one."""


class Embedder:
    """Wraps an EmbeddingNet with its preprocessing, device and precision.

    Precision ``auto`` picks bf16 on CPUs with native bf16 (AVX-512 BF16 or AMX) and on CUDA
    devices that support it (else fp16); the network runs channels-last either way. The weights
    themselves are converted once, which is faster than autocasting them on every batch.
    ``compile`` (CPU only) adds torch.compile with frozen weights, paid once at start-up: what
    a long-running service wants, not a one-off command. A model whose checkpoint says
    ``flip_average`` embeds each crop and its mirror image and sums the two vectors. Crops
    come at the checkpoint's ``crop_size`` and are shrunk to ``input_size`` as in training.
    """

    def __init__(
        self,
        model: EmbeddingNet,
        info: ModelInfo,
        device: str = "auto",
        precision: str = "auto",
        compile: bool = False,
    ) -> None:
        self.info = info
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)
        if self.dtype != torch.float32:
            # A copy: the caller's model (a network in training, say) keeps its fp32 weights.
            model = copy.deepcopy(model)
        model = model.to(self.device, dtype=self.dtype).eval()
        self.model = model.to(memory_format=torch.channels_last)
        self._mean = torch.tensor(info.mean, device=self.device).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(info.std, device=self.device).view(1, 3, 1, 1) * 255.0
        self._forward: Callable[[torch.Tensor], torch.Tensor] = self.model
        self.compiled = False
        if compile:
            self._compile()

    @property
    def input_size(self) -> int:
        return self.info.input_size

    @property
    def crop_size(self) -> int:
        return self.info.crop_size

    @property
    def embedding_dim(self) -> int:
        return self.info.embedding_dim

    @property
    def fingerprint(self) -> str:
        return self.info.fingerprint

    @property
    def precision(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    def embed(self, crops: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Embed RGB uint8 crops of ``crop_size`` pixels; returns float32 (N, dim)."""
        if len(crops) == 0:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        if self.compiled:
            batch_size = min(batch_size, COMPILED_BATCHES[-1])
        out = [
            self._embed_batch(crops[i : i + batch_size]) for i in range(0, len(crops), batch_size)
        ]
        return np.concatenate(out, axis=0)

    @torch.inference_mode()
    def _embed_batch(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        pixels = np.stack(crops)
        count = len(pixels)
        if self.compiled:
            size = next(n for n in COMPILED_BATCHES if n >= count)
            pixels = np.concatenate([pixels, np.zeros((size - count, *pixels.shape[1:]), np.uint8)])
        batch = torch.from_numpy(pixels).to(self.device)
        batch = resize_faces(batch.permute(0, 3, 1, 2).float(), self.input_size)
        batch = batch.sub_(self._mean).div_(self._std)
        batch = batch.to(self.dtype).contiguous(memory_format=torch.channels_last)
        raw = self._forward(batch)[:count].float()
        if self.info.flip_average:
            mirrored = batch.flip(3).contiguous(memory_format=torch.channels_last)
            raw += self._forward(mirrored)[:count].float()
        vectors = torch.nn.functional.normalize(raw, dim=1)
        return vectors.cpu().numpy().astype(np.float32, copy=False)

    def _compile(self) -> None:
        """Inductor with the weights frozen as constants, so oneDNN prepacks them once.

        One static graph per size in COMPILED_BATCHES, all built here so that no request waits
        for one (about 5 s each for a ResNet50 on 2 cores). Where compiling fails (no C++
        compiler, an unsupported platform) the embedder stays eager and says so.
        """
        if self.device.type != "cpu":
            log.info("torch.compile is used on the CPU only; %s runs eagerly", self.device)
            return
        import torch._inductor.config as inductor_config

        compiled = torch.compile(self.model, dynamic=False)
        side = self.input_size
        start = time.perf_counter()
        try:
            with torch.inference_mode(), inductor_config.patch(freezing=True):
                for n in COMPILED_BATCHES:
                    example = torch.zeros(n, 3, side, side, dtype=self.dtype)
                    compiled(example.contiguous(memory_format=torch.channels_last))
        except Exception as exc:
            log.warning("torch.compile failed, the embedder runs eagerly: %s", _first_line(exc))
            return
        self._forward, self.compiled = compiled, True
        log.info(
            "embedder compiled for batches %s in %.0f s",
            COMPILED_BATCHES,
            time.perf_counter() - start,
        )


def load_embedder(
    model: str | Path, device: str = "auto", precision: str = "auto", compile: bool = False
) -> Embedder:
    """A checkpoint path, or ``imagenet`` for torchvision's ImageNet ResNet50 features."""
    if str(model) == IMAGENET_MODEL:
        net, info = imagenet_model()
    else:
        net, info = load_checkpoint(model)
    return Embedder(net, info, device=device, precision=precision, compile=compile)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def imagenet_model(arch: str = "resnet50") -> tuple[EmbeddingNet, ModelInfo]:
    """ImageNet features without training: the original project's best approach.

    torchvision downloads the weights on first use; where it cannot, say so plainly.
    """
    try:
        backbone = build_backbone(arch, weights="DEFAULT")
    except Exception as exc:
        raise WeightsUnavailable(
            f"torchvision's ImageNet weights for {arch} are not on this machine and could not be "
            f"downloaded ({type(exc).__name__}: {exc}). Copy them into "
            f"{Path(torch.hub.get_dir()) / 'checkpoints'} or pass a trained --model PATH."
        ) from exc
    net = EmbeddingNet(arch, embedding_dim=0, backbone=backbone).eval()
    info = ModelInfo(
        arch=arch,
        embedding_dim=net.embedding_dim,
        input_size=224,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        fingerprint=f"imagenet-{arch}",
        name=IMAGENET_MODEL,
    )
    return net, info


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but no CUDA GPU is available")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ConfigError(f"unknown device {device!r}; choose auto, cpu or cuda")
    return torch.device(device)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    choices = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision in choices:
        return choices[precision]
    if precision != "auto":
        raise ConfigError(f"unknown precision {precision!r}; choose auto, fp32, bf16 or fp16")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32


@cache
def cpu_has_native_bf16() -> bool:
    """True on CPUs with AVX-512 BF16 or AMX, where bf16 matmuls run at twice fp32 speed."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags for flag in ("avx512_bf16", "amx_bf16"))
