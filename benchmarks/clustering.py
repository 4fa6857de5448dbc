"""Grouping faces into persons: facefind against dlib's Chinese whispers, on the same photos.

``python -m benchmarks.clustering`` indexes ``celeba-wild`` with ``python -m indexer build``
(the shipped model unless ``--model``), then clusters its faces as if they were unlabelled:
the folder names (CelebA identities) are used only to score. facefind's graph clustering
(``indexer.people``: Chinese whispers, and connected components for comparison) runs at the
threshold the product uses, and once more at the cosine this model reaches at 1% false
accepts on this very set (an oracle: what calibration can bring). The peer is what
face_recognition users try first, the library's own example: ``face_recognition`` encodings
of the same photos, then ``dlib.chinese_whispers_clustering(encodings, 0.5)``. Scores:
pairwise precision and recall, BCubed precision/recall/F1 (unassigned faces count as persons
of one), persons found against the true number, share of faces left unassigned, seconds.
Then the time to cluster 10,000 and 100,000 synthetic faces (persons of ten around random
centres) on this machine's cores.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from benchmarks import peer_face_recognition as peer
from benchmarks.common import (
    DATA,
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
from indexer.people import UNASSIGNED, cluster, grouping_threshold, persons
from indexer.people_store import PeopleStore
from indexer.store import GalleryStore

SIZES = (10_000, 100_000)
DLIB_MAX = 20_000
"""dlib's whispers compare every pair of faces: beyond this it is not timed (minutes)."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.clustering", description=__doc__)
    parser.add_argument("--model", help="facefind checkpoint (default: the shipped model)")
    parser.add_argument("--set", default="celeba-wild", help="a folder of ../shared/data")
    parser.add_argument("--gallery", type=Path, help="reuse a store built from --set with --model")
    parser.add_argument("--threshold", type=float, help="default: the model's, as the product")
    parser.add_argument("--min-faces", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    parser.add_argument("--no-peer", action="store_true", help="leave face_recognition out")
    parser.add_argument("--peer-workers", type=int, default=0, help="0: one per core")
    parser.add_argument("--quick", action="store_true", help="CI smoke: five-celebrity, 2,000")
    parser.add_argument("--out", type=Path, default=RESULTS / "clustering.json")
    parser.add_argument("--note", default="", help="recorded with the results")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.set = "five-celebrity" if args.set == "celeba-wild" else args.set
        args.sizes = [2_000] if args.sizes == list(SIZES) else args.sizes
    try:
        model, described = speed_model(args.model) if args.quick else _shipped(args.model)
        results = new_results("clustering", args.quick, args.note)
        results["model"] = described
        results["threads"] = faiss.omp_get_max_threads()
        gallery = args.gallery or _build(args.set, model, results)
        faces, truth = _faces(gallery)
        results["set"] = {
            "name": args.set,
            "faces": len(truth),
            "identities": len(set(truth)),
            "identities_with_min_faces": _countable(truth, args.min_faces),
        }
        results["systems"] = _facefind(faces, truth, model, args)
        if not args.no_peer:
            results["systems"] += _dlib(gallery, truth, args)
        write_results(results, args.out)
        results["speed"] = _speed(args.sizes, described["embedding_dim"], args)
        write_results(results, args.out)
    finally:
        remove_scratch()
    _print(results)
    return 0


def _shipped(model: str | None) -> tuple[str, dict[str, Any]]:
    from indexer.defaults import resolve_model

    return speed_model(str(resolve_model(model)))


def _build(name: str, model: str, results: dict[str, Any]) -> Path:
    """The gallery as users make it: ``python -m indexer build`` (folder names = labels)."""
    index = scratch_dir("clustering") / "index"
    cmd = python_cmd("indexer", "build", str(DATA / name), "--index", str(index))
    cmd += ["--model", model, "--detector", "yunet", "--detector-model", str(YUNET)]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{shown(cmd)} failed:\n{done.stderr[-2000:]}")
    results["build"] = {"command": shown(cmd), "wall_s": time.perf_counter() - start}
    return index


def _faces(gallery: Path) -> tuple[Any, list[str]]:
    faces, _ = PeopleStore(gallery / "gallery.sqlite3").faces()
    if any(label is None for label in faces.labels):
        raise SystemExit("every face needs its identity as label (build from identity folders)")
    return faces, [str(label) for label in faces.labels]


def _countable(truth: list[str], min_faces: int) -> int:
    _, counts = np.unique(truth, return_counts=True)
    return int((counts >= min_faces).sum())


def _facefind(faces: Any, truth: list[str], model: str, args: argparse.Namespace) -> list[dict]:
    from indexer.checkpoint import load_checkpoint

    _, info = load_checkpoint(model)
    product = grouping_threshold(info, args.threshold)
    oracle = far_threshold(faces.vectors, truth, 0.01)
    rows = []
    for method, cut, how in (
        ("whispers", product, "the product's threshold"),
        ("components", product, "the product's threshold"),
        ("whispers", oracle, "cosine at 1% false accepts on this set (oracle)"),
    ):
        start = time.perf_counter()
        found = cluster(faces.vectors, cut, args.min_faces, method=method)
        seconds = time.perf_counter() - start
        row = {"system": "facefind", "method": method, "threshold": cut, "threshold_from": how}
        rows.append(row | score(found, truth) | {"cluster_s": seconds})
    return rows


def _dlib(gallery: Path, truth: list[str], args: argparse.Namespace) -> list[dict]:
    """face_recognition's encodings of the same photos, dlib's whispers at 0.5 as in its
    example; then the same minimum of faces per person as facefind's."""
    missing = peer.available()
    if missing:
        return [{"system": peer.NAME, "skipped": missing}]
    import dlib

    with GalleryStore(gallery) as store:
        sources = [r.source for r in store.list(0, len(truth))[0]]
    paths = [Path(s) if Path(s).is_absolute() else DATA / args.set / s for s in sources]
    start = time.perf_counter()
    vectors, found_faces = raw_encodings(paths, args.peer_workers)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    raw = np.array(dlib.chinese_whispers_clustering([dlib.vector(v) for v in vectors], 0.5))
    seconds = time.perf_counter() - start
    row = {"system": peer.NAME, "method": "chinese_whispers_clustering(encodings, 0.5)"}
    row |= {"encode_s": encode_s, "face_found": float(np.mean(found_faces)), **peer.describe()}
    return [
        row | {"min_faces": 1} | score(raw, truth) | {"cluster_s": seconds},
        row
        | {"min_faces": args.min_faces}
        | score(persons(raw, args.min_faces), truth)
        | {"cluster_s": seconds},
    ]


def raw_encodings(paths: Sequence[Path], workers: int) -> tuple[np.ndarray, list[bool]]:
    """face_recognition's encodings as the library returns them: dlib's 0.5 is a Euclidean
    distance between these (norms about 1.4-1.6), so they must not be L2-normalised as
    ``peer.encode_paths`` does for cosine ranking (then everyone is within 0.5)."""
    workers = workers or os.cpu_count() or 1
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, context, initializer=peer._init_worker) as pool:
        results = list(pool.map(peer._encode, paths, chunksize=8))
    return np.stack([r[0] for r in results]), [r[1] for r in results]


