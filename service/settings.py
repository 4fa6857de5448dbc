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
    detector: Literal["haar", "yunet", "none"] = "haar"
    detector_model: Path | None = None
    device: str = "auto"
    precision: str = "auto"
    index_factory: str = "auto"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Comma-separated; when set, every route but /health and /ready needs ``X-API-Key``."""
    max_upload_bytes: int = Field(10 * 1024 * 1024, gt=0)
    max_pixels: int = Field(40_000_000, gt=0)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    max_batch: int = Field(32, gt=0)
    """Most face crops embedded together when concurrent requests are batched."""
    batch_wait_ms: float = Field(2.0, ge=0)
    """How long a request waits for others to join its embedding batch."""

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
