"""What a distillation run leaves in its folder: config.json, metrics.csv, curve.png (top-1
and mAP against images seen), best.pt (a facefind checkpoint) and last.pt (to resume)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from indexer.align import Alignment
from indexer.checkpoint import save_checkpoint
from indexer.errors import FacefindError
from indexer.model import EmbeddingNet

CONFIG, METRICS, CURVE, BEST, LAST = "config.json", "metrics.csv", "curve.png", "best.pt", "last.pt"


class DistillFiles:
    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.last = self.out / LAST
        self.best = self.out / BEST

    def start(self, config: dict[str, Any], resume: bool) -> None:
        """A new run refuses to overwrite an old one; ``--resume`` needs one to continue."""
        if resume and not self.last.is_file():
            raise FacefindError(f"nothing to resume: {self.last} does not exist")
        if not resume and self.last.is_file():
            raise FacefindError(f"{self.out} already holds a run; pass --resume or another --out")
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / CONFIG).write_text(json.dumps(config, indent=2) + "\n")

    def append_metrics(self, row: dict[str, float]) -> None:
        path = self.out / METRICS
        new = not path.is_file()
        columns = list(row)
        if not new:
            with path.open(newline="") as fh:
                columns = next(csv.reader(fh), columns)
        with path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: row.get(k, "") for k in columns})

    def read_metrics(self) -> list[dict[str, float]]:
        path = self.out / METRICS
        if not path.is_file():
            return []
        with path.open(newline="") as fh:
            return [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(fh)]

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

    def save_best(self, model: EmbeddingNet, size: int, alignment: Alignment,
                  metrics: dict[str, float], training: dict[str, Any]) -> None:  # fmt: skip
        thresholds = {f"{far}": metrics[f"threshold_far_{far}"] for far in ("0.01", "0.001")}
        save_checkpoint(self.best, model, size, metrics=metrics, training=training,
                        extra={"alignment": alignment.to_dict(), "thresholds": thresholds})  # fmt: skip
