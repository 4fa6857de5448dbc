"""The report's PNG plots, drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

DPI = 100


def embed_throughput(embed: dict[str, Any], path: Path) -> None:
    """Images/s against batch size, one line per variant, one panel per input size."""
    sizes = sorted({r["size"] for r in embed["runs"]})
    fig = Figure(figsize=(5 * len(sizes), 4))
    for ax, size in zip(fig.subplots(1, len(sizes), squeeze=False)[0], sizes, strict=True):
        rows = [r for r in embed["runs"] if r["size"] == size]
        for variant in dict.fromkeys(r["variant"] for r in rows):
            points = sorted(
                (r["batch"], r["images_per_s"]) for r in rows if r["variant"] == variant
            )
            ax.plot(*zip(*points, strict=True), marker="o", label=variant)
        ax.set(xscale="log", xlabel="batch size", ylabel="images/s", title=f"embedder, {size} px")
        ax.set_xticks(
            sorted({r["batch"] for r in rows}),
            labels=sorted({str(r["batch"]) for r in rows}, key=int),
        )
        ax.minorticks_off()
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _save(fig, path)


def http_latency(http: dict[str, Any], path: Path) -> None:
    """POST /query latency percentiles and throughput against concurrent clients."""
    levels = http["concurrency"]
    clients = [r["clients"] for r in levels]
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for key, style in (("p50_ms", "o-"), ("p95_ms", "s--"), ("p99_ms", "^:")):
        ax.plot(clients, [r[key] for r in levels], style, label=key.replace("_ms", ""))
    ax.set(xscale="log", xlabel="concurrent clients", ylabel="latency (ms)", title="POST /query")
    ax.set_xticks(clients, labels=[str(c) for c in clients])
    ax.minorticks_off()
    ax.grid(alpha=0.3)
    right = ax.twinx()
    right.plot(clients, [r["throughput_rps"] for r in levels], "k-", alpha=0.5, label="req/s")
    right.set_ylabel("throughput (requests/s)")
    handles = ax.get_legend_handles_labels()
    extra = right.get_legend_handles_labels()
    ax.legend(handles[0] + extra[0], handles[1] + extra[1], fontsize=8, loc="upper left")
    _save(fig, path)


def search_recall(search: dict[str, Any], path: Path) -> None:
    """recall@10 against single-query latency for each index, one panel per data set."""
    sets = search["datasets"]
    fig = Figure(figsize=(5 * len(sets), 4))
    for ax, data in zip(fig.subplots(1, len(sets), squeeze=False)[0], sets, strict=True):
        for factory in dict.fromkeys(r["factory"] for r in data["indexes"]):
            rows = [r for r in data["indexes"] if r["factory"] == factory]
            recall = [r["recall10"] for r in rows]
            (line,) = ax.plot([r["query_p50_ms"] for r in rows], recall, marker="o", label=factory)
            ax.plot(
                [r["query_p50_ms_1thread"] for r in rows],
                recall,
                marker="o",
                ls="--",
                mfc="none",
                color=line.get_color(),
                label=f"{factory}, 1 thread",
            )
        ax.axhline(0.95, color="grey", lw=0.8, ls="--")
        ax.set(
            xscale="log",
            xlabel="ms per query (p50, one query at a time)",
            ylabel="recall@10",
            title=f"{data['n']:,} vectors, alpha {data['alpha']:.2f}",
            ylim=(0, 1.02),
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _save(fig, path)


def _save(fig: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
