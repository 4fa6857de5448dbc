"""The figures table of docs/docker.md, from the JSON that scripts/docker-e2e.sh writes.

``python docker/e2e_figures.py docs/docker-e2e.json docs/docker.md`` replaces what lies between
the two marker comments of the page; tests/docker checks that the page and the JSON agree.
Not part of any image (the build context leaves it out).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

BEGIN = "<!-- docker-e2e figures: begin (docker/e2e_figures.py writes this part) -->"
END = "<!-- docker-e2e figures: end -->"


def _gb(size: int) -> str:
    return f"{size / 1e9:.2f} GB"


def render(figures: dict[str, Any]) -> str:
    """The Markdown between the markers, markers included."""
    machine = figures["machine"]
    compose = figures["compose"].rsplit(" ", 1)[0]  # "docker compose" or "docker-compose"
    rows = [
        ("CPU image `facefind:cpu`", _gb(figures["image_bytes"])),
        (f"base image `{figures['base_image']}`", _gb(figures["base_image_bytes"])),
        ("making the base image", f"{figures['base_seconds']:.0f} s"),
        (
            f"`{compose} build` (build cache {figures['build_cache']})",
            f"{figures['build_seconds']:.0f} s",
        ),
        ("`up -d` until `/health` answers", f"{figures['up_to_serving_seconds']:.0f} s"),
        ("`up -d` until Docker reports healthy", f"{figures['up_to_healthy_seconds']:.0f} s"),
        (
            "`run --rm indexer build` on 9 photos, start to exit",
            f"{figures['indexer_seconds']:.0f} s",
        ),
        ("the whole check", f"{figures['total_seconds'] / 60:.0f} min"),
    ]
    made = "made with debootstrap" if figures["base_made_with_debootstrap"] else "as found"
    lines = [
        BEGIN,
        "",
        f"Measured by `{figures['command']}` on {figures['date'][:10]}: "
        f"{machine['cpus']} CPUs, {machine['memory_gib']} GiB, Docker Engine "
        f"{figures['engine']}, {figures['compose']}; base `{figures['base_image']}` ({made}), "
        f"PyTorch wheels from {figures['torch_from']}, YuNet from {figures['yunet_from']}.",
        "",
        "| what | measured |",
        "|---|---|",
        *(f"| {what} | {value} |" for what, value in rows),
        "",
        END,
    ]
    return "\n".join(lines)


def update(page: str, figures: dict[str, Any]) -> str:
    start, end = page.index(BEGIN), page.index(END) + len(END)
    return page[:start] + render(figures) + page[end:]


def main(argv: list[str]) -> int:
    figures_path, page_path = Path(argv[0]), Path(argv[1])
    figures = json.loads(figures_path.read_text())
    page_path.write_text(update(page_path.read_text(), figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
