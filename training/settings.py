"""Settings of ``python -m training``: environment (``FACEFIND_TRAIN_*``) first, flags override."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from indexer.model import DEFAULT_EMBEDDING_DIM, DEFAULT_INPUT_SIZE
from indexer.settings import Detector, DeviceSettings, FaceFlowSettings
from training.teacher import TEACHER_DIM

Paths = Annotated[list[Path], NoDecode]
"""One or more paths: a list of flags, or one string split at os.pathsep (environment)."""


class TrainSettings(DeviceSettings, FaceFlowSettings):
    """The shared device and face-flow groups, and the triplet recipe's own settings."""

    model_config = SettingsConfigDict(
        env_prefix="FACEFIND_TRAIN_", extra="ignore", use_attribute_docstrings=True
    )

    # prepare
    detector: Detector = "haar"
    """The triplet recipe's crops are Haar boxes (``distill`` packs aligned YuNet crops)."""
    crop_size: int = Field(128, ge=16)
    """Prepared crops are larger than the training size so random crops have room."""

    # train: data
    data: Paths = []
    """Crop folders; with several, identities are prefixed by the folder's name."""
    out: Path | None = None
    val_manifest: Path | None = None
    val_root: Path | None = None
    val_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    min_images: int = Field(2, ge=1)
    """Identities with fewer crops are left out of training (1 keeps singletons)."""
    seed: int = 0
    workers: int = Field(0, ge=0)

    # train: model
    arch: str = "resnet50"
    image_size: int = Field(DEFAULT_INPUT_SIZE, ge=16)
    embedding_dim: int = Field(DEFAULT_EMBEDDING_DIM, ge=2)
    pretrained: str = "none"
    """``imagenet``, ``none`` or a facefind checkpoint to start from."""

    # train: optimisation
    epochs: int = Field(30, ge=1)
    classes_per_batch: int = Field(32, ge=2)
    images_per_class: int = Field(4, ge=2)
    lr: float = Field(1e-3, gt=0.0)
    backbone_lr_scale: float = Field(0.1, gt=0.0)
    """Backbone LR = lr x this, when the backbone is pretrained."""
    weight_decay: float = Field(5e-4, ge=0.0)
    warmup_steps: int = Field(300, ge=0)
    margin: float = Field(0.2, gt=0.0)
    mining: Literal["all", "semihard", "hard", "batch-hard"] = "all"
    """``all``: every triplet in the batch that violates the margin, hard or semi-hard. Pure
    semi-hard mining needs large batches, which a CPU cannot afford, to find enough triplets."""
    patience: int = Field(5, ge=1)
    time_limit: float | None = Field(None, gt=0.0)
    """Minutes; training stops after the epoch in which the budget would run out."""
    max_steps_per_epoch: int | None = Field(None, ge=1)
    threads: int | None = Field(None, ge=1)
    """CPU threads for torch; on a CPU shared with other work 1 beats 2 (no spinning barriers)."""
    resume: bool = False

    # train: distillation
    teacher: Paths = []
    """Targets folders made by ``teach`` (one per crop folder); empty: no teacher."""
    distill_weight: float = Field(1.0, ge=0.0)
    """Loss = triplet loss + this x mean(1 - cos(student, teacher))."""
    teacher_only_per_batch: int = Field(32, ge=0)
    """Images per batch beside the P x K ones, from singletons and unlabelled crops: they
    have no positives for the triplet loss but still learn from the teacher."""

    @field_validator("data", "teacher", mode="before")
    @classmethod
    def _paths(cls, value: Any) -> Any:
        """A single path (an old config.json, an environment variable) is a one-item list."""
        if isinstance(value, (str, Path)):
            return [p for p in str(value).split(os.pathsep) if p]
        return value

    @model_validator(mode="after")
    def _teacher_dim(self) -> TrainSettings:
        """With a teacher the head is sized to its embedding unless a size was asked for."""
        if self.teacher and "embedding_dim" not in self.model_fields_set:
            self.embedding_dim = TEACHER_DIM
        return self
