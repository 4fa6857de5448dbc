"""``python -m training lineage``: one plot of a model's whole history across warm restarts.

Each run's curve counts images from its own start; a shipped model is a chain of runs, each
started (``--init``) from the previous one's kept checkpoint. A lineage file lists the chain, so
the held-out curves line up on the images the shipped weights have seen in all, beside the
report set's figures for each kept model: where the recipe is going, at a glance.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from indexer.errors import FacefindError
from training.run_files import read_metrics_csv

COLUMNS = ("run", "metrics", "picked", "report_top1", "report_map")


@dataclass(frozen=True)
class Run:
    """One run of the chain: its metrics.csv, the lineage's images when it began, and the
    images into the run at which its kept checkpoint was taken."""

    name: str
    metrics: Path
    start: int
    picked: int
    report_top1: float | None
    report_map: float | None


def read_lineage(path: Path) -> list[Run]:
    """The chain in order; metrics paths are relative to the lineage file. Each run starts
    where the one before it was kept, so its start is the sum of the earlier runs' picks."""
    runs: list[Run] = []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise FacefindError(f"{path}: lineage columns missing: {', '.join(missing)}")
        start = 0
        for row in reader:
            try:
                run = Run(
                    name=row["run"],
                    metrics=path.parent / row["metrics"],
                    start=start,
                    picked=int(row["picked"]),
                    report_top1=float(row["report_top1"]) if row["report_top1"] else None,
                    report_map=float(row["report_map"]) if row["report_map"] else None,
                )
            except ValueError as exc:
                raise FacefindError(f"{path}: line {reader.line_num}: {exc}") from None
            runs.append(run)
            start += run.picked
    if not runs:
        raise FacefindError(f"{path}: no runs listed")
    return runs


def held_out(run: Run) -> list[tuple[int, float, float]]:
    """(lineage images, top-1, mAP) of the run's validations up to its kept checkpoint."""
    try:
        points = [
            (run.start + int(r["images"]), r["top1"], r["mAP"])
            for r in read_metrics_csv(run.metrics)
            if "top1" in r and "mAP" in r and r["images"] <= run.picked
        ]
    except (KeyError, ValueError) as exc:
        raise FacefindError(f"{run.metrics}: not a metrics file of a run ({exc!r})") from None
    if not points:
        raise FacefindError(f"{run.metrics}: no validation at or before {run.picked} images")
    return points


def plot_lineage(lineage: Path, out: Path, report: str = "celeba-wild") -> int:
    """Writes the plot; returns the images the last run's kept model has seen in all."""
    runs = read_lineage(lineage)
    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    for number, run in enumerate(runs):
        points = held_out(run)
        seen = [p[0] / 1e6 for p in points]
        first = number == 0
        ax.plot(seen, [p[1] for p in points], color="tab:blue", marker=".",
                label="held-out top-1" if first else None)  # fmt: skip
        ax.plot(seen, [p[2] for p in points], color="tab:orange", marker=".",
                label="held-out mAP" if first else None)  # fmt: skip
        ax.axvline(run.start / 1e6, color="grey", linewidth=0.5)
        ax.annotate(run.name, (run.start / 1e6, 0.02), fontsize=7, rotation=90)
    kept = [(r, (r.start + r.picked) / 1e6) for r in runs]
    for key, color, label in (("report_top1", "tab:green", f"{report} top-1"),
                              ("report_map", "tab:red", f"{report} mAP")):  # fmt: skip
        marks = [(x, getattr(r, key)) for r, x in kept if getattr(r, key) is not None]
        if marks:
            ax.plot(*zip(*marks, strict=True), color=color, marker="s", linestyle="--",
                    label=label)  # fmt: skip
    ax.set(title="one model's lineage: each run starts from the last one's kept weights",
           xlabel="images seen in all (millions)", ylim=(0, 1))  # fmt: skip
    ax.legend(loc="upper left")  # the run labels sit along the bottom
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    return runs[-1].start + runs[-1].picked
