"""The embedder on the GPU gives the CPU's vectors, in fp16 and in bf16."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from indexer.checkpoint import load_checkpoint
from indexer.embedder import Embedder

pytestmark = pytest.mark.gpu

CENTRED_COSINE = {"fp16": 0.99, "bf16": 0.95}
"""Least cosine between a device vector and the CPU's fp32 one, both minus the CPU vectors'
mean. A random-weight network maps every input near one direction (raw cosines are all
above 0.99, another crop's vector included), so only the centred part tells crops apart:
there different crops score about -0.1, and on the CPU fp16 scores 0.9996, bf16 0.98."""
RAW_COSINE = 0.999
"""Least plain cosine between the device's vector and the CPU's fp32 vector of a crop."""


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_embedder_on_the_device_gives_the_cpus_vectors(
    device: str, model_path: Path, precision: str
) -> None:
    net, info = load_checkpoint(model_path)
    rng = np.random.default_rng(0)
    size = info.input_size
    crops = list(rng.integers(0, 256, (16, size, size, 3), dtype=np.uint8))
    reference = Embedder(copy.deepcopy(net), info, "cpu", "fp32").embed(crops)
    embedder = Embedder(copy.deepcopy(net), info, device, precision)
    assert embedder.device.type == device.split(":")[0]
    assert embedder.precision == {"fp16": "float16", "bf16": "bfloat16"}[precision]
    vectors = embedder.embed(crops, batch_size=8)
    assert vectors.shape == reference.shape and np.isfinite(vectors).all()
    assert (vectors * reference).sum(axis=1).min() >= RAW_COSINE
    mean = reference.mean(axis=0)
    a, b = vectors - mean, reference - mean
    centred = (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert centred.min() >= CENTRED_COSINE[precision], centred
