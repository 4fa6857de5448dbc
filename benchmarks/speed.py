"""How fast facefind is on this machine: ``python -m benchmarks.speed all``.

Parts (each also a subcommand): ``embed`` (embedder throughput against plain fp32 PyTorch and
the CPU's peak), ``build`` (``python -m indexer build`` over a gallery against face_recognition),
``http`` (``POST /query`` through a real server: latency, stage split, throughput at 1/4/16
clients), ``search`` (FAISS indexes at 100k and 1M synthetic face-like vectors). ``--quick``
runs each at smoke-test sizes in about a minute. Results go to one JSON file, rewritten after
every part, which ``python -m benchmarks.report`` turns into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks import build_speed, embed_speed, http_speed, search_speed
from benchmarks.common import (
    DATA,
    MANIFESTS,
    RESULTS,
    new_results,
    remove_scratch,
    scratch_dir,
    speed_model,
    write_results,
)

PARTS = ("embed", "build", "http", "search")
QUICK_BUILD_IMAGES = 50
QUICK_EMBED = embed_speed.EmbedPlan(
    sizes=(),
    sweep=(),
    variants=embed_speed.REQUIRED,
    batches=(1, 4),
    rounds=2,
    min_round_s=0.0,
)
QUICK_HTTP = http_speed.HttpPlan(latency_requests=10, per_client=2, warmup=2)
QUICK_SEARCH = search_speed.SearchPlan(
    sizes=(20_000,),
    queries=100,
    single_queries=20,
    nprobes=(8, 32),
    ef_searches=(32, 128),
    kinds=("flat", "ivf", "hnsw"),
    worst_case_size=None,
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__)
    parser.add_argument("part", choices=[*PARTS, "all"])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS / "speed.json")
    parser.add_argument("--note", default="", help="recorded with the results, e.g. 'CPU shared'")
    parser.add_argument("--model", help="checkpoint (default: the shipped model, else random)")
    parser.add_argument("--keep-work", action="store_true", help="keep the scratch galleries")
    parser.add_argument("--device", default="cpu", help="embed: cpu or cuda")
    parser.add_argument("--no-compile", action="store_true", help="embed: skip torch.compile")
    parser.add_argument("--gallery", type=Path, help="build/http: default lfw (quick: 50 images)")
    parser.add_argument("--build-images", type=int, help="build: only the first N images")
    parser.add_argument(
        "--detector",
        choices=("yunet", "haar"),
        default="yunet",
        help="build/http: the face detector (default: yunet, the default pipeline's)",
    )
    parser.add_argument("--no-peer", action="store_true", help="build: skip face_recognition")
    parser.add_argument("--data-dir", type=Path, help="http: an existing store to serve")
    parser.add_argument("--sizes", type=int, nargs="+", help="search: vector counts")
    parser.add_argument("--alpha", type=float, help="search: spectrum exponent of the centres")
    parser.add_argument("--noise", type=float, help="search: spread of an identity's vectors")
    parser.add_argument(
        "--calibrate", type=Path, help="search: fit alpha and noise to this gallery store"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parts = PARTS if args.part == "all" else (args.part,)
    model, model_info = speed_model(args.model)
    results = new_results("speed", args.quick, args.note)
    results["model"] = model_info
    state: dict[str, Any] = {"work": scratch_dir("speed")}
    try:
        for part in parts:
            results[part] = PART_RUNNERS[part](args, model, model_info, state)
            write_results(results, args.out)
    finally:
        if args.keep_work:
            print(f"scratch files kept in {state['work']}", file=sys.stderr)
        else:
            remove_scratch()
    return 0


def run_embed(args: argparse.Namespace, model: str, info: dict[str, Any], _: dict) -> Any:
    size = info["input_size"]
    if args.quick:
        plan = replace(QUICK_EMBED, sizes=(size,), device=args.device)
    else:
        variants = [*embed_speed.REQUIRED, *embed_speed.CANDIDATES]
        if args.no_compile:
            variants.remove("facefind-compiled")
        plan = embed_speed.EmbedPlan(
            sizes=(size, 224), sweep=(2, 4, 8, 16, 64), variants=tuple(variants), device=args.device
        )
    return embed_speed.run(model, plan)


def run_build(args: argparse.Namespace, model: str, _: dict[str, Any], state: dict) -> Any:
    gallery = _gallery(args, state)
    index = state["work"] / "store"
    result = build_speed.run(gallery, index, model, args.detector, with_peer=not args.no_peer)
    state["store"], state["store_gallery"] = index, gallery
    return result


def run_http(args: argparse.Namespace, model: str, info: dict[str, Any], state: dict) -> Any:
    data_dir = args.data_dir or state.get("store")
    if data_dir is None:
        data_dir = state["work"] / "store"
        state["store_gallery"] = _gallery(args, state)
        build_speed.facefind_build(state["store_gallery"], data_dir, model, args.detector)
    plan = replace(QUICK_HTTP if args.quick else http_speed.HttpPlan(), detector=args.detector)
    result = http_speed.run(model, data_dir, _query_photo(), plan, state["work"] / "service.log")
    result["gallery"] = str(state.get("store_gallery", args.gallery or data_dir))
    return result


def run_search(args: argparse.Namespace, _: str, info: dict[str, Any], state: dict) -> Any:
    plan = QUICK_SEARCH if args.quick else search_speed.SearchPlan()
    plan = replace(plan, dim=info["embedding_dim"])  # vectors as wide as the model's
    calibration = None
    store = args.calibrate or (state.get("store") if not info["random_weights"] else None)
    if store is not None:
        calibration = search_speed.calibrate(Path(store))
        fits = calibration["faces"] >= search_speed.MIN_CALIBRATION_FACES
        if fits and math.isfinite(calibration["noise"]):
            plan = replace(plan, alpha=calibration["alpha"], noise=calibration["noise"])
        else:
            calibration["used"] = False  # too few faces (or no same-label pairs): defaults kept
    overrides = {k: getattr(args, k) for k in ("alpha", "noise") if getattr(args, k) is not None}
    if args.sizes:
        overrides["sizes"] = tuple(args.sizes)
    plan = replace(plan, **overrides)
    result = search_speed.run(plan)
    result["calibration"] = calibration
    return result


def _gallery(args: argparse.Namespace, state: dict[str, Any]) -> Path:
    """The gallery to index: lfw, or its first images (quick runs, --build-images)."""
    if "gallery" in state:
        return state["gallery"]
    gallery = args.gallery or DATA / "lfw"
    count = args.build_images or (QUICK_BUILD_IMAGES if args.quick else None)
    if count:
        gallery = build_speed.subset_gallery(gallery, count, state["work"] / "gallery")
    state["gallery"] = gallery
    return gallery


def _query_photo() -> Path:
    """The first query of celeba-wild: a real upload-like photo, scaled to 500 px later."""
    with (MANIFESTS / "celeba-wild.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row["role"] == "query":
                return DATA / "celeba-wild" / row["path"]
    raise FileNotFoundError("celeba-wild.csv has no query")


PART_RUNNERS = {"embed": run_embed, "build": run_build, "http": run_http, "search": run_search}


if __name__ == "__main__":
    sys.exit(main())
