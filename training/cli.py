"""``python -m training`` and its commands: one-line errors, non-zero exit, no tracebacks."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings

from indexer.errors import FacefindError
from indexer.settings import FaceFlowSettings
from indexer.settings_flags import add_settings_flags, load_settings
from training.distill_settings import DistillSettings
from training.settings import TrainSettings
from training.travel import MAX_MIB, QUALITY, SIZE

EXIT_USAGE = 2
PREPARE_ONLY = frozenset({"crop_size", "max_pixels"})
"""Settings of ``prepare`` that ``train`` has no flag for."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    prep = sub.add_parser("prepare", help="crop every face of a labelled photo collection")
    prep.add_argument("src", type=Path, help="one folder per identity, or CelebA's layout")
    prep.add_argument("--out", type=Path, required=True, help="folder for the crops")
    add_settings_flags(prep, FaceFlowSettings, skip=frozenset({"max_pixels"}))
    prep.add_argument("--size", dest="crop_size", type=int, help="crop side in pixels (128)")
    prep.add_argument("--workers", type=int, help="processes; 0 = one per core")

    teach = sub.add_parser("teach", help="the teacher's embedding of every crop, cached")
    teach.add_argument("crops", type=Path, help="crops made by `prepare`")
    teach.add_argument("--out", type=Path, required=True, help="folder for the targets")
    teach.add_argument("--workers", type=int, default=1, help="processes; 0 = one per core")

    pk = sub.add_parser("pack", help="aligned crops and 0095 teacher targets in shards")
    pk.add_argument("src", type=Path, nargs="+", help="identity folders, or a flat folder")
    pk.add_argument("--out", type=Path, required=True, help="the pack folder")
    pk.add_argument("--detector-model", type=Path, required=True, help="YuNet's .onnx file")
    pk.add_argument("--teacher-model", type=Path, required=True, help="the 0095 model's .xml")
    pk.add_argument("--workers", type=int, default=0, help="processes; 0 = one per core")
    pk.add_argument("--threads", type=int, default=1, help="teacher threads")

    train = sub.add_parser("train", help="train an embedder on prepared crops")
    add_settings_flags(train, TrainSettings, required=frozenset({"data", "out"}), skip=PREPARE_ONLY)

    tr = sub.add_parser("travel", help="a pack as one small file, for a GPU machine")
    tr.add_argument("pack", type=Path, nargs="+", help="pack folders")
    tr.add_argument("--out", type=Path, required=True, help="the .npz file to write")
    tr.add_argument(
        "--max-mib", type=float, default=MAX_MIB, help="size budget in MiB (%(default)s)"
    )
    tr.add_argument("--size", type=int, default=SIZE, help="crop side in pixels (%(default)s)")
    tr.add_argument(
        "--quality", type=int, default=QUALITY, help="JPEG quality, 1-100 (%(default)s)"
    )

    distill = sub.add_parser("distill", help="teach a ResNet50 the teacher's vectors of packs")
    add_settings_flags(distill, DistillSettings, required=frozenset({"pack", "out"}))

    export = sub.add_parser("export", help="a run's checkpoint as a small half-precision model")
    export.add_argument("checkpoint", type=Path)
    export.add_argument("dest", type=Path)

    cal = sub.add_parser("calibrate", help="measure a model's thresholds again, as it embeds")
    cal.add_argument("model", type=Path, help="a distillation run's checkpoint or its export")
    cal.add_argument("--pack", type=Path, nargs="+", required=True, help="the run's packs")
    cal.add_argument("--out", type=Path, help="write here instead of over MODEL")
    cal.add_argument("--flip-average", action=argparse.BooleanOptionalAction,
                     help="embed each face with its mirror image (default: as the model does)")  # fmt: skip
    cal.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    cal.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto")

    lin = sub.add_parser("lineage", help="plot a model's held-out curve across warm restarts")
    lin.add_argument("lineage", type=Path, help="CSV: run,metrics,picked,report_top1,"
                     "report_map, one row per run of the chain")  # fmt: skip
    lin.add_argument("--out", type=Path, required=True, help="the PNG to write")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    flags: dict[str, Any] = {k: v for k, v in vars(args).items() if v is not None}
    try:
        if args.command == "export":
            from training.export import export

            size = export(args.checkpoint, args.dest)
            print(f"wrote {args.dest} ({size / 1e6:.1f} MB)")
            return 0
        if args.command == "calibrate":
            from training.calibrate import calibrate

            print(calibrate(args.model, args.pack, args.out, args.flip_average, args.device,
                            args.precision).summary())  # fmt: skip
            return 0
        if args.command == "lineage":
            from training.lineage import plot_lineage

            seen = plot_lineage(args.lineage, args.out)
            print(f"wrote {args.out}: the last kept model has seen {seen:,} images in all")
            return 0
        if args.command == "pack":
            from training.pack import pack

            report = pack(args.src, args.out, args.detector_model, args.teacher_model,
                          workers=args.workers, threads=args.threads)  # fmt: skip
            print(report.summary())
            return 0
        if args.command == "travel":
            from training.travel import write_travel

            print(write_travel(args.pack, args.out, args.max_mib, args.size, args.quality))
            return 0
        if args.command == "teach":
            from training.teach import teach

            print(teach(args.crops, args.out, args.workers).summary())
            return 0
        flags.pop("command")
        if args.command == "distill":
            from training.distill_run import distill

            if flags.get("resume"):
                flags = saved_settings(args.out, DistillSettings) | flags
            print(distill(load_settings(DistillSettings, flags)))
            return 0
        if flags.get("resume"):
            flags = saved_settings(args.out) | flags
        settings = load_settings(TrainSettings, flags)
        if args.command == "prepare":
            return _prepare(args.src, args.out, settings)
        from training.train import train

        result = train(settings)
        print(result)
        return 0
    except (FacefindError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
    return EXIT_USAGE


def _prepare(src: Path, out: Path, settings: TrainSettings) -> int:
    from training.prepare import prepare

    report = prepare(
        src, out, settings.detector, settings.detector_model, settings.crop_size, settings.workers
    )
    print(report.summary())
    return 0


NOT_CARRIED = ("time_limit", "resume", "max_steps", "threads", "device")
"""Settings of one invocation, not of the run: a resumed run gets a fresh time budget."""


def saved_settings(out: Path, kind: type[BaseSettings] = TrainSettings) -> dict[str, Any]:
    """A run's saved settings, so ``--resume`` needs no flags but those that change."""
    path = out / "config.json"
    if not path.is_file():
        return {}
    saved = json.loads(path.read_text())
    names = kind.model_fields.keys() - set(NOT_CARRIED)
    return {k: v for k, v in saved.items() if k in names and v is not None}
