"""The settings groups every entry point shares, and the indexer CLI's settings.

Each group is defined once and mixed into the settings object of each entry point (the
indexer CLI here, ``service.settings``, ``training``): its fields keep their flat environment
names (``FACEFIND_DETECTOR``, ``FACEFIND_STORE_URL``, ...) that deployments already set, and
code that needs one group takes it by type (``flow_spec`` takes a ``FaceFlowSettings``).
Flags are generated from the fields by ``indexer.settings_flags``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from indexer.decode import DEFAULT_MAX_PIXELS

Detector = Literal["yunet", "haar", "none"]
"""YuNet: five landmarks, aligned crops; Haar: OpenCV's cascade, box crops; none: the image
is already a face crop."""
Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]


class SettingsGroup(BaseSettings):
    """Environment variables ``FACEFIND_<FIELD>``; attribute docstrings are the flags' help."""

    model_config = SettingsConfigDict(
        env_prefix="FACEFIND_", extra="ignore", use_attribute_docstrings=True
    )


class DeviceSettings(SettingsGroup):
    device: Device = "auto"
    """Where the network runs: cuda when a GPU is present, else cpu."""
    precision: Precision = "auto"
    """bf16 where the CPU or GPU computes it natively, else fp32 (fp16 on old GPUs)."""


class ModelSettings(DeviceSettings):
    model: str | None = None
    """Embedder checkpoint, or imagenet (the shipped model when unset)."""


class FaceFlowSettings(SettingsGroup):
    detector: Detector = "yunet"
    """Face detector: yunet (landmarks, aligned faces; Haar where its file is not installed,
    said once), haar (box crops) or none (images are face crops)."""
    detector_model: Path | None = None
    """YuNet's .onnx file (default: the copy `python -m indexer fetch-detector` installs)."""
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, gt=0)
    """Largest image accepted, in pixels (a decompression-bomb guard)."""


class StoreSettings(SettingsGroup):
    store_url: str | None = None
    """postgresql://user@host:port/db: the gallery on a PostgreSQL server (the index
    directory then only caches the search index); SQLite in the index directory when unset."""


class IndexSettings(SettingsGroup):
    index_factory: str = "auto"
    """FAISS index: auto (exact, then IVF-PQ as the gallery grows) or a factory string."""


class BatchSettings(SettingsGroup):
    batch_size: int = Field(32, ge=1)
    """Face crops embedded together."""
    workers: int = Field(0, ge=0)
    """Processes that decode and detect in parallel; 0 means one per CPU core."""


class IndexerSettings(ModelSettings, FaceFlowSettings, StoreSettings, IndexSettings, BatchSettings):
    """Settings of the ``python -m indexer`` commands: environment first, flags override."""
