"""What a distillation run leaves in its folder: config.json, metrics.csv, curve.png (top-1
and mAP against images seen), best.pt (a facefind checkpoint) and last.pt (to resume)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from indexer.align import Alignment
from indexer.checkpoint import save_checkpoint
from indexer.model import EmbeddingNet
from training.distill_validate import thresholds
from training.run_files import BEST, LAST, RunFiles

CURVE = "curve.png"


class DistillFiles(RunFiles):
    """A training run's folder, with its own curve and a facefind checkpoint as best.pt."""

    columns = ()

    def __init__(self, out: Path) -> None:
        super().__init__(out)
        self.last = self.out / LAST
        self.best = self.out / BEST

    def plot(self) -> None:
        rows = self.read_metrics()
        if not rows:
            return
        seen = [r["images"] / 1e3 for r in rows]
        fig = Figure(figsize=(6, 4))
        ax = fig.subplots()
        for key in ("top1", "mAP"):
            ax.plot(seen, [r.get(key, float("nan")) for r in rows], marker="o", label=key)
        ax.set(title="held-out identities", xlabel="images seen (thousands)", ylim=(0, 1))
        ax.legend()
        fig.tight_layout()
        fig.savefig(self.out / CURVE, dpi=80)

    def save_best(self, model: EmbeddingNet, size: int, crop_size: int, alignment: Alignment,
                  metrics: dict[str, float], training: dict[str, Any],
                  flip_average: bool) -> None:  # fmt: skip
        """``crop_size``: the pack's, which serving then cuts faces at and shrinks as here."""
        save_checkpoint(self.best, model, size, crop_size=crop_size, metrics=metrics,
                        training=training,
                        extra={"alignment": alignment.to_dict(), "thresholds": thresholds(metrics),
                               "flip_average": flip_average})  # fmt: skip
