"""``python -m indexer``: build, search, info and evaluate from the command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexer.batch import process_images
from indexer.build import build_gallery, find_images
from indexer.defaults import resolve_model
from indexer.detector_file import install_detector
from indexer.embedder import Embedder, load_embedder
from indexer.errors import ConfigError, FacefindError
from indexer.evaluate import evaluate, read_manifest
from indexer.faceflow import (
    FlowSpec,
    crops_of,
    face_dict,
    flow_spec,
    match_dict,
    threshold,
    vector_space,
)
from indexer.pipeline import FaceMode
from indexer.settings import (
    BatchSettings,
    FaceFlowSettings,
    IndexerSettings,
    IndexSettings,
    ModelSettings,
    StoreSettings,
)
from indexer.settings_flags import add_settings_flags, load_settings
from indexer.store import DB_NAME, GalleryStore, store_exists
from indexer.vector_index import gpus_available

log = logging.getLogger("indexer")

FLOW_GROUPS = (ModelSettings, FaceFlowSettings, BatchSettings)
"""The flags of every command that finds and embeds faces."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m indexer", description="Index folders of photos and search them by face."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="index every image below a folder (incremental)")
    build.add_argument("gallery", type=Path, help="folder of photos; sub-folder name = label")
    build.add_argument("--index", type=Path, required=True, help="store directory to write")
    build.add_argument("--faces", choices=["largest", "all"], default="largest")
    add_settings_flags(build, *FLOW_GROUPS, StoreSettings, IndexSettings)

    search = sub.add_parser("search", help="top-k gallery faces for query images")
    search.add_argument("queries", nargs="+", type=Path, help="image files or folders")
    search.add_argument("--index", type=Path, required=True)
    search.add_argument("-k", type=int, default=10)
    search.add_argument("--format", choices=["json", "challenge"], default="json")
    search.add_argument("--faces", choices=["largest", "all"], default="largest")
    add_settings_flags(search, *FLOW_GROUPS, StoreSettings)

    fetch = sub.add_parser("fetch-detector", help="install YuNet's model file, checked by hash")
    fetch.add_argument("--from", dest="source", type=Path, help="a local copy instead of the zoo")

    info = sub.add_parser("info", help="describe a store: model, size, index type, device")
    info.add_argument("--index", type=Path, required=True)
    add_settings_flags(info, StoreSettings)

    ev = sub.add_parser("evaluate", help="top-1/5/10 and mAP on a benchmark manifest")
    ev.add_argument("manifest", type=Path, help="CSV with columns path,identity,role")
    ev.add_argument("--root", type=Path, required=True, help="folder the manifest's paths are in")
    ev.add_argument("--json", type=Path, dest="json_out", help="also write the figures here")
    add_settings_flags(ev, *FLOW_GROUPS)

    cl = sub.add_parser("cluster", help="group the gallery's faces into persons")
    cl.add_argument("--index", type=Path, required=True)
    cl.add_argument("--full", action="store_true", help="re-cluster every face, not just new ones")
    cl.add_argument("--min-faces", type=int, default=3, help="fewest faces of a person")
    cl.add_argument(
        "--threshold",
        type=float,
        help="linking cosine (default: the model's, at 1 in 1,000 false accepts)",
    )
    cl.add_argument("--model", help="checkpoint the gallery was built with (its threshold)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command](args, load_settings(IndexerSettings, args))
    except (FacefindError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: what was indexed so far is kept", file=sys.stderr)
        return 130


def _embedder(settings: IndexerSettings) -> Embedder:
    return load_embedder(resolve_model(settings.model), settings.device, settings.precision)


def _spec(settings: IndexerSettings, embedder: Embedder, mode: FaceMode = "largest") -> FlowSpec:
    return flow_spec(embedder.info, settings, mode)


def _store(
    index: Path, embedder: Embedder, spec: FlowSpec, factory: str = "auto", url: str | None = None
) -> GalleryStore:
    """The gallery, refusing vectors of another model or of other crops."""
    space = vector_space(embedder.info, spec)
    return GalleryStore(index, space, embedder.embedding_dim, factory, store_url=url)


def cmd_build(args: argparse.Namespace, settings: IndexerSettings) -> int:
    if not args.gallery.is_dir():
        raise FileNotFoundError(f"gallery folder not found: {args.gallery}")
    embedder = _embedder(settings)
    spec = _spec(settings, embedder, args.faces)
    with _store(args.index, embedder, spec, settings.index_factory, settings.store_url) as store:
        report = build_gallery(
            args.gallery, store, embedder, spec, settings.batch_size, settings.workers
        )
        print(report.summary())
        print(f"gallery: {store.count()} faces in {args.index} ({store.index_type} index)")
    return 0


def cmd_search(args: argparse.Namespace, settings: IndexerSettings) -> int:
    if args.k < 1:
        raise ConfigError("-k must be at least 1")
    _require_store(args.index, settings.store_url)
    embedder = _embedder(settings)
    spec = _spec(settings, embedder, args.faces)
    paths = _expand(args.queries)
    same_person_at = threshold(embedder.info)
    with _store(args.index, embedder, spec, url=settings.store_url) as store:
        results: list[dict[str, Any]] = []
        for result in process_images(paths, spec, settings.workers):
            if result.error is not None or result.faces is None:
                results.append({"query": str(result.path), "error": result.error})
                continue
            image = result.faces
            matches = store.search(embedder.embed(crops_of([image])), args.k)
            faces = [
                face_dict(image, i) | {"matches": [match_dict(m, same_person_at) for m in found]}
                for i, found in enumerate(matches)
            ]
            results.append({"query": str(result.path), "faces": faces})
    if args.format == "challenge":
        images = {
            Path(r["query"]).name: [Path(m["source"]).name for m in r["faces"][0]["matches"]]
            for r in results
            if r.get("faces")
        }
        print(json.dumps({"images": images}, indent=2))
    else:
        print(json.dumps({"results": results}, indent=2))
    return 1 if any(r.get("error") for r in results) else 0


def cmd_info(args: argparse.Namespace, settings: IndexerSettings) -> int:
    _require_store(args.index, settings.store_url)
    with GalleryStore(args.index, store_url=settings.store_url) as store:
        info = {
            "index": str(args.index),
            "model": store.model,
            "embedding_dim": store.dim,
            "faces": store.count(),
            "labels": len(store.labels()),
            "index_type": store.index_type,
            "device": "gpu" if store.on_gpu else "cpu",
            "gpus_available": gpus_available(),
        }
    print(json.dumps(info, indent=2))
    return 0


def cmd_evaluate(args: argparse.Namespace, settings: IndexerSettings) -> int:
    rows = read_manifest(args.manifest, args.root)
    embedder = _embedder(settings)
    spec = _spec(settings, embedder)

    def embed_paths(paths: Sequence[Path]) -> tuple[np.ndarray, list[bool]]:
        crops, found = [], []
        for result in process_images(paths, spec, settings.workers):
            if result.error is not None or result.faces is None:
                raise FacefindError(result.error or f"{result.path}: no result")
            crops.append(result.faces.faces[0].crop)
            found.append(result.faces.face_found)
        return embedder.embed(crops, settings.batch_size), found

    metrics: dict[str, Any] = evaluate(rows, embed_paths)
    metrics.update(
        manifest=str(args.manifest),
        model=embedder.info.name,
        fingerprint=embedder.fingerprint,
        detector=spec.detector,
        crops=spec.crops,
        device=str(embedder.device),
        precision=embedder.precision,
    )
    for key in ("top1", "top5", "top10", "mAP", "face_found"):
        print(f"{key:>10}: {metrics[key]:.3f}")
    print(f"{'s/image':>10}: {metrics['seconds_per_image']:.4f}")
    if args.json_out:
        args.json_out.write_text(json.dumps(metrics, indent=2))
    return 0


def _require_store(index: Path, url: str | None = None) -> None:
    if not store_exists(index, url):
        raise FileNotFoundError(
            f"no gallery store in {index}: create one with `python -m indexer build GALLERY --index {index}`"
        )


def _expand(paths: Sequence[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(find_images(path))
        elif path.exists():
            out.append(path)
        else:
            raise FileNotFoundError(f"query image not found: {path}")
    return out


def cmd_fetch_detector(args: argparse.Namespace, settings: IndexerSettings) -> int:
    print(install_detector(args.source))
    return 0


def cmd_cluster(args: argparse.Namespace, settings: IndexerSettings) -> int:
    from indexer.people_cluster import cluster_command

    _require_store(args.index)
    return cluster_command(
        args.index / DB_NAME, args.full, args.min_faces, args.threshold, args.model
    )


COMMANDS = {
    "fetch-detector": cmd_fetch_detector,
    "cluster": cmd_cluster,
    "build": cmd_build,
    "search": cmd_search,
    "info": cmd_info,
    "evaluate": cmd_evaluate,
}
