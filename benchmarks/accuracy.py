"""Retrieval accuracy of facefind and of face_recognition under one protocol.

``python -m benchmarks.accuracy --out benchmarks/results/accuracy.json`` runs
``python -m indexer evaluate`` (the command users run) for facefind's model with the Haar and
the YuNet detector over the fixed splits in ``../shared/benchmarks``, and the same protocol
for face_recognition (``benchmarks.peer_face_recognition``). A set a system was trained on is
left out for that system: facefind's default model learnt from LFW, dlib's avoided it. The
smaller sets a model learnt from are run but marked, since their figures measure people the
model has seen.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import peer_face_recognition as peer
from benchmarks.common import (
    DATA,
    MANIFESTS,
    RESULTS,
    YUNET,
    new_results,
    python_cmd,
    remove_scratch,
    scratch_dir,
    shown,
    speed_model,
    write_results,
)
from indexer.checkpoint import load_checkpoint
from indexer.evaluate import evaluate, read_manifest

SETS = ("celeba-wild", "orl", "yale", "five-celebrity", "lfw")
DETECTORS = ("haar", "yunet")
SYSTEMS = ("facefind", peer.NAME)
QUICK_SETS = ("five-celebrity",)
QUICK_IMAGES = 40


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.accuracy", description=__doc__)
    parser.add_argument("--sets", nargs="+", choices=SETS, help="default: all five")
    parser.add_argument("--detectors", nargs="+", choices=DETECTORS, default=list(DETECTORS))
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--model", help="facefind checkpoint (default: the shipped model)")
    parser.add_argument(
        "--lfw",
        choices=["auto", "always", "never"],
        default="auto",
        help="evaluate facefind on lfw: auto = unless its checkpoint says it trained on LFW",
    )
    parser.add_argument("--max-images", type=int, help="use only the first N images per set")
    parser.add_argument("--peer-workers", type=int, default=0, help="0: one per core")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (five-celebrity)")
    parser.add_argument("--out", type=Path, default=RESULTS / "accuracy.json")
    parser.add_argument("--note", default="", help="recorded with the results, e.g. 'CPU shared'")
    parser.add_argument(
        "--peer-from",
        type=Path,
        help="with --systems facefind: carry face_recognition's rows over from this earlier "
        "results file (they do not depend on facefind's model), marked with its date",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sets = args.sets or (QUICK_SETS if args.quick else SETS)
    max_images = args.max_images or (QUICK_IMAGES if args.quick else None)
    model, model_info = _model(args.model, args.quick)
    results = new_results("accuracy", args.quick, args.note)
    results["model"] = model_info
    results["max_images"] = max_images
    results["sets"] = {}
    work = scratch_dir("accuracy")
    seen = _trained_on(model)
    results["model"]["trained_on"] = seen
    lfw_reason = _lfw_exclusion(seen.get("lfw"), args.lfw)
    carried = _carried_peer(args)
    try:
        _run_sets(args, sets, max_images, model, lfw_reason, seen, work, results, carried)
    finally:
        remove_scratch()
    return 0


def _run_sets(
    args: argparse.Namespace,
    sets: Sequence[str],
    max_images: int | None,
    model: str,
    lfw_reason: str | None,
    seen: dict[str, str],
    work: Path,
    results: dict[str, Any],
    carried: dict[str, list[dict[str, Any]]],
) -> None:
    for name in sets:
        manifest = _manifest(name, max_images, work)
        rows = read_manifest(manifest, DATA / name)
        entry: dict[str, Any] = {
            "images": len(rows),
            "queries": sum(r.role == "query" for r in rows),
            "systems": [],
        }
        for system in args.systems:
            if system == "facefind":
                for detector in args.detectors:
                    skip = lfw_reason if name == "lfw" else None
                    row = _facefind(name, manifest, model, detector, work, skip)
                    if name in seen and "skipped" not in row:
                        row["trained_on_set"] = seen[name]
                    entry["systems"].append(row)
            else:
                entry["systems"].append(_peer(name, rows, args.peer_workers))
        entry["systems"] += carried.get(name, [])
        results["sets"][name] = entry
        _print_set(name, entry)
        write_results(results, args.out)  # after every set: a late failure keeps the rest


def _carried_peer(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """The peer's rows of an earlier run, per set, where this run does not measure the peer.

    Read once, before this run writes anything: ``--peer-from`` is usually the very file
    ``--out`` rewrites after every set. A row carried before keeps the date it was measured.
    """
    if args.peer_from is None or peer.NAME in args.systems:
        return {}
    earlier = json.loads(args.peer_from.read_text())
    when = earlier.get("created") or str(args.peer_from)
    return {
        name: [r | {"carried_from": r.get("carried_from", when)}
               for r in entry.get("systems", []) if r.get("system") == peer.NAME]
        for name, entry in earlier.get("sets", {}).items()
    }  # fmt: skip


def _model(model: str | None, quick: bool) -> tuple[str, dict[str, Any]]:
    """The shipped model; in a quick smoke run a random-weight stand-in is fine."""
    from indexer.defaults import resolve_model
    from indexer.errors import ModelNotFound

    if model is None and not quick:
        try:
            model = str(resolve_model(None))
        except ModelNotFound as exc:
            raise SystemExit(f"error: {exc}") from exc
    return speed_model(model)


def _trained_on(model: str) -> dict[str, str]:
    """The benchmark sets whose photos the model learnt from, each with the evidence.

    Figures on such a set measure recall of people the model has seen, not retrieval of
    strangers: lfw is left out for it, the smaller sets are run and marked.
    """
    _, info = load_checkpoint(model)
    found: dict[str, str] = {}
    for key, value in info.training.items():
        if key.startswith("val"):
            continue
        values = value if isinstance(value, list) else [value]
        for item in (v for v in values if isinstance(v, str)):
            for name in SETS:
                if name in item.lower() and name not in found:
                    found[name] = f"{key}={item}"
    return found


def _lfw_exclusion(evidence: str | None, mode: str) -> str | None:
    """Why facefind is not evaluated on lfw, or None: a model is not tested on its training set."""
    if mode == "always":
        return None
    if mode == "never":
        return "left out by --lfw never"
    if evidence:
        return f"the model was trained on LFW ({evidence})"
    return None


def _manifest(name: str, max_images: int | None, work: Path) -> Path:
    """The fixed split, or its first identities up to ``max_images`` rows (quick runs)."""
    source = MANIFESTS / f"{name}.csv"
    if max_images is None:
        return source
    with source.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    kept: list[dict[str, str]] = []
    for identity in dict.fromkeys(r["identity"] for r in rows):
        group = [r for r in rows if r["identity"] == identity]
        if len(kept) + len(group) > max_images and any(r["role"] == "query" for r in kept):
            break
        kept.extend(group)
    target = work / f"{name}-{max_images}.csv"
    with target.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "identity", "role"])
        writer.writeheader()
        writer.writerows({k: r[k] for k in ("path", "identity", "role")} for r in kept)
    return target


def _facefind(
    name: str, manifest: Path, model: str, detector: str, work: Path, skip: str | None
) -> dict[str, Any]:
    row: dict[str, Any] = {"system": "facefind", "detector": detector}
    if skip:
        return {**row, "skipped": skip}
    out = work / f"{name}-{detector}.json"
    cmd = python_cmd(
        "indexer", "evaluate", str(manifest), "--root", str(DATA / name), "--model", model
    )
    cmd += ["--detector", detector, "--json", str(out)]
    if detector == "yunet":
        cmd += ["--detector-model", str(YUNET)]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    metrics = json.loads(out.read_text())
    return {**row, **metrics, "wall_s": time.perf_counter() - start, "command": shown(cmd)}


def _peer(name: str, rows: list[Any], workers: int) -> dict[str, Any]:
    row: dict[str, Any] = {"system": peer.NAME, "detector": "hog"}
    missing = peer.available()
    if missing:
        return {**row, "skipped": missing}
    metrics = evaluate(rows, lambda paths: peer.encode_paths(paths, workers))
    return {**peer.describe(), **metrics, **row, "workers": workers or _cores()}


def _cores() -> int:
    return os.cpu_count() or 1


def _print_set(name: str, entry: dict[str, Any]) -> None:
    print(f"{name}: {entry['images']} images, {entry['queries']} queries", file=sys.stderr)
    for row in entry["systems"]:
        label = f"  {row['system']:>16} ({row['detector']})"
        if "skipped" in row:
            print(f"{label}: skipped, {row['skipped']}", file=sys.stderr)
            continue
        figures = " ".join(f"{k}={row[k]:.3f}" for k in ("top1", "top5", "top10", "mAP"))
        seen = " (trained on this set)" if "trained_on_set" in row else ""
        print(
            f"{label}: {figures} found={row['face_found']:.2f} "
            f"s/img={row['seconds_per_image']:.4f}{seen}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    sys.exit(main())
