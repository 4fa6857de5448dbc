"""Group faces into persons: a k-nearest-neighbour graph cut at the same-person similarity.

Every face is linked to its ``k`` nearest faces (FAISS, inner product = cosine) whose similarity
reaches the model's calibrated "same person" cosine; persons are then found on that graph by
Chinese whispers (Biemann 2006, the method of dlib's ``chinese_whispers_clustering``): each face
repeatedly takes the label that weighs most among its neighbours. Unlike connected components
(kept as ``method="components"`` for comparison) one wrong link does not chain two persons into
one, since a face follows the majority of its links. Groups smaller than ``min_faces`` stay
unassigned. Faces a user labelled start with their label and never change it, so they pull the
unlabelled faces linked to them into their person.

Pure NumPy and FAISS; persistence lives in ``indexer.people_store``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import faiss
import numpy as np

from indexer.checkpoint import ModelInfo
from indexer.errors import ConfigError
from indexer.faceflow import DEFAULT_FALSE_ACCEPT_RATE

Method = Literal["whispers", "components"]
Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called while the graph is searched and propagated."""

GROUPING_FALSE_ACCEPT_RATE = "0.001"
"""Grouping cuts at the model's stricter calibrated threshold (1 in 1,000 pairs of different
people pass it), not the 1-in-100 one matches use: links chain, so one wrong link can merge two
whole persons. Chosen on that argument, then measured on celeba-wild (``python -m
benchmarks.clustering``), BCubed F1 at 1 in 1,000 against 1 in 100: 0.381 against 0.340 (run
#2 at 380k images), 0.486 against 0.421 (the same run at 700k). The shipped model's figure is
in docs/benchmarks.md."""
DEFAULT_THRESHOLD = 0.85
"""Same-person cosine for a model with no calibrated threshold (checkpoints from before
calibration). Override with ``--threshold`` (or ``threshold`` on the API)."""
DEFAULT_K = 20
DEFAULT_MIN_FACES = 3
EXACT_KNN_LIMIT = 20_000
"""Up to this many faces the graph is searched exactly; beyond, an IVF index (about 3% of the
vectors scanned per face) keeps 100,000 faces to seconds, and a missed far neighbour barely
changes a person."""
UNASSIGNED = -1


@dataclass(frozen=True)
class Graph:
    """Directed edges ``src -> dst`` with weight ``sim`` (each link appears both ways)."""

    n: int
    src: np.ndarray
    dst: np.ndarray
    sim: np.ndarray


def calibrated_grouping_threshold(thresholds: Mapping[str, float]) -> float | None:
    """A model's calibrated cosine for grouping: at 1 in 1,000 false accepts, else at 1 in 100
    (a checkpoint calibrated at that rate only), else None."""
    found = thresholds.get(GROUPING_FALSE_ACCEPT_RATE, thresholds.get(DEFAULT_FALSE_ACCEPT_RATE))
    return None if found is None else float(found)


def grouping_threshold(info: ModelInfo | None, given: float | None = None) -> float:
    """The cosine at which two faces are linked: given, else calibrated, else the default."""
    if given is not None:
        return float(given)
    calibrated = calibrated_grouping_threshold(info.thresholds) if info is not None else None
    return DEFAULT_THRESHOLD if calibrated is None else calibrated


