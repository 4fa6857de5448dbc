"""Settings of ``python -m service``: one object, environment variables prefixed FACEFIND_."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from indexer.settings import (
    FaceFlowSettings,
    IndexSettings,
    ModelSettings,
    SettingsGroup,
    StoreSettings,
)


class ListenSettings(SettingsGroup):
    """Where the service listens and keeps its gallery: the settings that are also flags."""

    host: str = "127.0.0.1"
    """Interface to listen on."""
    port: int = Field(8000, ge=1, le=65535)
    """TCP port."""
    data_dir: Path = Path("data")
    """The gallery store: the directory `python -m indexer build --index DIR` writes."""


SERVICE_FLAGS = (ListenSettings, ModelSettings, FaceFlowSettings, StoreSettings, IndexSettings)
"""The groups ``python -m service`` has flags for; the rest (API keys above all: a flag would
show them in the process list) only come from the environment."""


class ServiceSettings(
    ListenSettings, ModelSettings, FaceFlowSettings, StoreSettings, IndexSettings
):
    """The shared groups and the service's own settings."""

    compile: bool = True
    """torch.compile the embedder (CPU) in the background after start-up: the eager embedder
    serves meanwhile (one to four minutes on 2 cores), then the compiled one, 2-3x faster on
    small batches, for about 0.5 GB more memory; stays eager where it cannot compile."""
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Comma-separated; when set, every route but /health and /ready needs ``X-API-Key``."""
    max_upload_bytes: int = Field(10 * 1024 * 1024, gt=0)
    """Largest image file accepted (413 beyond)."""
    max_request_bytes: int = Field(100 * 1024 * 1024, gt=0)
    """Largest request body, cut off while it streams in: bounds what a batch upload spools."""
    max_files: int = Field(50, gt=0)
    """Most images in one request (``POST /gallery``, ``POST /query/batch``)."""
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    max_batch: int = Field(32, gt=0)
    """Most face crops embedded together when concurrent requests are batched."""
    batch_wait_ms: float = Field(2.0, ge=0)
    """How long a request waits for others to join its embedding batch."""
    index_save_seconds: float = Field(30.0, gt=0)
    """How often new faces are written to the FAISS index file (SQLite has them at once)."""
    index_save_after: int = Field(1000, gt=0)
    """Save the index file sooner once this many faces were added since the last save."""

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
