"""What a run leaves in its folder: config.json, metrics.csv, curves.png, best.pt, last.pt."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from indexer.checkpoint import read_checkpoint, save_checkpoint
from indexer.errors import FacefindError
from indexer.model import EmbeddingNet

CONFIG, METRICS, CURVES, BEST, LAST = (
    "config.json",
    "metrics.csv",
    "curves.png",
    "best.pt",
    "last.pt",
)
COLUMNS = (
    "epoch",
    "lr",
    "loss",
    "distill",
    "triplets",
    "img_per_s",
    "seconds",
    "top1",
    "top5",
    "top10",
    "mAP",
)


def read_metrics_csv(path: Path) -> list[dict[str, float]]:
    """A run's metrics.csv (or a copy of it in docs/) as numbers; blank cells left out."""
    with path.open(newline="") as fh:
        return [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(fh)]


class RunFiles:
    columns: tuple[str, ...] = COLUMNS
    """metrics.csv's columns; empty: those of the first row written."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)

    def start(self, config: dict[str, Any], resume: bool) -> None:
        """A new run refuses to overwrite an old one; ``--resume`` needs one to continue."""
        if resume and not (self.out / LAST).is_file():
            raise FacefindError(f"nothing to resume: {self.out / LAST} does not exist")
        if not resume and (self.out / LAST).is_file():
            raise FacefindError(f"{self.out} already holds a run; pass --resume or another --out")
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / CONFIG).write_text(json.dumps(config, indent=2, default=str) + "\n")

    def append_metrics(self, row: dict[str, float]) -> None:
        """A file begun by an older version keeps its own columns."""
        path = self.out / METRICS
        new = not path.is_file()
        columns = list(self.columns or row)
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
        return read_metrics_csv(path) if path.is_file() else []

    def plot(self) -> None:
        rows = self.read_metrics()
        if not rows:
            return
        epochs = [r["epoch"] for r in rows]
        fig = Figure(figsize=(10, 4))
        left, right = fig.subplots(1, 2)
        left.plot(epochs, [r["loss"] for r in rows], marker="o", label="loss")
        if any(r.get("distill") for r in rows):
            left.plot(epochs, [r.get("distill", 0.0) for r in rows], marker="o", label="distill")
            left.legend()
        left.set(title="training loss (mined triplets + teacher)", xlabel="epoch")
        for key in ("top1", "top5", "top10", "mAP"):
            right.plot(epochs, [r.get(key, float("nan")) for r in rows], marker="o", label=key)
        right.set(title="validation retrieval", xlabel="epoch", ylim=(0, 1))
        right.legend()
        fig.tight_layout()
        fig.savefig(self.out / CURVES, dpi=80)

    def save(
        self,
        name: str,
        model: EmbeddingNet,
        input_size: int,
        metrics: dict[str, Any],
        config: dict[str, Any],
        state: dict[str, Any],
    ) -> None:
        training = json.loads(json.dumps(config, default=str))
        save_checkpoint(
            self.out / name, model, input_size, metrics=metrics, training=training, extra=state
        )

    def load_last(self) -> dict[str, Any]:
        return read_checkpoint(self.out / LAST)
