"""``python -m training export``: a run's checkpoint as the small half-precision file that ships."""

from __future__ import annotations

from pathlib import Path

from indexer.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from indexer.errors import FacefindError

MAX_BYTES = 50_000_000


def export(checkpoint: Path, dest: Path, max_bytes: int = MAX_BYTES) -> int:
    """Weights in fp16, optimiser and resume state dropped, alignment and calibration kept;
    returns the file's size."""
    model, info = load_checkpoint(checkpoint)
    payload = read_checkpoint(checkpoint)
    training = dict(info.training) | {
        "exported_from": str(checkpoint),
        "epoch": payload.get("epoch"),
    }
    save_checkpoint(
        dest,
        model,
        info.input_size,
        crop_size=info.crop_size,
        mean=info.mean,
        std=info.std,
        metrics=info.metrics,
        training=training,
        half=True,
        extra={
            "alignment": info.alignment.to_dict(),
            "thresholds": info.thresholds,
            "flip_average": info.flip_average,
        },
    )
    size = dest.stat().st_size
    if size > max_bytes:
        dest.unlink()
        raise FacefindError(
            f"the exported model is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit; "
            "use a smaller --arch or --embedding-dim"
        )
    return size