def knn_graph(
    vectors: np.ndarray,
    threshold: float,
    k: int = DEFAULT_K,
    progress: Progress | None = None,
    chunk: int = 4096,
) -> Graph:
    """Links of every face to its k nearest faces at or above ``threshold``, made symmetric."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(vectors)
    if n < 2:
        empty = np.zeros(0, dtype=np.int64)
        return Graph(n, empty, empty, np.zeros(0, dtype=np.float32))
    index = _knn_index(vectors)
    srcs, dsts, sims = [], [], []
    for start in range(0, n, chunk):
        sim, nbr = index.search(vectors[start : start + chunk], min(k + 1, n))
        rows = np.repeat(np.arange(start, start + len(sim)), sim.shape[1])
        keep = (nbr.ravel() >= 0) & (nbr.ravel() != rows) & (sim.ravel() >= threshold)
        srcs.append(rows[keep])
        dsts.append(nbr.ravel()[keep])
        sims.append(sim.ravel()[keep])
        if progress is not None:
            progress("graph", min(start + chunk, n), n)
    src, dst, sim = np.concatenate(srcs), np.concatenate(dsts), np.concatenate(sims)
    # Symmetric and without duplicates: a link found from either side counts once each way.
    both_src, both_dst = np.concatenate([src, dst]), np.concatenate([dst, src])
    key, first = np.unique(both_src * n + both_dst, return_index=True)
    return Graph(n, key // n, key % n, np.concatenate([sim, sim])[first].astype(np.float32))


def _knn_index(vectors: np.ndarray) -> faiss.Index:
    """Exact search for small galleries; IVF beyond, as the gallery's own index is chosen."""
    n, dim = vectors.shape
    index: faiss.Index
    if n <= EXACT_KNN_LIMIT:
        index = faiss.IndexFlatIP(dim)
    else:
        nlist = 2 ** round(math.log2(4 * math.sqrt(n)))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        index.train(vectors[rng.choice(n, min(n, 64 * nlist), replace=False)])
        index.nprobe = max(nlist // 32, 16)
    index.add(vectors)
    return index


def whispers(
    graph: Graph,
    fixed: np.ndarray | None = None,
    iterations: int = 30,
    seed: int = 0,
    progress: Progress | None = None,
) -> np.ndarray:
    """Chinese whispers: every face takes the label its links weigh most, until stable.

    ``fixed[i] >= 0`` pins face i to class ``fixed[i]`` (a user's label); pinned faces share
    a class per value and never change. Half of the free faces, drawn at random, update per
    round, which keeps the vectorised update from oscillating as a fully synchronous one can.
    Returns one class number per face (arbitrary numbers; singletons keep their own).
    """
    n = graph.n
    labels = np.arange(n, dtype=np.int64)
    pinned = np.zeros(n, dtype=bool) if fixed is None else np.asarray(fixed) >= 0
    if fixed is not None:
        labels[pinned] = n + np.asarray(fixed)[pinned]  # class numbers no face index uses
    span = 2 * n + 1 + (int(np.max(fixed)) if fixed is not None and len(fixed) else 0)
    if pinned.any():  # labelled faces pull first: their neighbours start in their class
        to_pinned = pinned[graph.dst]
        near = Graph(n, graph.src[to_pinned], graph.dst[to_pinned], graph.sim[to_pinned])
        labels = np.where(pinned, labels, _heaviest_label(near, labels, span))
    rng = np.random.default_rng(seed)
    for round_ in range(iterations):
        best = _heaviest_label(graph, labels, span)
        move = (best != labels) & ~pinned & (rng.random(n) < 0.5)
        if progress is not None:
            progress("whispers", round_ + 1, iterations)
        if not move.any() and not ((best != labels) & ~pinned).any():
            break
        labels[move] = best[move]
    return labels


def _heaviest_label(graph: Graph, labels: np.ndarray, span: int) -> np.ndarray:
    """Per face, the neighbours' label with the largest summed similarity (own label if none)."""
    best = labels.copy()
    if len(graph.src) == 0:
        return best
    key, inverse = np.unique(graph.src * span + labels[graph.dst], return_inverse=True)
    weight = np.bincount(inverse.ravel(), weights=graph.sim)
    node, label = key // span, key % span
    order = np.lexsort((-weight, node))
    first = order[np.r_[True, node[order][1:] != node[order][:-1]]]
    best[node[first]] = label[first]
    return best


def components(graph: Graph) -> np.ndarray:
    """Connected components (every link joins): the simple baseline, prone to chaining."""
    labels = np.arange(graph.n, dtype=np.int64)
    while True:
        lowest = labels.copy()
        np.minimum.at(lowest, graph.src, labels[graph.dst])
        lowest = lowest[lowest]  # pointer jumping: halves the rounds on long chains
        if np.array_equal(lowest, labels):
            return labels
        labels = lowest


def persons(classes: np.ndarray, min_faces: int, keep: np.ndarray | None = None) -> np.ndarray:
    """Number the classes of at least ``min_faces`` faces 0, 1, ... (largest first); the rest
    UNASSIGNED. Classes holding a face of ``keep`` (labelled ones) count whatever their size."""
    values, inverse, counts = np.unique(classes, return_inverse=True, return_counts=True)
    big = counts >= min_faces
    if keep is not None and keep.any():
        big[np.unique(inverse.ravel()[keep])] = True
    order = np.argsort(-counts[big], kind="stable")
    number = np.full(len(values), UNASSIGNED, dtype=np.int64)
    number[np.flatnonzero(big)[order]] = np.arange(int(big.sum()))
    return number[inverse.ravel()]


def cluster(
    vectors: np.ndarray,
    threshold: float,
    min_faces: int = DEFAULT_MIN_FACES,
    k: int = DEFAULT_K,
    method: Method = "whispers",
    fixed: np.ndarray | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """One person number per face (0, 1, ... largest first), UNASSIGNED for the rest."""
    if min_faces < 1:
        raise ConfigError("the minimum number of faces per person must be at least 1")
    graph = knn_graph(vectors, threshold, k, progress)
    if method == "components":
        classes = components(graph)
    elif method == "whispers":
        classes = whispers(graph, fixed, progress=progress)
    else:
        raise ConfigError(f"unknown clustering method {method!r}: whispers or components")
    return persons(classes, min_faces, None if fixed is None else np.asarray(fixed) >= 0)


def attach(
    faces: np.ndarray,
    members: np.ndarray,
    member_person: np.ndarray,
    threshold: float,
    k: int = DEFAULT_K,
) -> np.ndarray:
    """For new faces: the existing person whose members among the k nearest weigh most at or
    above ``threshold`` (the same vote as a whispers round), else UNASSIGNED."""
    out = np.full(len(faces), UNASSIGNED, dtype=np.int64)
    if len(faces) == 0 or len(members) == 0:
        return out
    index = faiss.IndexFlatIP(members.shape[1])
    index.add(np.ascontiguousarray(members, dtype=np.float32))
    sim, nbr = index.search(np.ascontiguousarray(faces, dtype=np.float32), min(k, len(members)))
    for i, (srow, nrow) in enumerate(zip(sim, nbr, strict=True)):
        votes: dict[int, float] = {}
        for s, j in zip(srow, nrow, strict=True):
            if j >= 0 and s >= threshold:
                person = int(member_person[j])
                votes[person] = votes.get(person, 0.0) + float(s)
        if votes:
            out[i] = max(votes, key=lambda p: votes[p])
    return out
