"""FAISS behind a small interface: choose, build, add, remove, search, save, load.

Vectors are L2-normalised, so inner product is cosine similarity. FAISS ids are the
gallery's integer row ids, which keeps the index and SQLite joined without a mapping table.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import faiss
import numpy as np

from indexer.atomic import atomic_path
from indexer.errors import ConfigError

log = logging.getLogger(__name__)

EXACT_LIMIT = 100_000
"""Up to this many vectors exact search is fast enough (a few ms) and never misses."""


def choose_index(n_vectors: int, dim: int) -> str:
    """Pick a FAISS factory string from the gallery size (after criteo/autofaiss).

    - up to EXACT_LIMIT: ``Flat``, exact search, 4*dim bytes per vector;
    - beyond: ``IVF<nlist>,Flat``: about 4*sqrt(n) inverted lists of uncompressed vectors, so
      recall stays high (the nprobe dial trades it for speed) and removals stay cheap;
    - beyond 20M vectors memory dominates: product quantisation at dim/4 bytes per vector.
    """
    if n_vectors <= EXACT_LIMIT:
        return "Flat"
    nlist = 2 ** round(math.log2(4 * math.sqrt(n_vectors)))
    nlist = min(max(nlist, 1024), 65536)
    if n_vectors <= 20_000_000:
        return f"IVF{nlist},Flat"
    # "np": no polysemous training, which costs minutes at build time and is never used here.
    return f"IVF{nlist},PQ{dim // 4}np"


def default_nprobe(nlist: int) -> int:
    """Lists scanned per query: 1/32 of them.

    ``python -m benchmarks.speed search`` (vectors shaped like the default model's LFW
    embeddings): recall@10 0.99 at 1 ms per query for 1M vectors (IVF4096, nprobe 128), where
    1/64 gave 0.948 at 0.5 ms.
    """
    return int(min(max(nlist // 32, 16), nlist))


class VectorIndex:
    """A FAISS index keyed by int64 ids; the CPU copy is canonical, a GPU copy serves search."""

    def __init__(self, dim: int, factory: str = "Flat", use_gpu: bool | None = None) -> None:
        self.dim = dim
        self.factory = factory
        self._cpu = _make(dim, factory)
        self._gpu: faiss.Index | None = None
        self._want_gpu = gpus_available() if use_gpu is None else use_gpu

    @classmethod
    def build(
        cls,
        ids: np.ndarray,
        vectors: np.ndarray,
        dim: int,
        factory: str = "auto",
        use_gpu: bool | None = None,
    ) -> VectorIndex:
        """A fresh index over these vectors; trains it first when the index type needs it."""
        chosen = choose_index(len(ids), dim) if factory == "auto" else factory
        index = cls(dim, chosen, use_gpu)
        if not index._cpu.is_trained:
            if len(vectors) < _min_training_size(index._cpu):
                log.warning(
                    "%s needs at least %d vectors to train, the gallery has %d: using exact search",
                    chosen,
                    _min_training_size(index._cpu),
                    len(vectors),
                )
                index = cls(dim, "Flat", use_gpu)
            else:
                index._cpu.train(np.ascontiguousarray(vectors, dtype=np.float32))
                _tune(index._cpu)
        index.add(ids, vectors)
        return index

    @classmethod
    def load(cls, path: Path, factory: str, use_gpu: bool | None = None) -> VectorIndex:
        """Raises RuntimeError for a damaged file; the store then rebuilds from SQLite."""
        cpu = faiss.read_index(str(path))
        index = cls.__new__(cls)
        index.dim, index.factory, index._cpu, index._gpu = cpu.d, factory, cpu, None
        index._want_gpu = gpus_available() if use_gpu is None else use_gpu
        _tune(cpu)
        return index

    @property
    def ntotal(self) -> int:
        return int(self._cpu.ntotal)

    @property
    def nprobe(self) -> int | None:
        ivf = faiss.try_extract_index_ivf(self._cpu)
        return int(ivf.nprobe) if ivf is not None else None

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        """Inverted lists scanned per query: the recall/speed dial of IVF indexes."""
        ivf = faiss.try_extract_index_ivf(self._cpu)
        if ivf is None:
            raise ConfigError(f"nprobe applies to IVF indexes, not {self.factory}")
        ivf.nprobe = int(value)
        self._gpu = None

    @property
    def on_gpu(self) -> bool:
        return self._gpu is not None

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._cpu.add_with_ids(vectors, ids)
        if self._gpu is not None:
            self._gpu.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> bool:
        """False when this index type cannot remove (HNSW): the caller rebuilds it."""
        try:
            self._cpu.remove_ids(faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64)))
        except RuntimeError:
            return False
        self._gpu = None
        return True

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (similarities, ids) per query row; missing slots have id -1."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        k = max(1, min(k, max(self.ntotal, 1)))
        return self._searcher().search(vectors, k)

    def save(self, path: Path) -> None:
        """Atomic: a reader (or a restart after a kill) sees the old file or the new one."""
        with atomic_path(path) as tmp:
            faiss.write_index(self._cpu, str(tmp))

    def _searcher(self) -> faiss.Index:
        if self._want_gpu and self._gpu is None and self.ntotal:
            try:
                self._gpu = faiss.index_cpu_to_all_gpus(self._cpu)
            except (RuntimeError, AttributeError) as exc:
                log.warning("FAISS GPU search unavailable, searching on the CPU: %s", exc)
                self._want_gpu = False
        return self._gpu if self._gpu is not None else self._cpu


def gpus_available() -> bool:
    """faiss-cpu has no GPU calls at all; faiss-gpu on a machine without one reports 0."""
    try:
        return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
    except RuntimeError:
        return False


def _make(dim: int, factory: str) -> faiss.Index:
    """IVF indexes take ids natively; everything else gets an IDMap2 around it."""
    spec = factory if factory.startswith(("IVF", "IDMap")) else f"IDMap2,{factory}"
    try:
        return faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise ConfigError(f"invalid FAISS index factory string {factory!r}: {exc}") from exc


def _min_training_size(index: faiss.Index) -> int:
    ivf = faiss.try_extract_index_ivf(index)
    return int(ivf.nlist) if ivf is not None else 256


def _tune(index: faiss.Index) -> None:
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.nprobe = default_nprobe(int(ivf.nlist))
    hnsw = _hnsw(index)
    if hnsw is not None:
        hnsw.hnsw.efSearch = max(hnsw.hnsw.efSearch, 128)


def _hnsw(index: faiss.Index) -> faiss.IndexHNSW | None:
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index
    return inner if isinstance(inner, faiss.IndexHNSW) else None
