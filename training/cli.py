"""``python -m training prepare|train|export``: one-line errors, non-zero exit, no tracebacks."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from indexer.errors import FacefindError
from training.settings import TrainSettings

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    prep = sub.add_parser("prepare", help="crop every face of a labelled photo collection")
    prep.add_argument("src", type=Path, help="one folder per identity, or CelebA's layout")
    prep.add_argument("--out", type=Path, required=True, help="folder for the crops")
    prep.add_argument("--detector", choices=("haar", "yunet", "none"))
    prep.add_argument("--detector-model", type=Path)
    prep.add_argument("--size", dest="crop_size", type=int, help="crop side in pixels (128)")
    prep.add_argument("--workers", type=int, help="processes; 0 = one per core")

    teach = sub.add_parser("teach", help="the teacher's embedding of every crop, cached")
    teach.add_argument("crops", type=Path, help="crops made by `prepare`")
    teach.add_argument("--out", type=Path, required=True, help="folder for the targets")
    teach.add_argument("--workers", type=int, default=1, help="processes; 0 = one per core")

    train = sub.add_parser("train", help="train an embedder on prepared crops")
    train.add_argument(
        "--data", type=Path, nargs="+", required=True, help="crops made by `prepare`"
    )
    train.add_argument("--teacher", type=Path, nargs="+", help="targets made by `teach`")
    train.add_argument("--out", type=Path, required=True, help="run folder, e.g. runs/NAME")
    for flag, kind in (
        ("--arch", str),
        ("--image-size", int),
        ("--embedding-dim", int),
        ("--epochs", int),
        ("--classes-per-batch", int),
        ("--images-per-class", int),
        ("--pretrained", str),
        ("--device", str),
        ("--precision", str),
        ("--lr", float),
        ("--backbone-lr-scale", float),
        ("--weight-decay", float),
        ("--warmup-steps", int),
        ("--margin", float),
        ("--mining", str),
        ("--patience", int),
        ("--time-limit", float),
        ("--seed", int),
        ("--workers", int),
        ("--threads", int),
        ("--val-manifest", Path),
        ("--val-root", Path),
        ("--val-fraction", float),
        ("--min-images", int),
        ("--max-steps-per-epoch", int),
        ("--detector", str),
        ("--detector-model", Path),
        ("--distill-weight", float),
        ("--teacher-only-per-batch", int),
    ):
        train.add_argument(flag, type=kind)
    train.add_argument("--resume", action="store_true", default=None, help="continue from last.pt")

    export = sub.add_parser("export", help="a run's checkpoint as a small half-precision model")
    export.add_argument("checkpoint", type=Path)
    export.add_argument("dest", type=Path)
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
        if args.command == "teach":
            from training.teach import teach

            print(teach(args.crops, args.out, args.workers).summary())
            return 0
        flags.pop("command")
        if flags.get("resume"):
            flags = saved_settings(args.out) | flags
        settings = TrainSettings(**flags)
        if args.command == "prepare":
            return _prepare(args.src, args.out, settings)
        from training.train import train

        result = train(settings)
        print(result)
        return 0
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]).replace("_", "-")
        print(f"error: --{where}: {first['msg']}", file=sys.stderr)
    except (FacefindError, ValueError, FileNotFoundError) as exc:
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


NOT_CARRIED = ("time_limit", "resume")
"""Settings of one invocation, not of the run: a resumed run gets a fresh time budget."""


def saved_settings(out: Path) -> dict[str, Any]:
    """A run's saved settings, so ``--resume`` needs no flags but those that change."""
    path = out / "config.json"
    if not path.is_file():
        return {}
    saved = json.loads(path.read_text())
    names = TrainSettings.model_fields.keys() - set(NOT_CARRIED)
    return {k: v for k, v in saved.items() if k in names and v is not None}
