"""Settings of ``python -m training distill``: environment (``FACEFIND_DISTILL_*``), then flags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from indexer.errors import ConfigError
from indexer.settings import DeviceSettings

Paths = Annotated[list[Path], NoDecode]


class DistillSettings(DeviceSettings):
    """The shared device group and the distillation run's own settings."""

    model_config = SettingsConfigDict(
        env_prefix="FACEFIND_DISTILL_", extra="ignore", use_attribute_docstrings=True
    )

    pack: Paths = []
    """Pack folders made by ``python -m training pack``."""
    out: Path | None = None
    init: Path | None = None
    """A facefind checkpoint (a run's best.pt, or a shipped model) whose weights start the run
    on a fresh schedule: a warm restart that keeps what an earlier run learnt after its
    last.pt is gone. Its arch and embedding size must match; ``--resume`` wins over it."""
    arch: str = "resnet50"
    image_size: int = Field(96, ge=16)
    """The shipped model's input size; validation and best.pt use it."""
    sizes: str = "64:0.55,80:0.25,96:0.20"
    """Progressive resizing: SIZE:SHARE of the images, in order; small images first buy about
    twice the images per CPU-second while the network learns coarse structure."""
    total_images: int = Field(2_000_000, ge=1)
    """The length of the learning-rate schedule; a run may be stopped and resumed any time."""
    batch_size: int = Field(64, ge=4)
    ids_per_batch: int = Field(8, ge=0)
    """Labelled identities per batch (two crops each) for the triplet loss; 0: teacher only."""
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(5e-4, ge=0.0)
    warmup_steps: int = Field(300, ge=0)
    ema: float = Field(0.999, ge=0.0, lt=1.0)
    """Weights averaged over about 1/(1-ema) steps are validated and shipped: the pilot's raw
    weights turned noisy at a constant learning rate."""
    augment: float = Field(1.0, ge=0.0, le=2.0)
    """Strength of the random warp and colour change (1: a few degrees, 7% scale, 6% shift,
    20% contrast and brightness, 10% grey; 0: the mirror alone)."""
    relational_weight: float = Field(1.0, ge=0.0)
    triplet_weight: float = Field(0.5, ge=0.0)
    margin: float = Field(0.2, gt=0.0)
    val_share: float = Field(0.08, gt=0.0, lt=1.0)
    """Share of the labelled identities held out: validation, checkpoint choice, calibration."""
    flip_average: bool = True
    """Validation, calibration and best.pt embed each face with its mirror image and sum the
    two vectors (the checkpoint records it, and serving does the same): about +0.014 mAP on
    celeba-wild for run #7's model, for twice the network time per face."""
    val_every: int = Field(50_000, ge=1)
    """Images between validations."""
    save_minutes: float = Field(5.0, gt=0.0)
    time_limit: float | None = Field(None, gt=0.0)
    """Minutes for this invocation; the run saves and stops, ``--resume`` goes on."""
    schedule: Literal["images", "time"] = "images"
    """What the learning rate and the sizes follow: the share of --total-images seen, or (a
    run whose speed is not known beforehand) the share of the run's first --time-limit spent;
    ``--resume`` goes on along that schedule and stops where it ends."""
    max_steps: int | None = Field(None, ge=1)
    """Stop after this many steps in this invocation (tests, smoke runs)."""
    threads: int | None = Field(None, ge=1)
    compile: bool = False
    """torch.compile the training step's network (GPU runs)."""
    seed: int = 0
    resume: bool = False

    @field_validator("pack", mode="before")
    @classmethod
    def _paths(cls, value: object) -> object:
        if isinstance(value, (str, Path)):
            return [Path(p) for p in str(value).split(",") if p]
        return value

    @model_validator(mode="after")
    def _time_needs_a_limit(self) -> DistillSettings:
        if self.schedule == "time" and not self.time_limit:
            raise ValueError("--schedule time needs --time-limit")
        self.size_plan()  # a malformed plan fails with the other settings, before any work
        return self

    def size_plan(self) -> list[tuple[int, float]]:
        """[(size, share)] with shares summing to 1; the last size must be ``image_size``."""
        plan = []
        for part in self.sizes.split(","):
            size, _, share = part.partition(":")
            try:
                plan.append((int(size), float(share or 1.0)))
            except ValueError:
                raise ConfigError(f"--sizes is SIZE:SHARE,...: not {self.sizes!r}") from None
        total = sum(s for _, s in plan)
        if total <= 0 or plan[-1][0] != self.image_size:
            raise ConfigError(f"--sizes must end at --image-size {self.image_size}: {self.sizes}")
        return [(size, share / total) for size, share in plan]

    def size_at(self, fraction: float) -> int:
        """The training size once this share of the schedule is done."""
        done = 0.0
        for size, share in self.size_plan():
            done += share
            if fraction < done:
                return size
        return self.image_size