def far_threshold(vectors: np.ndarray, truth: list[str], rate: float) -> float:
    """The cosine that only ``rate`` of pairs of different people reach."""
    ids = np.unique(truth, return_inverse=True)[1]
    sims = vectors @ vectors.T
    upper = np.triu(np.ones_like(sims, dtype=bool), 1)
    return float(np.quantile(sims[upper & (ids[:, None] != ids[None, :])], 1 - rate))


def score(found: np.ndarray, truth: list[str]) -> dict[str, Any]:
    """Pairwise and BCubed figures; unassigned faces are persons of one."""
    found = np.asarray(found)
    assigned = found != UNASSIGNED
    alone = np.arange(len(found)) + int(found.max(initial=0)) + 1
    cluster_of = np.where(assigned, found, alone)
    true_ids = np.unique(truth, return_inverse=True)[1]
    _, cell = np.unique(np.stack([cluster_of, true_ids]), axis=1, return_inverse=True)
    both = np.bincount(cell.ravel())[cell.ravel()]
    size_c = np.bincount(np.unique(cluster_of, return_inverse=True)[1])[
        np.unique(cluster_of, return_inverse=True)[1]
    ]
    size_t = np.bincount(true_ids)[true_ids]
    bp, br = float(np.mean(both / size_c)), float(np.mean(both / size_t))
    pairs = lambda n: n * (n - 1) / 2  # noqa: E731
    _, cells = np.unique(cell, return_counts=True)
    _, clusters = np.unique(cluster_of, return_counts=True)
    same_pred, same_true = pairs(clusters).sum(), pairs(np.bincount(true_ids)).sum()
    hits = pairs(cells).sum()
    return {
        "pairwise_precision": float(hits / same_pred) if same_pred else 1.0,
        "pairwise_recall": float(hits / same_true) if same_true else 1.0,
        "bcubed_precision": bp,
        "bcubed_recall": br,
        "bcubed_f1": 2 * bp * br / (bp + br) if bp + br else 0.0,
        "persons": len(np.unique(found[assigned])),
        "true_persons": int(true_ids.max(initial=-1) + 1),
        "unassigned_share": float(1 - assigned.mean()) if len(found) else 0.0,
    }


