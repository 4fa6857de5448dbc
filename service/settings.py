"""Settings of ``python -m service``: one object, environment variables prefixed FACEFIND_."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACEFIND_", extra="ignore")

    model: str | None = None
    """Checkpoint path, or ``imagenet``; the shipped default model when unset."""
    data_dir: Path = Path("data")
    """The gallery store: the same directory `python -m indexer build --index DIR` writes."""
    detector: Literal["haar", "yunet", "none"] = "yunet"
    """YuNet (landmarks, aligned faces) from models/ or ``detector_model``; Haar where its
    file is not installed (said once at start-up)."""
    detector_model: Path | None = None
    device: str = "auto"
    precision: str = "auto"
    compile: bool = True
    """torch.compile the embedder (CPU) in the background after start-up: the eager embedder
    serves meanwhile (one to four minutes on 2 cores), then the compiled one, 2-3x faster on
    small batches, for about 0.5 GB more memory; stays eager where it cannot compile."""
    index_factory: str = "auto"
    store_url: str | None = None
    """``postgresql://user@host:port/db``: the gallery on a PostgreSQL server shared by several
    replicas (``data_dir`` then only caches the search index); SQLite in ``data_dir`` if unset."""
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Comma-separated; when set, every route but /health and /ready needs ``X-API-Key``."""
    max_upload_bytes: int = Field(10 * 1024 * 1024, gt=0)
    """Largest image file accepted (413 beyond)."""
    max_request_bytes: int = Field(100 * 1024 * 1024, gt=0)
    """Largest request body, cut off while it streams in: bounds what a batch upload spools."""
    max_files: int = Field(50, gt=0)
    """Most images in one request (``POST /gallery``, ``POST /query/batch``)."""
    max_pixels: int = Field(40_000_000, gt=0)
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
