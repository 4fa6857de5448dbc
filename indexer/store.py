"""The gallery store: the database is the source of truth, the FAISS index is derived from it.

Layout of a store directory::

    gallery.sqlite3   faces (vectors, boxes, landmarks, labels, metadata), crops, indexed files
    index.faiss       the FAISS index over the faces' vectors (rebuildable at any time)
    index.json        which state of the database the index file reflects

``GalleryStore`` joins the two halves under one lock: a ``GalleryDatabase`` (``sqlite_db``)
keeps the rows, each write one durable transaction; ``index_file`` saves the index now and
then and, on open, loads it, catches it up (new rows) or rebuilds it (removals, damage).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from indexer.errors import ModelMismatch, NotFound, StoreCorrupt
from indexer.gallery_db import SCHEMA_VERSION, FileState, GalleryDatabase, bind_model
from indexer.index_file import INDEX_NAME, SIDECAR_NAME, IndexFile, build, iter_vectors
from indexer.records import FaceRecord, Match, NewFace
from indexer.sqlite_db import SqliteGalleryDatabase, damaged
from indexer.vector_index import VectorIndex, choose_index, gpus_available

DB_NAME = "gallery.sqlite3"

__all__ = ["DB_NAME", "INDEX_NAME", "SCHEMA_VERSION", "SIDECAR_NAME", "GalleryStore"]


class GalleryStore:
    """Thread-safe: one lock guards the database connection and the index."""

    def __init__(
        self,
        directory: Path | str,
        model: str | None = None,
        embedding_dim: int | None = None,
        index_factory: str = "auto",
        use_gpu: bool | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.index_factory = index_factory
        self._use_gpu = gpus_available() if use_gpu is None else use_gpu
        self._lock = threading.RLock()
        self._db: GalleryDatabase = SqliteGalleryDatabase(self.directory / DB_NAME)
        self._file = IndexFile(self.directory, self._use_gpu)
        self._pending = 0
        self._index: VectorIndex | None = None
        try:
            self.model, self.dim = bind_model(self._db, model, embedding_dim, self.directory)
            if self.dim is not None:
                self._index, self._pending = self._file.open(
                    self._db, self.model, self.dim, index_factory
                )
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreCorrupt(damaged(self._db.location, exc)) from exc
        except BaseException:
            self._db.close()
            raise

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        with self._lock:
            if self._pending:
                self.save_index()
            self._db.close()

    def __enter__(self) -> GalleryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def index_type(self) -> str:
        return self._index.factory if self._index is not None else "none"

    @property
    def on_gpu(self) -> bool:
        return self._index is not None and self._index.on_gpu

    def count(self, label: str | None = None) -> int:
        with self._lock:
            return self._db.count(label)

    # ----------------------------------------------------------------- writes
    def add(
        self, faces: list[NewFace], files: Iterable[tuple[str, int, int, str]] = ()
    ) -> list[FaceRecord]:
        """Store faces (and the build's file states) in one transaction, then index them."""
        files = list(files)
        if not faces and not files:
            return []
        with self._lock:
            model, dim = self._require_model()
            vectors = [np.asarray(f.vector, dtype=np.float32).ravel() for f in faces]
            for face, vector in zip(faces, vectors, strict=True):
                _check(face, vector, dim)
            rows = self._db.insert(faces, files, model, time.time())
            if rows and self._index is None:  # built from the database: has the new rows
                self._index = build(self._db, dim, self.index_factory, self._use_gpu)
            elif rows and self._index is not None:
                ids = np.array([rowid for rowid, _ in rows], dtype=np.int64)
                self._index.add(ids, np.stack(vectors))
            self._pending += len(rows)
            return [record for _, record in rows]

    def remove(self, ids: Iterable[str]) -> int:
        with self._lock:
            return self._forget(self._db.remove_ids(list(ids)))

    def remove_label(self, label: str) -> int:
        with self._lock:
            return self._forget(self._db.remove_label(label))

    def remove_sources(self, sources: Iterable[str]) -> int:
        """Forget files (and their faces) that were deleted or changed on disk."""
        with self._lock:
            return self._forget(self._db.remove_sources(list(sources)))

    def update(
        self,
        id: str,
        label: str | None = None,
        metadata: dict[str, Any] | None = None,
        clear_label: bool = False,
    ) -> FaceRecord:
        with self._lock:
            record = self.get(id)
            new_label = None if clear_label else (label if label is not None else record.label)
            new_meta = record.metadata if metadata is None else metadata
            return _found(self._db.update(id, new_label, new_meta), id)

    # ----------------------------------------------------------------- reads
    def get(self, id: str) -> FaceRecord:
        with self._lock:
            return _found(self._db.get(id), id)

    def crop(self, id: str) -> bytes | None:
        with self._lock:
            return self._db.crop(id)

    def list(
        self, offset: int = 0, limit: int = 50, label: str | None = None
    ) -> tuple[list[FaceRecord], int]:
        with self._lock:
            return self._db.page(offset, limit, label)

    def labels(self) -> list[tuple[str, int]]:
        with self._lock:
            return self._db.labels()

    def find_by_hash(self, content_hash: str) -> list[FaceRecord]:
        with self._lock:
            return self._db.find_by_hash(content_hash)

    def file_states(self) -> dict[str, FileState]:
        """path -> (size, mtime_ns, content hash) of every file a build indexed."""
        with self._lock:
            return self._db.file_states()

    def search(self, vectors: np.ndarray, k: int) -> list[list[Match]]:
        """Top-k gallery faces per query vector, best first."""
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim or vectors.shape[-1])
        with self._lock:
            if self._index is None or self._index.ntotal == 0:
                return [[] for _ in range(len(vectors))]
            if vectors.shape[1] != self._index.dim:
                raise ModelMismatch(
                    f"query vectors have {vectors.shape[1]} dimensions, the gallery {self._index.dim}"
                )
            sims, ids = self._index.search(vectors, k)
            by_rowid = self._db.by_rowids(sorted({int(i) for i in ids.ravel() if i >= 0}))
        return [
            [
                Match(by_rowid[int(i)], float(s))
                for s, i in zip(srow, irow, strict=True)
                if int(i) in by_rowid
            ]
            for srow, irow in zip(sims, ids, strict=True)
        ]

    def vectors(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All (rowids, vectors) in chunks; the lock is let go between chunks."""
        return iter_vectors(self._db, 0, self._lock)

    # ----------------------------------------------------------------- index upkeep
    def save_index(self) -> None:
        """Persist the index with a note of the database state it reflects."""
        with self._lock:
            if self._index is None:
                return
            self._file.save(self._index, self._db, self.model)
            self._pending = 0

    def rebuild_index(self, factory: str | None = None) -> None:
        """Recreate the index from the database, re-choosing its type for the gallery's size."""
        with self._lock:
            if self.dim is None:
                return
            self._index = build(self._db, self.dim, factory or self.index_factory, self._use_gpu)
            self.save_index()

    def optimize(self) -> bool:
        """Rebuild if the gallery grew or shrank past what its index type is chosen for."""
        with self._lock:
            if self.index_factory != "auto" or self._index is None or self.dim is None:
                return False
            if choose_index(self.count(), self.dim) == self._index.factory:
                return False
            self.rebuild_index()
            return True

    # ----------------------------------------------------------------- internals
    def _require_model(self) -> tuple[str, int]:
        if self.model is None or self.dim is None:
            raise ModelMismatch("this gallery was opened without a model and cannot take new faces")
        return self.model, self.dim

    def _forget(self, rowids: list[int]) -> int:
        """Drop removed rows from the index once the database committed their removal.

        Should we die before the index is saved again, the removal count makes the next open
        rebuild the index from the database.
        """
        if not rowids:
            return 0
        if self._index is not None and not self._index.remove(np.array(rowids, dtype=np.int64)):
            self._index = build(self._db, self._index.dim, self._index.factory, self._use_gpu)
        self._pending += len(rowids)
        return len(rowids)


def _check(face: NewFace, vector: np.ndarray, dim: int) -> None:
    """Refuse a face before anything is written, so a bad one leaves the whole add undone."""
    if vector.shape[0] != dim:
        raise ModelMismatch(f"a {vector.shape[0]}-d vector cannot join a {dim}-d gallery")
    if face.landmarks is not None and len(face.landmarks) != 5:
        raise ValueError(f"landmarks are five (x, y) points, not {len(face.landmarks)}")


def _found(record: FaceRecord | None, id: str) -> FaceRecord:
    if record is None:
        raise NotFound(f"no gallery entry with id {id!r}")
    return record
