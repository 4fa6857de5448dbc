"""Settings of the ``python -m indexer`` commands: environment first, flags override."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class IndexerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACEFIND_", extra="ignore")

    model: str | None = None
    """Checkpoint path, or ``imagenet``; the shipped default model when unset."""
    detector: str = "yunet"
    """YuNet (five landmarks, aligned faces); Haar where its model file is not installed."""
    detector_model: Path | None = None
    device: str = "auto"
    precision: str = "auto"
    batch_size: int = 32
    workers: int = 0
    """Processes that decode and detect in parallel; 0 means one per CPU core."""
    index_factory: str = "auto"
    store_url: str | None = None
    """``postgresql://user@host:port/db``: the gallery on a PostgreSQL server, ``--index`` then
    only caches the search index; SQLite in ``--index`` when unset."""
    max_pixels: int = 40_000_000