def synthetic(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Persons of ten faces (same-person cosine about 0.7) around random centres."""
    rng = np.random.default_rng(seed)
    truth = np.arange(n) // 10
    centres = rng.normal(size=(truth[-1] + 1, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = centres[truth] + rng.normal(scale=0.65 / np.sqrt(dim), size=(n, dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32), truth


def _speed(sizes: Sequence[int], dim: int, args: argparse.Namespace) -> list[dict]:
    rows = []
    for n in sizes:
        vectors, truth = synthetic(n, dim)
        labels = [str(t) for t in truth]
        row = _timed(lambda v=vectors: cluster(v, 0.5, args.min_faces), labels)
        rows.append({"system": "facefind", "faces": n, "dim": dim} | row)
        print(f"facefind, {n} synthetic faces: {row['seconds']:.1f} s", file=sys.stderr)
        skip = "not asked for" if args.no_peer else peer.available()
        if skip is None and n > DLIB_MAX:
            skip = f"dlib compares every pair of faces: not timed beyond {DLIB_MAX:,}"
        if skip:
            rows.append({"system": "dlib", "faces": n, "dim": 128, "skipped": skip})
            continue
        import dlib

        small, _ = synthetic(n, 128)
        # Halved: dlib's Euclidean 0.5 then links the pairs facefind's cosine 0.5 links.
        points = [dlib.vector(v * 0.5) for v in small]
        row = _timed(lambda p=points: np.array(dlib.chinese_whispers_clustering(p, 0.5)), labels)
        rows.append({"system": "dlib", "faces": n, "dim": 128} | row)
        print(f"dlib, {n} synthetic faces: {row['seconds']:.1f} s", file=sys.stderr)
    return rows


def _timed(run: Callable[[], np.ndarray], truth: list[str]) -> dict[str, Any]:
    start = time.perf_counter()
    found = run()
    seconds = time.perf_counter() - start
    figures = score(found, truth)
    keep = ("bcubed_f1", "persons", "true_persons", "unassigned_share")
    return {"seconds": seconds, "cores": os.cpu_count()} | {k: figures[k] for k in keep}


def _print(results: dict[str, Any]) -> None:
    for row in results["systems"]:
        if "skipped" in row:
            print(f"{row['system']}: skipped, {row['skipped']}", file=sys.stderr)
            continue
        print(
            f"{row['system']:>8} {row['method'][:24]:<24} P={row['pairwise_precision']:.3f} "
            f"R={row['pairwise_recall']:.3f} B3F1={row['bcubed_f1']:.3f} "
            f"persons={row['persons']}/{row['true_persons']} "
            f"unassigned={row['unassigned_share']:.2f} {row['cluster_s']:.2f}s",
            file=sys.stderr,
        )


if __name__ == "__main__":
    sys.exit(main())
