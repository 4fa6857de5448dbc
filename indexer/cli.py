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
from indexer.errors import FacefindError
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
from indexer.settings import IndexerSettings
from indexer.store import DB_NAME, GalleryStore, store_exists
from indexer.vector_index import gpus_available

log = logging.getLogger("indexer")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m indexer", description="Index folders of photos and search them by face."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="index every image below a folder (incremental)")
    build.add_argument("gallery", type=Path, help="folder of photos; sub-folder name = label")
    build.add_argument("--index", type=Path, required=True, help="store directory to write")
    _add_model_options(build)
    build.add_argument("--faces", choices=["largest", "all"], default="largest")
    build.add_argument("--index-factory", help="FAISS index: auto (default) or a factory string")
    _add_store_option(build)

    search = sub.add_parser("search", help="top-k gallery faces for query images")
    search.add_argument("queries", nargs="+", type=Path, help="image files or folders")
    search.add_argument("--index", type=Path, required=True)
    search.add_argument("-k", type=int, default=10)
    search.add_argument("--format", choices=["json", "challenge"], default="json")
    search.add_argument("--faces", choices=["largest", "all"], default="largest")
    _add_model_options(search)
    _add_store_option(search)

    fetch = sub.add_parser("fetch-detector", help="install YuNet's model file, checked by hash")
    fetch.add_argument("--from", dest="source", type=Path, help="a local copy instead of the zoo")

    info = sub.add_parser("info", help="describe a store: model, size, index type, device")
    info.add_argument("--index", type=Path, required=True)
    _add_store_option(info)

    ev = sub.add_parser("evaluate", help="top-1/5/10 and mAP on a benchmark manifest")
    ev.add_argument("manifest", type=Path, help="CSV with columns path,identity,role")
    ev.add_argument("--root", type=Path, required=True, help="folder the manifest's paths are in")
    ev.add_argument("--json", type=Path, dest="json_out", help="also write the figures here")
    _add_model_options(ev)

    cl = sub.add_parser("cluster", help="group the gallery's faces into persons")
    cl.add_argument("--index", type=Path, required=True)
    cl.add_argument("--full", action="store_true", help="re-cluster every face, not just new ones")
    cl.add_argument("--min-faces", type=int, default=3, help="fewest faces of a person")
    cl.add_argument("--threshold", type=float, help="same-person cosine (default: the model's)")
    cl.add_argument("--model", help="checkpoint the gallery was built with (its threshold)")
    return parser


def _add_store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store-url",
        help="postgresql://user@host:port/db: the gallery on a PostgreSQL server; --index then "
        "only caches the search index (default: SQLite in --index)",
    )


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="checkpoint path or 'imagenet' (default: shipped model)")
    parser.add_argument("--detector", choices=["haar", "yunet", "none"])
    parser.add_argument("--detector-model", type=Path, help="model file for --detector yunet")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--workers", type=int, help="decode/detect processes (0: one per core)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"])


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = _settings(args)
    try:
        return COMMANDS[args.command](args, settings)
    except (FacefindError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: what was indexed so far is kept", file=sys.stderr)
        return 130


def _settings(args: argparse.Namespace) -> IndexerSettings:
    """Environment (FACEFIND_*) first; flags given on the command line win."""
    flags = {
        name: getattr(args, name, None)
        for name in ("model", "detector", "detector_model", "batch_size", "workers", "device")
    }
    flags["precision"] = getattr(args, "precision", None)
    flags["index_factory"] = getattr(args, "index_factory", None)
    flags["store_url"] = getattr(args, "store_url", None)
    return IndexerSettings(**{k: v for k, v in flags.items() if v is not None})


def _embedder(settings: IndexerSettings) -> Embedder:
    return load_embedder(resolve_model(settings.model), settings.device, settings.precision)


def _spec(settings: IndexerSettings, embedder: Embedder, mode: FaceMode = "largest") -> FlowSpec:
    return flow_spec(
        embedder.info, settings.detector, settings.detector_model, settings.max_pixels, mode
    )


def _store(
    index: Path, embedder: Embedder, spec: FlowSpec, factory: str = "auto", url: str | None = None
) -> GalleryStore:
    """The gallery, refusing vectors of another model or of other crops."""
    space = vector_space(embedder.info, spec)
    return GalleryStore(index, space, embedder.embedding_dim, factory, store_url=url)


def _positive(value: int, name: str) -> int:
    if value < 1:
        raise ValueError(f"{name} must be at least 1")
    return value


def cmd_build(args: argparse.Namespace, settings: IndexerSettings) -> int:
    if not args.gallery.is_dir():
        raise FileNotFoundError(f"gallery folder not found: {args.gallery}")
    _positive(settings.batch_size, "--batch-size")
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
    _positive(args.k, "-k")
    _require_store(args.index, settings.store_url)
    embedder = _embedder(settings)
    spec = _spec(settings, embedder, args.faces)
    paths = _expand(args.queries)
    same_person_at = threshold(embedder.info)
    with _store(args.index, embedder, spec, url=settings.store_url) as store:
        results = []
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
