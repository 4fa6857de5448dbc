"""``python -m training calibrate``: a model's held-out figures and "same person" thresholds
measured again, the way it will embed faces, and written into the checkpoint.

What a model's thresholds mean depends on how its vectors are made: turning mirror averaging
on or off (``--flip-average``) moves every similarity, so the thresholds are measured again on
the held-out people the run itself kept apart (its recorded ``val_share`` and ``seed``). The
pack's crops are shrunk to the model's input as serving then does: the checkpoint records the
pack's crop size (``crop_size``), which checkpoints from before it lacked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.checkpoint import load_checkpoint, read_checkpoint, write_checkpoint
from indexer.embedder import resolve_device, resolve_precision
from indexer.errors import FacefindError
from training.distill_data import DistillData
from training.distill_validate import FALSE_ACCEPT_RATES, thresholds, validate
from training.pack_files import load_packs


@dataclass
class Calibration:
    path: Path
    fingerprint: str
    flip_average: bool
    metrics: dict[str, float]

    def summary(self) -> str:
        m = self.metrics
        rates = ", ".join(
            f"{far:.1%} >= {m[f'threshold_far_{far:g}']:.3f} "
            f"(same person passes {m[f'tar_far_{far:g}']:.0%})"
            for far in FALSE_ACCEPT_RATES
        )
        mirror = "with" if self.flip_average else "without"
        return (
            f"held-out top-1 {m['top1']:.3f}, mAP {m['mAP']:.3f} ({mirror} mirror averaging); "
            f"same person at false-accept rate {rates}; wrote {self.path} ({self.fingerprint})"
        )


def calibrate(
    model_path: Path,
    packs: list[Path],
    out: Path | None = None,
    flip_average: bool | None = None,
    device: str = "auto",
    precision: str = "auto",
) -> Calibration:
    """Measure on the run's held-out people; ``flip_average`` None keeps the model's own."""
    payload = read_checkpoint(model_path)
    model, info = load_checkpoint(model_path)
    settings: dict[str, Any] = dict(info.training.get("settings") or {})
    if "val_share" not in settings or "seed" not in settings:
        raise FacefindError(
            f"{model_path} does not record which people its run held out (val_share, seed): "
            "only a distillation run's checkpoint can be calibrated again"
        )
    pack = load_packs(packs)
    if pack.meta.aligned != info.alignment:
        raise FacefindError(f"{packs[0]} holds crops aligned otherwise than {model_path}'s input")
    data = DistillData(pack, float(settings["val_share"]), int(settings["seed"]))
    if len(data.val) == 0:
        raise FacefindError(f"no held-out people of {model_path}'s run are in these packs")
    flip = info.flip_average if flip_average is None else flip_average
    dev = resolve_device(device)
    metrics = validate(model.to(dev), data.to(dev), info.input_size, dev,
                       resolve_precision(precision, dev), flip)  # fmt: skip
    payload["metrics"] = dict(payload.get("metrics") or {}) | metrics
    payload["thresholds"] = thresholds(metrics)
    payload["flip_average"] = flip
    payload["crop_size"] = pack.meta.size
    payload["training"] = dict(payload.get("training") or {}) | {
        "calibrated_on": [str(p) for p in packs],
        "held_out_faces": len(data.val),
    }
    dest = out or model_path
    return Calibration(dest, write_checkpoint(dest, payload), flip, metrics)
